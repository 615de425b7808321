import { parseArgs } from 'node:util';
import { comparisonJson, comparisonMarkdown, compareRuns, loadEvaluation } from '../../core/eval/compare';
import { scoreTrajectoriesFile, writeEvaluation } from '../../core/eval/score';
import { formatLineError } from '../../core/io/errors';
import { type CliCommand, UsageError } from '../args';

export const scoreCommand: CliCommand = {
  name: 'score',
  summary: 'metrics of collected trajectories: summary.json + per_question.jsonl',
  usage:
    'drag score --trajectories <trajectories.jsonl> [--questions <questions.jsonl>] --out <dir> ' +
    `[--top-k K] [--json]

Ground truth comes from each trajectory, or from the questions file when given (matched by
question id). Writes <dir>/summary.json (DRAG's keys plus "mrr") and <dir>/per_question.jsonl
(DRAG's keys plus every search's query and ground-truth rank).`,
  async run(argv, io) {
    const { values } = parseArgs({
      args: argv,
      options: {
        trajectories: { type: 'string' },
        questions: { type: 'string' },
        out: { type: 'string' },
        'top-k': { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
    if (!values.trajectories || !values.out) throw new UsageError('--trajectories and --out are required');
    const topK = values['top-k'] ? Number(values['top-k']) : undefined;
    const result = await scoreTrajectoriesFile(values.trajectories, { questions: values.questions, topK });
    for (const e of result.errors) io.stderr(`${formatLineError(e)}\n`);
    await writeEvaluation(values.out, result);
    if (values.json) io.stdout(`${JSON.stringify(result.summary)}\n`);
    else {
      const s = result.summary;
      const pct = (k: string) => (typeof s[k] === 'number' ? `${(100 * (s[k] as number)).toFixed(1)}%` : '–');
      io.stdout(
        `${result.records.length} questions: success ${pct('success_rate')}, Hit@1 ${pct('hit_at_1')}, ` +
          `MRR ${(s.mrr as number).toFixed(3)}, first-search MRR ${(s.first_search_mrr as number).toFixed(3)}, ` +
          `ANLS* ${(s.avg_anls as number).toFixed(3)}, page F1 ${(s.avg_page_f1 as number).toFixed(3)}\n` +
          `wrote ${values.out}/summary.json and per_question.jsonl\n`,
      );
    }
    return result.errors.length ? 1 : 0;
  },
};

export const compareCommand: CliCommand = {
  name: 'compare',
  summary: 'compare evaluations: deltas, bootstrap CIs, McNemar, per-question wins/losses',
  usage:
    'drag compare <eval dir|summary.json> <eval dir|summary.json> [...] [--json] [--markdown] ' +
    `[--seed S] [--resamples N]

The first run is the baseline; each other run is compared against it. An evaluation folder holds
summary.json and per_question.jsonl; DRAG's X_summary.json works too (with X.jsonl beside it for
the paired statistics). --json prints ` +
    '{"runs","metrics":{name:{a,b,delta,relative,ci95,p}},"questions":{wins,losses,ties}}.',
  async run(argv, io) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        markdown: { type: 'boolean', default: false },
        seed: { type: 'string', default: '42' },
        resamples: { type: 'string', default: '2000' },
      },
    });
    if (positionals.length < 2) throw new UsageError('give at least two evaluations');
    const runs = await Promise.all(positionals.map((p) => loadEvaluation(p)));
    const options = { seed: Number(values.seed), resamples: Number(values.resamples) };
    const comparisons = runs.slice(1).map((r) => compareRuns(runs[0], r, options));
    if (values.json) {
      const json =
        comparisons.length === 1
          ? comparisonJson(comparisons[0])
          : { runs: runs.map((r) => r.label), baseline: runs[0].label, comparisons: comparisons.map(comparisonJson) };
      io.stdout(`${JSON.stringify(json)}\n`);
    } else {
      for (const c of comparisons)
        io.stdout(`${values.markdown ? '' : `${c.runs[1]} vs ${c.runs[0]}\n\n`}${comparisonMarkdown(c)}\n`);
    }
    return 0;
  },
};
