import { parseArgs } from 'node:util';
import { formatLineError } from '../../core/io/errors';
import {
  ALL_FORMATS,
  type FormatName,
  type FormatOptions,
  formatProcessed,
  type FormatReport,
} from '../../core/pipeline/format';
import { runProcess } from '../../core/pipeline/runProcess';
import { type CliCommand, type CliIO, UsageError } from '../args';

/** The options of `drag format`, which `drag process` takes too when it writes a dataset. */
const DATASET_OPTIONS = {
  formats: { type: 'string', multiple: true },
  'train-ratio': { type: 'string', default: '0.9' },
  seed: { type: 'string', default: '42' },
  'split-by': { type: 'string', default: 'question' },
  'no-reasoning': { type: 'boolean', default: false },
} as const;

const DATASET_USAGE =
  `[--formats ${ALL_FORMATS.join(',')}|all] [--train-ratio 0.9] [--seed 42] ` +
  '[--split-by question|document] [--no-reasoning]';

function datasetOptions(values: {
  formats?: string[];
  'train-ratio': string;
  seed: string;
  'split-by': string;
  'no-reasoning': boolean;
}): FormatOptions {
  const requested = (values.formats ?? ['all']).flatMap((f) => f.split(/[\s,]+/)).filter(Boolean);
  const formats = requested.includes('all') ? [...ALL_FORMATS] : requested;
  const unknown = formats.filter((f) => !(ALL_FORMATS as readonly string[]).includes(f));
  if (unknown.length)
    throw new UsageError(`unknown format(s): ${unknown.join(', ')}; choose from ${ALL_FORMATS.join(', ')}, all`);
  const trainRatio = Number(values['train-ratio']);
  if (!(trainRatio >= 0 && trainRatio <= 1)) throw new UsageError('--train-ratio must be between 0 and 1');
  const splitBy = values['split-by'];
  if (splitBy !== 'question' && splitBy !== 'document') throw new UsageError('--split-by must be question or document');
  return {
    formats: formats as FormatName[],
    trainRatio,
    seed: Number(values.seed),
    splitBy,
    reasoning: !values['no-reasoning'],
  };
}

function reportDataset(io: CliIO, report: FormatReport, options: FormatOptions, outputDir: string): void {
  for (const e of report.errors) io.stderr(`${formatLineError(e)}\n`);
  for (const [name, f] of Object.entries(report.formats)) io.stderr(`${name}: ${f.train} train, ${f.val} val\n`);
  io.stderr(
    `split by ${options.splitBy}: ${report.trainQuestions} questions in train, ${report.valQuestions} in val; ` +
      `wrote ${outputDir}\n`,
  );
}

export const processCommand: CliCommand = {
  name: 'process',
  summary: 'trajectories -> processed records (rank scores, best search, effort, DPO pairs), stats, a dataset',
  usage:
    'drag process --input <trajectories.jsonl> [--input <more.jsonl> ...] [--output <processed.jsonl>] ' +
    '[--stats <stats.json>] [--top-k 3] [--include-failed] [--min-margin 0] ' +
    `[--output-dir <dir> ${DATASET_USAGE}]

DRAG's processing (see docs/drag-compatibility.md): each search's rank score, the best search, DRAG's cumulative
effort score and the corrected effort_score_until_first_hit, and DPO query pairs mined across all
samples and runs of the same question (a pair needs a better search with a positive score and a
score difference above 0 and at least --min-margin). Trajectories that never found the ground
truth are left out unless --include-failed. DRAG's option aliases -i, -o, -s work.

With --output-dir, it also writes the training data that drag format would write from
processed.jsonl (same options, same files), in the same pass: one step from trajectories to a
dataset, as DRAG's process_trajectories.py --format does. At least one of --output and
--output-dir is needed.`,
  async run(argv, io, signal) {
    const { values } = parseArgs({
      args: argv,
      options: {
        input: { type: 'string', short: 'i', multiple: true },
        output: { type: 'string', short: 'o' },
        stats: { type: 'string', short: 's' },
        'top-k': { type: 'string', default: '3' },
        'include-failed': { type: 'boolean', default: false },
        'min-margin': { type: 'string', default: '0' },
        'output-dir': { type: 'string' },
        ...DATASET_OPTIONS,
      },
    });
    if (!values.input?.length) throw new UsageError('--input is required');
    if (!values.output && !values['output-dir']) throw new UsageError('--output or --output-dir is required');
    if (values.formats && !values['output-dir']) throw new UsageError('--formats needs --output-dir');
    const topK = Number(values['top-k']);
    const minMargin = Number(values['min-margin']);
    if (!Number.isInteger(topK) || topK < 1) throw new UsageError('--top-k must be a positive integer');
    if (!(minMargin >= 0)) throw new UsageError('--min-margin must be >= 0');
    const outputDir = values['output-dir'];
    const dataset = outputDir ? { outputDir, options: datasetOptions(values) } : undefined;
    const outcome = await runProcess(
      values.input,
      {
        processed: values.output,
        stats: values.stats,
        dataset,
      },
      { topK, includeFailed: values['include-failed'], minMargin, signal },
    );
    for (const e of outcome.errors) io.stderr(`${formatLineError(e)}\n`);
    const s = outcome.stats;
    io.stderr(
      `${s.total_trajectories} trajectories: ${s.valid_trajectories} found the ground truth, ` +
        `${s.failed_trajectories} did not; ${s.output_examples} processed records ` +
        `with ${s.total_query_pairs} DPO pairs${values.output ? ` written to ${values.output}` : ''}\n`,
    );
    if (outcome.dataset && dataset)
      reportDataset(io, { ...outcome.dataset, errors: [] }, dataset.options, dataset.outputDir);
    return outcome.errors.length ? 1 : 0;
  },
};

export const formatCommand: CliCommand = {
  name: 'format',
  summary: 'processed records -> SFT/DPO/reward data (DRAG, TRL, LLaMA-Factory), split by question',
  usage: `drag format --input <processed.jsonl> --output-dir <dir> ${DATASET_USAGE}

Writes <format>_train.jsonl / <format>_val.jsonl per format, stats.json, manifest.json (inputs with
content hashes, options, counts) and, for the LLaMA-Factory exports, dataset_info.json. No question
(or, with --split-by document, no document) is in both train and val.`,
  async run(argv, io) {
    const { values } = parseArgs({
      args: argv,
      options: {
        input: { type: 'string', short: 'i', multiple: true },
        'output-dir': { type: 'string', short: 'o' },
        ...DATASET_OPTIONS,
      },
    });
    if (!values.input?.length || !values['output-dir']) throw new UsageError('--input and --output-dir are required');
    const options = datasetOptions(values);
    const report = await formatProcessed(values.input, values['output-dir'], options);
    reportDataset(io, report, options, values['output-dir']);
    return report.errors.length ? 1 : 0;
  },
};
