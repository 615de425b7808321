import * as path from 'node:path';
import type { LineError } from '../io/errors';
import { type ReadHash, withReadHash } from '../io/hash';
import { indexJsonl, indexProblems, NO_SUMMARY } from '../io/jsonl';
import { LineStore, writeJsonAtomic, writeLinesAtomic } from '../io/write';
import type { Trajectory } from '../schema/trajectory';
import { isTrajectory } from '../schema/trajectoryCheck.generated';
import { explainTrajectory } from '../schema/trajectoryProblems';
import { DatasetBuilder, type FormatOptions, type FormatReport, type PairRecord } from './format';
import {
  minePairs,
  processedLineMeta,
  processedLinePairs,
  processedLineStart,
  type MinableRecord,
  ProcessStatsBuilder,
  processTrajectory,
  type ProcessedRecord,
  pairSide,
  type SideRecord,
} from './process';

export interface ProcessOptions {
  topK?: number;
  includeFailed?: boolean;
  minMargin?: number;
  signal?: AbortSignal;
}

export interface ProcessOutcome<R = ProcessedRecord> {
  /** The records kept for output (the gt_ever_found ones, or all with includeFailed), pairs mined. */
  records: R[];
  stats: Record<string, unknown>;
  errors: LineError[];
  /** Each input and the SHA-256 of the bytes that were read; empty unless asked (a dataset's manifest). */
  inputs: Array<{ path: string; sha256: string }>;
}

/**
 * Lets the event loop run for a moment during the long synchronous work after the read (pair mining
 * and the pair formats' lines). Without it the files that {@link DatasetBuilder.writeUnpaired}
 * started would take no step (open, write, fsync, rename) until that work is done: each step needs
 * the main thread's event loop. (Cancelling is still only heard while reading: once the formats
 * without pairs are being written, the run finishes, so that no dataset is left half written.)
 */
function pause(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

/** Questions or records between two {@link pause}s: a few milliseconds of work. */
const PAUSE_EVERY = 500;

/** How {@link processInputs} keeps the records it reads and mines their pairs. */
interface Keeping<R> {
  /** What stays in memory of a processed record (the record itself, or less). */
  retain: (r: ProcessedRecord, kept: boolean) => R;
  /** Mines the pairs of one question's retained records ({@link minePairs}). */
  mine: (group: R[], minMargin: number) => void;
  /** Hash every input for a dataset's manifest. */
  hashInputs?: boolean;
  /** Called once every trajectory is read, before the pairs are mined. */
  afterRead?: () => void;
}

/**
 * Reads every input's trajectories, in order, and hands each processed record to `retain`; then
 * mines the DPO pairs per question across all of them. Returns the statistics over every
 * trajectory and what was retained of the records kept for output.
 */
async function processInputs<R extends MinableRecord & Pick<ProcessedRecord, 'question_id' | 'gt_ever_found'>>(
  inputs: readonly string[],
  options: ProcessOptions,
  { retain, mine, hashInputs = false, afterRead }: Keeping<R>,
): Promise<ProcessOutcome<R>> {
  const topK = options.topK ?? 3;
  const all: R[] = [];
  const errors: LineError[] = [];
  const read: ProcessOutcome['inputs'] = [];
  const stats = new ProcessStatsBuilder();
  for (const input of inputs) {
    const indexInput = (hash?: ReadHash) =>
      indexJsonl(
        input,
        (value) => {
          const verdict = isTrajectory(value) ? null : explainTrajectory(value);
          if (verdict && !verdict.ok) return verdict;
          const r = processTrajectory(value as Trajectory, topK);
          stats.add(r);
          all.push(retain(r, options.includeFailed === true || r.gt_ever_found));
          return NO_SUMMARY;
        },
        undefined,
        { signal: options.signal, hash },
      );
    let index;
    if (hashInputs) {
      let sha256;
      [index, sha256] = await withReadHash(input, indexInput);
      read.push({ path: input, sha256 });
    } else index = await indexInput();
    errors.push(...indexProblems(index));
  }
  afterRead?.();
  const byQuestion = new Map<string, R[]>();
  for (const r of all) {
    const list = byQuestion.get(r.question_id);
    if (list) list.push(r);
    else byQuestion.set(r.question_id, [r]);
  }
  let mined = 0;
  for (const group of byQuestion.values()) {
    mine(group, options.minMargin ?? 0);
    if (++mined % PAUSE_EVERY === 0) await pause();
  }
  const kept = options.includeFailed ? all : all.filter((r) => r.gt_ever_found);
  const pairs = kept.reduce((n, r) => n + r.query_pairs.length, 0);
  return {
    records: kept,
    stats: stats.stats(options.includeFailed ?? false, kept.length, pairs),
    errors,
    inputs: read,
  };
}

/** `drag process` in memory: every input file's trajectories, pairs mined per question across them. */
export async function processFiles(inputs: readonly string[], options: ProcessOptions = {}): Promise<ProcessOutcome> {
  return processInputs(inputs, options, { retain: (r) => r, mine: (group, margin) => minePairs(group, margin) });
}

/** Where `drag process` writes: processed.jsonl, the statistics, a training dataset; any of them. */
export interface ProcessOutputs {
  processed?: string;
  stats?: string;
  /** The formats of `drag format`, written from the records in memory: nothing is parsed twice. */
  dataset?: { outputDir: string; options: FormatOptions };
}

/** What `drag process` keeps of a trajectory until its question's pairs are mined: its searches as pair sides. */
type Retained = SideRecord & PairRecord & Pick<ProcessedRecord, 'gt_ever_found'> & { line: number };

/**
 * `drag process` to files, in one pass over the trajectories. Everything that does not depend on
 * the pairs is serialised as each trajectory is read: processed.jsonl's line up to its pairs and
 * after them, and the dataset's examples of every format without pairs, into bytes off the heap.
 * Only what pair mining and the pair formats need stays in memory (no search results, ground truth,
 * answers or statistics, which are counted as each trajectory is read), so the parsed input dies
 * young instead of filling the old generation: the garbage collector was the largest cost after
 * parsing. The outcome's records are those slim records.
 */
export async function runProcess(
  inputs: readonly string[],
  outputs: ProcessOutputs,
  options: ProcessOptions = {},
): Promise<ProcessOutcome<Retained> & { dataset: FormatReport | null }> {
  const starts = outputs.processed ? new LineStore() : null;
  const metas = outputs.processed ? new LineStore(1 << 20) : null;
  const builder = outputs.dataset ? new DatasetBuilder(outputs.dataset.options) : null;
  const retain = (r: ProcessedRecord, kept: boolean): Retained => {
    let line = -1;
    if (kept && starts && metas) {
      line = starts.add(processedLineStart(r));
      metas.add(processedLineMeta(r));
    }
    if (kept) builder?.addRecord(r);
    return {
      id: r.id,
      question_id: r.question_id,
      // A record not kept is never written, nor owns a pair (none of its searches scores): its question can go.
      question: kept ? r.question : '',
      searches: r.searches.map((s) => pairSide(s, r.id)),
      query_pairs: r.query_pairs,
      gt_ever_found: r.gt_ever_found,
      line,
    };
  };
  // The inputs are hashed only for a dataset's manifest.
  // Every record is read before the pairs are mined: the formats without pairs can be written meanwhile.
  const outcome = await processInputs(inputs, options, {
    retain,
    mine: (group, margin) => minePairs(group, margin, 'own'),
    hashInputs: Boolean(outputs.dataset),
    afterRead: () => (outputs.dataset ? builder?.writeUnpaired(outputs.dataset.outputDir) : undefined),
  });
  // The files are written at the same time, so that their fsyncs wait on the disk together.
  const writes: Array<Promise<unknown>> = [];
  if (outputs.processed && starts && metas)
    writes.push(
      writeLinesAtomic(
        outputs.processed,
        (function* () {
          for (const r of outcome.records) {
            yield starts.bytes(r.line);
            yield processedLinePairs(r);
            yield metas.bytes(r.line);
          }
        })(),
      ),
    );
  if (outputs.stats) {
    writes.push(writeJsonAtomic(outputs.stats, outcome.stats));
    // The dataset's own stats.json, if it is the same file, is written after (and wins), as always.
    const datasetStats = outputs.dataset && path.resolve(outputs.dataset.outputDir, 'stats.json');
    if (datasetStats === path.resolve(outputs.stats)) await Promise.all(writes);
  }
  let dataset: FormatReport | null = null;
  try {
    if (outputs.dataset && builder) {
      let added = 0;
      for (const r of outcome.records) {
        builder.addPairs(r);
        if (++added % PAUSE_EVERY === 0) await pause();
      }
      dataset = await builder.write(outputs.dataset.outputDir, outcome.inputs, outcome.errors, {
        processed: {
          top_k: options.topK ?? 3,
          include_failed: options.includeFailed ?? false,
          min_margin: options.minMargin ?? 0,
          output: outputs.processed ? path.resolve(outputs.processed) : null,
        },
      });
    }
  } catch (err) {
    await Promise.allSettled(writes); // none left running, none failing unheard
    throw err;
  }
  await Promise.all(writes);
  return { ...outcome, dataset };
}
