import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { examplesFromSftQuery, trainWriter } from '../../core/agent/writer';
import { writeJsonAtomic } from '../../core/io/write';
import { openSearchEngine } from '../../core/search/open';
import { type CliCommand, UsageError } from '../args';

export const writerCommand: CliCommand = {
  name: 'writer',
  summary: 'train the local query writer (CPU, seconds) from sft_query data',
  usage:
    'drag writer train --data <sft_query_train.jsonl> [--data ...] --ocr <ocr_output.jsonl> --out <model.json> ' +
    `[--epochs 30] [--seed 1]

Learns which words of a question make queries that rank the ground-truth page first (logistic
regression over corpus IDF, position, capitalisation, numbers and the word itself, weighted by
rank score). Use it with: drag collect|eval --agent writer --writer-model <model.json>.`,
  async run(argv, io, signal) {
    const [sub, ...rest] = argv;
    if (sub !== 'train') throw new UsageError('expected "drag writer train"');
    const { values } = parseArgs({
      args: rest,
      options: {
        data: { type: 'string', multiple: true },
        ocr: { type: 'string' },
        out: { type: 'string' },
        epochs: { type: 'string', default: '30' },
        seed: { type: 'string', default: '1' },
      },
    });
    if (!values.data?.length || !values.ocr || !values.out)
      throw new UsageError('--data, --ocr and --out are required');
    const lines = [];
    for (const f of values.data)
      for (const l of (await readFile(f, 'utf8')).split('\n'))
        if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
    const examples = examplesFromSftQuery(lines);
    if (examples.length === 0)
      throw new UsageError(
        'no usable sft_query examples ' +
          '(need <question>…</question> inputs and <search>…</search> outputs with a positive rank_score)',
      );
    const { engine } = await openSearchEngine(values.ocr, { signal });
    const started = performance.now();
    const model = trainWriter(examples, (t) => engine.termIdf(t), {
      epochs: Number(values.epochs),
      seed: Number(values.seed),
    });
    await writeJsonAtomic(values.out, model);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    io.stderr(
      `trained on ${model.trained.examples} queries ` +
        `(${model.trained.words} candidate words, ${model.trained.positives} used) in ${seconds} s: ` +
        `word accuracy ${(100 * model.trained.accuracy).toFixed(1)}%, ` +
        `first queries of ${model.queryLength} words -> ${values.out}\n`,
    );
    return 0;
  },
};
