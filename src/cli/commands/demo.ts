import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { runCollection } from '../../core/agent/collect';
import { examplesFromSftQuery, trainWriter } from '../../core/agent/writer';
import { buildCorpus } from '../../core/corpus/build';
import { generateDemoCorpus } from '../../core/demo/generate';
import { comparisonJson, comparisonMarkdown, compareRuns, loadEvaluation } from '../../core/eval/compare';
import { runEvaluation } from '../../core/eval/evaluate';
import { toJsonLine, writeJsonAtomic } from '../../core/io/write';
import { seededShuffle } from '../../core/pipeline/format';
import { runProcess } from '../../core/pipeline/runProcess';
import { openSearchEngine } from '../../core/search/open';
import { DEMO_OUTPUTS, isDemoWorkspace } from '../../core/workspace/layout';
import { type CliCommand, UsageError } from '../args';

export const demoCommand: CliCommand = {
  name: 'demo',
  summary:
    'build a demo workspace and run the whole loop offline: ' +
    'collect, curate data, train the local writer, evaluate, compare',
  usage: `drag demo [dir] [--docs 40] [--pages 10] [--samples 4] [--seed 7] [--force]

Generates ~40 technical-report PDFs (400 pages, tables and specific facts) and ~200 questions with
ground-truth pages, builds the corpus and index, collects trajectories with the keyword agent on
the training questions, processes and formats them, trains the local query writer, evaluates the
keyword agent and the writer on the questions about held-out reports (30% of the PDFs, never seen
in training), and writes the comparison. No GPU, no network. --force rebuilds a folder an earlier
drag demo made (its corpus, runs, datasets, models and evaluations are deleted first); a folder
that holds any other DRAG workspace is never touched.`,
  async run(argv, io, signal) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        docs: { type: 'string', default: '40' },
        pages: { type: 'string', default: '10' },
        samples: { type: 'string', default: '4' },
        seed: { type: 'string', default: '7' },
        force: { type: 'boolean', default: false },
      },
    });
    const dir = path.resolve(positionals[0] ?? 'demo-workspace');
    if (existsSync(path.join(dir, 'drag.config.json'))) {
      if (!isDemoWorkspace(dir)) throw new UsageError(`${dir} already holds a DRAG workspace: choose an empty folder`);
      if (!values.force)
        throw new UsageError(
          `${dir} already holds a demo workspace: choose an empty folder, ` +
            'or rebuild this one with --force (npm run demo -- --force)',
        );
      for (const f of DEMO_OUTPUTS) await fsp.rm(path.join(dir, f), { recursive: true, force: true });
      io.stderr(`removed the earlier demo's ${DEMO_OUTPUTS.join(', ')} from ${dir}\n`);
    }
    const seed = Number(values.seed);
    const say = (t: string) => io.stderr(`${t}\n`);
    const t0 = performance.now();
    say(`[1/7] generating the demo corpus in ${dir}`);
    const corpus = await generateDemoCorpus(path.join(dir, 'corpus', 'pdfs'), {
      docs: Number(values.docs),
      pagesPerDoc: Number(values.pages),
      seed,
    });
    // Held out by report: the writer is evaluated on questions about reports it never saw in
    // training, so it cannot lean on having learnt their company names.
    const docs = seededShuffle(corpus.documents, seed);
    const trainDocs = new Set(docs.slice(0, Math.round(docs.length * 0.7)));
    const train = corpus.questions.filter((q) => trainDocs.has(q.answer_locations[0].document));
    const heldout = corpus.questions.filter((q) => !trainDocs.has(q.answer_locations[0].document));
    await fsp.writeFile(path.join(dir, 'questions.jsonl'), corpus.questions.map(toJsonLine).join(''));
    await fsp.writeFile(path.join(dir, 'questions_train.jsonl'), train.map(toJsonLine).join(''));
    await fsp.writeFile(path.join(dir, 'questions_heldout.jsonl'), heldout.map(toJsonLine).join(''));
    await writeJsonAtomic(path.join(dir, 'drag.config.json'), {
      questions: 'questions_heldout.jsonl',
      search: { topK: 3 },
      agent: { maxIterations: 5 },
    });
    say(
      `      ${corpus.documents.length} PDFs, ${corpus.pages} pages, ${corpus.questions.length} questions ` +
        `(${train.length} on ${trainDocs.size} reports to learn from, ` +
        `${heldout.length} on the other ${docs.length - trainDocs.size} held out)`,
    );
    say('[2/7] extracting page text (pdf.js, worker threads) and building the search index');
    const ocr = path.join(dir, 'corpus', 'ocr_output.jsonl');
    await buildCorpus(corpus.pdfDir, ocr, { signal });
    const { engine } = await openSearchEngine(ocr, { signal });
    say(`[3/7] collecting trajectories with the keyword agent (${values.samples} samples per training question)`);
    const quiet = { signal };
    await runCollection({
      ...quiet,
      questions: path.join(dir, 'questions_train.jsonl'),
      ocr,
      outDir: path.join(dir, 'runs', 'keyword-train'),
      agent: 'keyword',
      samples: Number(values.samples),
      samplingPreset: 'creative',
    });
    say('[4/7] processing and formatting the training data');
    const dataset = path.join(dir, 'datasets', 'keyword-train');
    await runProcess([path.join(dir, 'runs', 'keyword-train', 'trajectories.jsonl')], {
      processed: path.join(dataset, 'processed.jsonl'),
      stats: path.join(dataset, 'process_stats.json'),
      dataset: {
        outputDir: dataset,
        options: {
          formats: ['sft_query', 'sft_trajectory', 'dpo', 'reward', 'trl_sft', 'trl_dpo'],
          trainRatio: 1,
          seed,
          splitBy: 'question',
          reasoning: true,
        },
      },
    });
    say('[5/7] training the local query writer');
    const lines = (await fsp.readFile(path.join(dataset, 'sft_query_train.jsonl'), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const model = trainWriter(examplesFromSftQuery(lines), (t) => engine.termIdf(t), { seed });
    const modelFile = path.join(dir, 'models', 'writer.json');
    await writeJsonAtomic(modelFile, model);
    say(
      `      learned from ${model.trained.examples} successful queries ` +
        `(word accuracy ${(100 * model.trained.accuracy).toFixed(1)}%)`,
    );
    say('[6/7] evaluating the keyword agent and the writer on the held-out questions');
    const heldoutFile = path.join(dir, 'questions_heldout.jsonl');
    await runEvaluation({
      ...quiet,
      questions: heldoutFile,
      ocr,
      outDir: path.join(dir, 'evals', 'keyword-agent'),
      agent: 'keyword',
      samplingPreset: 'greedy',
    });
    await new Promise((r) => setTimeout(r, 1100)); // the writer's evaluation is the newer one
    await runEvaluation({
      ...quiet,
      questions: heldoutFile,
      ocr,
      outDir: path.join(dir, 'evals', 'query-writer'),
      agent: 'writer',
      writerModel: modelFile,
      samplingPreset: 'greedy',
    });
    say('[7/7] comparing');
    const c = compareRuns(
      await loadEvaluation(path.join(dir, 'evals', 'keyword-agent')),
      await loadEvaluation(path.join(dir, 'evals', 'query-writer')),
      { seed },
    );
    const md = comparisonMarkdown(c);
    await fsp.writeFile(path.join(dir, 'evals', 'comparison.md'), md);
    await writeJsonAtomic(path.join(dir, 'evals', 'comparison.json'), comparisonJson(c));
    io.stdout(`\n${md}\n`);
    io.stdout(
      `Done in ${((performance.now() - t0) / 1000).toFixed(0)} s. Open the workspace in VS Code: code "${dir}"\n` +
        'Then: the DRAG view shows the run, its failed searches and the dataset; ' +
        '"DRAG: Compare Evaluations" compares the two evaluations.\n',
    );
    return 0;
  },
};
