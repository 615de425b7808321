import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { type CollectOptions, runCollection } from '../../core/agent/collect';
import { runEvaluation } from '../../core/eval/evaluate';
import { SAMPLING_PRESETS } from '../../core/agent/sampling';
import { formatLineError } from '../../core/io/errors';
import {
  ENDPOINT_HELP,
  openCliWorkspace,
  resolveCorpus,
  resolveEndpoint,
  resolveQuestions,
  workspaceDefaults,
  workspaceHelp,
} from '../../core/workspace/cli';
import { type CliCommand, UsageError } from '../args';

const num = (v: string | undefined, name: string, integer = false): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)))
    throw new UsageError(`${name} must be a number${integer ? ' (integer)' : ''}`);
  return n;
};

const positive = (v: string | undefined, name: string): number | undefined => {
  const n = num(v, name, true);
  if (n !== undefined && n < 1) throw new UsageError(`${name} must be at least 1`);
  return n;
};

type Values = Record<string, string | boolean | string[] | undefined>;

const OPTIONS = {
  questions: { type: 'string' },
  dataset: { type: 'string' },
  ocr: { type: 'string' },
  'ocr-file': { type: 'string' },
  out: { type: 'string' },
  output: { type: 'string', short: 'o' },
  agent: { type: 'string' },
  'base-url': { type: 'string', multiple: true },
  model: { type: 'string' },
  'api-key': { type: 'string' },
  endpoint: { type: 'string' },
  workspace: { type: 'string' },
  concurrency: { type: 'string', default: '8' },
  timeout: { type: 'string', default: '120' },
  'max-iterations': { type: 'string' },
  'top-k': { type: 'string' },
  samples: { type: 'string', default: '1' },
  'sampling-config': { type: 'string' },
  temperature: { type: 'string' },
  'top-p': { type: 'string' },
  'repetition-penalty': { type: 'string' },
  'max-tokens': { type: 'string' },
  'max-model-len': { type: 'string' },
  'keep-images': { type: 'string' },
  limit: { type: 'string' },
  'include-json': { type: 'string', multiple: true },
  'exclude-json': { type: 'string', multiple: true },
  resume: { type: 'boolean', default: false },
  'tag-mode': { type: 'boolean', default: false },
  'system-prompt-file': { type: 'string' },
  'writer-model': { type: 'string' },
  'pdf-dir': { type: 'string' },
  'max-pixels': { type: 'string' },
  'cache-dir': { type: 'string' },
  json: { type: 'boolean', default: false },
  sequential: { type: 'boolean', default: false },
  retries: { type: 'string', default: '5' },
  'retry-base-ms': { type: 'string', default: '500' },
} as const;

/** The agent options shared by drag collect and drag eval: flags, else the workspace's, else the built-in defaults. */
async function agentOptions(
  values: Values,
  signal: AbortSignal,
  io: Parameters<CliCommand['run']>[1],
): Promise<CollectOptions> {
  const str = (k: string) => values[k] as string | undefined;
  const ws = await openCliWorkspace(str('workspace'), process.cwd(), (w) => io.stderr(`${w}\n`));
  const defaults = ws ? workspaceDefaults(ws) : undefined;
  const questions = resolveQuestions(str('questions') ?? str('dataset'), ws);
  const corpus = resolveCorpus(
    { ocr: str('ocr') ?? str('ocr-file'), pdfDir: str('pdf-dir'), cacheDir: str('cache-dir') },
    ws,
  );
  let outDir = str('out');
  let outFile: string | undefined;
  if (!outDir && str('output')) {
    const o = str('output')!;
    if (o.endsWith('.jsonl')) {
      outFile = o;
      outDir = path.dirname(o);
    } else outDir = o;
  }
  const ocr = corpus.ocr;
  if (!questions || !ocr || !outDir)
    throw new UsageError(
      ws
        ? `--out is required, and --questions unless ${ws.file} sets "questions"`
        : '--questions, --ocr and --out are required (or run in a workspace with drag.config.json)',
    );
  const server = resolveEndpoint(
    {
      baseUrls: values['base-url'] as string[] | undefined,
      model: str('model'),
      apiKey: str('api-key'),
      endpoint: str('endpoint'),
    },
    ws,
    process.env,
  );
  for (const note of server.notes) io.stderr(`note: ${note}\n`);
  const baseUrls = server.baseUrls;
  const agent = (str('agent') ?? (baseUrls.length ? 'openai' : str('writer-model') ? 'writer' : 'keyword')) as
    'openai' | 'keyword' | 'writer';
  if (agent !== 'openai' && agent !== 'keyword' && agent !== 'writer')
    throw new UsageError('--agent must be openai, keyword or writer');
  if (agent === 'writer' && !str('writer-model'))
    throw new UsageError('--agent writer needs --writer-model <model.json> (see drag writer train)');
  const concurrency = values.sequential ? 1 : num(str('concurrency'), '--concurrency', true)!;
  if (concurrency < 1) throw new UsageError('--concurrency must be >= 1');
  const keepImages = num(str('keep-images'), '--keep-images', true);
  if (keepImages !== undefined && keepImages < 0) throw new UsageError('--keep-images must be 0 or more');
  return {
    questions,
    ocr,
    outDir,
    outFile,
    agent,
    baseUrls,
    model: server.model,
    apiKey: server.apiKey,
    concurrency,
    timeoutMs: num(str('timeout'), '--timeout')! * 1000,
    maxIterations: num(str('max-iterations'), '--max-iterations', true) ?? defaults?.maxIterations,
    topK: num(str('top-k'), '--top-k', true) ?? defaults?.topK,
    samples: num(str('samples'), '--samples', true),
    samplingPreset: str('sampling-config') ?? defaults?.samplingPreset,
    samplingOverrides: {
      temperature: num(str('temperature'), '--temperature'),
      top_p: num(str('top-p'), '--top-p'),
      repetition_penalty: num(str('repetition-penalty'), '--repetition-penalty'),
      max_tokens: positive(str('max-tokens'), '--max-tokens'),
    },
    maxModelLen: positive(str('max-model-len'), '--max-model-len'),
    keepImages,
    limit: num(str('limit'), '--limit', true),
    include: values['include-json'] as string[] | undefined,
    exclude: values['exclude-json'] as string[] | undefined,
    resume: !!values.resume,
    tagMode: !!values['tag-mode'],
    systemPromptFile: str('system-prompt-file'),
    writerModel: str('writer-model'),
    retry: {
      maxAttempts: num(str('retries'), '--retries', true)!,
      baseDelayMs: num(str('retry-base-ms'), '--retry-base-ms')!,
    },
    pdfDir: corpus.pdfDir,
    maxPixels: num(str('max-pixels'), '--max-pixels', true),
    cacheDir: corpus.cacheDir,
    signal,
    onEvent: (e) => {
      if (values.json) io.stdout(`${JSON.stringify(e)}\n`);
      if (e.type === 'start')
        io.stderr(
          `run ${e.runId}: ${e.total} trajectories to collect ` +
            `(${e.questions} questions × ${e.samples} samples${e.skipped ? `, ${e.skipped} already done` : ''}) ` +
            `with ${e.agent} (${e.model}) -> ${e.file}\n`,
        );
      else if (e.type === 'progress' && (e.done % 10 === 0 || e.done === e.total)) {
        io.stderr(
          `[${e.done}/${e.total}] GT found ${e.gtFound}, errors ${e.errors}, ${e.perMinute}/min` +
            `${e.etaSeconds !== null ? `, ETA ${Math.round(e.etaSeconds)} s` : ''}\n`,
        );
      } else if (e.type === 'done')
        io.stderr(
          `${e.cancelled ? 'cancelled' : 'done'}: ${e.done}/${e.total} in ${e.seconds.toFixed(1)} s, ` +
            `GT found ${e.gtFound}, errors ${e.errors}\n`,
        );
    },
  };
}

export const collectCommand: CliCommand = {
  name: 'collect',
  summary: 'run the search agent over a question set and write trajectories',
  usage: `drag collect --questions <jsonl|json> --ocr <ocr_output.jsonl> --out <run dir> [--workspace DIR]
  [--agent openai|keyword|writer] [--writer-model model.json] [--endpoint NAME]
  [--base-url URL ...] [--model M] [--api-key K]
  [--concurrency 8] [--timeout 120] [--max-iterations 5] [--top-k 3] [--samples 1]
  [--sampling-config ${Object.keys(SAMPLING_PRESETS).join('|')}] [--temperature T] [--top-p P] [--repetition-penalty R]
  [--max-tokens N] [--max-model-len N] [--keep-images 6]
  [--limit N] [--include-json F] [--exclude-json F] [--resume] [--tag-mode] [--pdf-dir D] [--max-pixels N]
  [--retries 5] [--retry-base-ms 500] [--system-prompt-file F] [--json]

Writes <run dir>/trajectories.jsonl (appended, fsynced, in completion order) and <run dir>/run.json.
--agent keyword needs no model server (the default when no server is given). Several
--base-url values are used round-robin. --resume skips questions (and samples) that already have a
final record and retries the errored ones (including replies cut at --max-tokens and requests
longer than the server's context). --max-tokens defaults to the preset's 4096, 16384 for a
Thinking model; each request is fitted under the server's max_model_len (read from /v1/models, or
--max-model-len): the oldest page images go first (at most --keep-images stay), then max_tokens
shrinks. DRAG's --ocr-file and --output FILE work as aliases.
Progress goes to stderr; --json prints events on stdout.

${ENDPOINT_HELP}

${workspaceHelp('agent')}`,
  async run(argv, io, signal) {
    const { values } = parseArgs({ args: argv, options: OPTIONS });
    const summary = await runCollection(await agentOptions(values, signal, io));
    for (const p of summary.problems) io.stderr(`${formatLineError(p)}\n`);
    return summary.cancelled ? 130 : summary.errors > 0 ? 1 : 0;
  },
};

export const evalCommand: CliCommand = {
  name: 'eval',
  summary: 'evaluate a model (or the keyword agent) on a question set: trajectories + metrics',
  usage: `drag eval --questions <jsonl|json> --ocr <ocr_output.jsonl> --out <eval dir> [--endpoint NAME]
  [--workspace DIR] [every drag collect option]

Runs the agent over the question set (the same loop and prompt as collection, explicit sampling;
--sampling-config greedy for reproducible numbers), then writes <eval dir>/summary.json and
<eval dir>/per_question.jsonl (see drag score) beside trajectories.jsonl and run.json. Compare
evaluations with drag compare. --resume continues an interrupted evaluation. A question retried
by --resume counts once, with its last final record.

${ENDPOINT_HELP}

${workspaceHelp('agent')}`,
  async run(argv, io, signal) {
    const { values } = parseArgs({ args: argv, options: OPTIONS });
    const result = await runEvaluation(await agentOptions(values, signal, io));
    const s = result.summary;
    const pct = (k: string) => (typeof s[k] === 'number' ? `${(100 * (s[k] as number)).toFixed(1)}%` : '–');
    io.stderr(
      `${s.total_questions} questions: success ${pct('success_rate')}, Hit@1 ${pct('hit_at_1')}, ` +
        `MRR ${Number(s.mrr).toFixed(3)}, ANLS* ${Number(s.avg_anls).toFixed(3)}, ` +
        `page F1 ${Number(s.avg_page_f1).toFixed(3)}\n`,
    );
    if (values.json) io.stdout(`${JSON.stringify({ type: 'summary', ...s })}\n`);
    return result.cancelled ? 130 : 0;
  },
};
