import { createHash, type Hash } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { LineError } from '../io/errors';
import { indexJsonl, indexProblems, type Summarizer } from '../io/jsonl';
import { writeJsonAtomic, writeLinesAtomic } from '../io/write';
import type { FormatOptions, FormatReport } from './format';
import { minePairs, processedLinePairs, processStats, type ProcessedRecord, type StatsRecord } from './process';
import { ProcessSink, type Retained, trajectoryStep } from './processSink';
import type { ProcessWorkerData, ProcessWorkerReply } from './processWorker';

export interface ProcessOptions {
  topK?: number;
  includeFailed?: boolean;
  minMargin?: number;
  signal?: AbortSignal;
  /**
   * Files at least this big are split in two at a line start, the second half processed by a worker
   * thread at the same time (the output is the same). Default 8 MB: below that, starting a worker
   * costs more than it saves. Infinity never splits.
   */
  splitMinBytes?: number;
}

export interface ProcessOutcome<R = ProcessedRecord> {
  /** The records kept for output (the gt_ever_found ones, or all with includeFailed), pairs mined. */
  records: R[];
  stats: Record<string, unknown>;
  errors: LineError[];
  /** Each input and the SHA-256 of the bytes that were read. */
  inputs: Array<{ path: string; sha256: string }>;
}

/**
 * Reads every input's trajectories, in order, and hands each processed record to `retain`, which
 * returns what stays in memory of it (the record itself, or less); then mines the DPO pairs per
 * question across all of them. Returns the statistics over every trajectory and what was retained
 * of the records kept for output.
 */
async function processInputs<R extends StatsRecord & { question_id: string }>(
  inputs: readonly string[],
  options: ProcessOptions,
  retain: (r: ProcessedRecord, kept: boolean) => R,
  readFile: FileReader<R> = readWhole,
): Promise<ProcessOutcome<R>> {
  const all: R[] = [];
  const errors: LineError[] = [];
  const read: ProcessOutcome['inputs'] = [];
  const step = trajectoryStep(options.topK ?? 3, options.includeFailed === true, (r, kept) => {
    all.push(retain(r, kept));
  });
  for (const input of inputs) {
    const hash = createHash('sha256');
    const { problems, after } = await readFile(input, step, hash, options.signal);
    for (const r of after) all.push(r);
    read.push({ path: input, sha256: hash.digest('hex') });
    errors.push(...problems);
  }
  const byQuestion = new Map<string, R[]>();
  for (const r of all) {
    const list = byQuestion.get(r.question_id);
    if (list) list.push(r);
    else byQuestion.set(r.question_id, [r]);
  }
  for (const group of byQuestion.values()) minePairs(group, options.minMargin ?? 0);
  const kept = options.includeFailed ? all : all.filter((r) => r.gt_ever_found);
  const stats = processStats(all, options.includeFailed ?? false, kept.length);
  return { records: kept, stats, errors, inputs: read };
}

/**
 * Runs `step` over every line of a file (feeding `hash` every byte, in order). `after`: records
 * made elsewhere (a worker) that come after those `step` saw.
 */
type FileReader<R> = (
  input: string,
  step: Summarizer<null>,
  hash: Hash,
  signal?: AbortSignal,
) => Promise<{ problems: LineError[]; after: R[] }>;

async function readWhole<R>(input: string, step: Summarizer<null>, hash: Hash, signal?: AbortSignal) {
  const index = await indexJsonl(input, step, undefined, { signal, hash });
  return { problems: indexProblems(index), after: [] as R[] };
}

/** `drag process` in memory: every input file's trajectories, pairs mined per question across them. */
export async function processFiles(inputs: readonly string[], options: ProcessOptions = {}): Promise<ProcessOutcome> {
  return processInputs(inputs, options, (r) => r);
}

/** Where `drag process` writes: processed.jsonl, the statistics, a training dataset; any of them. */
export interface ProcessOutputs {
  processed?: string;
  stats?: string;
  /** The formats of `drag format`, written from the records in memory: nothing is parsed twice. */
  dataset?: { outputDir: string; options: FormatOptions };
}

/** The worker script: the bundled one beside this bundle, or the TypeScript source under tsx (tests). */
function startWorker(data: ProcessWorkerData): Worker | null {
  if (__filename.endsWith('.ts'))
    return new Worker(`require('tsx/cjs'); require(${JSON.stringify(path.join(__dirname, 'processWorker.ts'))});`, {
      eval: true,
      workerData: data,
    });
  const script = path.join(__dirname, 'processWorker.js');
  return existsSync(script) ? new Worker(script, { workerData: data }) : null;
}

/** The first line start at or after the middle of the file, or null if there is none before the end. */
async function middleLineStart(file: string, size: number): Promise<number | null> {
  const handle = await fsp.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 16);
    for (let pos = Math.floor(size / 2); pos < size;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return null;
      const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
      if (nl >= 0) return pos + nl + 1 < size ? pos + nl + 1 : null;
      pos += bytesRead;
    }
    return null;
  } finally {
    await handle.close();
  }
}

/** Feeds `hash` the bytes of `file` from `start` to its end. */
async function hashRest(file: string, start: number, hash: Hash): Promise<void> {
  const handle = await fsp.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let pos = start; ;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return;
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

/**
 * `drag process` to files, in one pass over the trajectories. Everything that does not depend on
 * the pairs is serialised as each trajectory is read (see {@link ProcessSink}); only what pair
 * mining, the statistics and the pair formats need stays in memory (no search results, ground truth
 * or answers), so the parsed input dies young instead of filling the old generation: the garbage
 * collector was the largest cost after parsing. A big file is split in two, the second half read by
 * a worker thread at the same time, its output appended after the first's: the same bytes out. The
 * outcome's records are the slim records.
 */
export async function runProcess(
  inputs: readonly string[],
  outputs: ProcessOutputs,
  options: ProcessOptions = {},
): Promise<ProcessOutcome<Retained> & { dataset: FormatReport | null; splitFiles: number }> {
  let splitFiles = 0;
  const sink = new ProcessSink(Boolean(outputs.processed), outputs.dataset?.options ?? null);
  const splitMin = options.splitMinBytes ?? 8 << 20;
  const readSplit: FileReader<Retained> = async (input, step, hash, signal) => {
    const size = (await fsp.stat(input)).size;
    const mid = size >= splitMin ? await middleLineStart(input, size) : null;
    const worker =
      mid === null
        ? null
        : startWorker({
            file: input,
            range: { start: mid, end: size },
            topK: options.topK ?? 3,
            includeFailed: options.includeFailed === true,
            processed: Boolean(outputs.processed),
            dataset: outputs.dataset?.options ?? null,
          });
    if (mid === null || !worker) return readWhole(input, step, hash, signal);
    const reply = new Promise<ProcessWorkerReply>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the drag process worker stopped (exit code ${code})`)));
    });
    reply.catch(() => {}); // awaited below; a failure of this thread's half must not leave it unhandled
    try {
      const index = await indexJsonl(input, step, undefined, { signal, hash, range: { start: 0, end: mid } });
      await hashRest(input, mid, hash);
      const r = await reply;
      if (!r.ok) throw new Error(`drag process worker: ${r.message}`);
      sink.absorb(r.sink, r.retained);
      splitFiles++;
      const before = index.nextLine - 1; // lines in the first half: the worker numbered its own from 1
      return {
        problems: [...indexProblems(index), ...r.errors.map((e) => ({ ...e, line: e.line + before }))],
        after: r.retained,
      };
    } finally {
      void worker.terminate();
    }
  };
  const outcome = await processInputs(inputs, options, (r, kept) => sink.retain(r, kept), readSplit);
  const { starts, metas, builder } = sink;
  if (outputs.processed && starts && metas)
    await writeLinesAtomic(
      outputs.processed,
      (function* () {
        for (const r of outcome.records) {
          yield starts.bytes(r.line);
          yield processedLinePairs(r);
          yield metas.bytes(r.line);
        }
      })(),
    );
  if (outputs.stats) await writeJsonAtomic(outputs.stats, outcome.stats);
  let dataset: FormatReport | null = null;
  if (outputs.dataset && builder) {
    for (const r of outcome.records) builder.addPairs(r);
    dataset = await builder.write(outputs.dataset.outputDir, outcome.inputs, outcome.errors, {
      processed: {
        top_k: options.topK ?? 3,
        include_failed: options.includeFailed ?? false,
        min_margin: options.minMargin ?? 0,
        output: outputs.processed ? path.resolve(outputs.processed) : null,
      },
    });
  }
  return { ...outcome, dataset, splitFiles };
}
