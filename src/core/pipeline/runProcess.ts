import { formatFieldPath, type LineError } from '../io/errors';
import { indexJsonl, indexProblems } from '../io/jsonl';
import { LineStore, writeJsonAtomic, writeLinesAtomic } from '../io/write';
import { compileFastCheck } from '../schema/fastCheck';
import { Trajectory } from '../schema/trajectory';
import {
  minePairs,
  processedLineEnd,
  processedLineStart,
  processStats,
  processTrajectory,
  type ProcessedRecord,
} from './process';

const isTrajectory = compileFastCheck(Trajectory);

export interface ProcessOptions {
  topK?: number;
  includeFailed?: boolean;
  minMargin?: number;
  signal?: AbortSignal;
}

export interface ProcessOutcome {
  records: ProcessedRecord[];
  stats: Record<string, unknown>;
  errors: LineError[];
}

/**
 * Reads every input's trajectories, in order, and hands each processed record to `keep`; then mines
 * the DPO pairs per question across all of them. Returns the statistics over every trajectory and
 * the records kept for output (the gt_ever_found ones, or all with includeFailed).
 */
async function processInputs(
  inputs: readonly string[],
  options: ProcessOptions,
  onRecord: (r: ProcessedRecord, kept: boolean) => void,
): Promise<ProcessOutcome> {
  const topK = options.topK ?? 3;
  const all: ProcessedRecord[] = [];
  const errors: LineError[] = [];
  for (const input of inputs) {
    const index = await indexJsonl(
      input,
      (value) => {
        if (!isTrajectory(value)) {
          const p = Trajectory.safeParse(value);
          if (!p.success)
            return {
              ok: false,
              problems: p.error.issues
                .slice(0, 5)
                .map((i) => ({ fieldPath: formatFieldPath(i.path), message: i.message })),
            };
        }
        const r = processTrajectory(value as Trajectory, topK);
        all.push(r);
        onRecord(r, options.includeFailed === true || r.gt_ever_found);
        return { ok: true, summary: null };
      },
      undefined,
      { signal: options.signal },
    );
    errors.push(...indexProblems(index));
  }
  const byQuestion = new Map<string, ProcessedRecord[]>();
  for (const r of all) {
    const list = byQuestion.get(r.question_id);
    if (list) list.push(r);
    else byQuestion.set(r.question_id, [r]);
  }
  for (const group of byQuestion.values()) minePairs(group, options.minMargin ?? 0);
  const kept = options.includeFailed ? all : all.filter((r) => r.gt_ever_found);
  return { records: kept, stats: processStats(all, options.includeFailed ?? false, kept.length), errors };
}

/** `drag process` in memory: every input file's trajectories, pairs mined per question across them. */
export async function processFiles(inputs: readonly string[], options: ProcessOptions = {}): Promise<ProcessOutcome> {
  return processInputs(inputs, options, () => {});
}

const NO_RESULTS: ProcessedRecord['searches'][number]['results'] = [];

/**
 * `drag process` to a file. Each kept record is serialised as it is read, up to its pairs, into
 * bytes off the heap, and its search results are dropped at once: nothing needs them after that,
 * and the parsed input dies young instead of filling the old generation (the garbage collector was
 * a quarter of the time). The outcome's records therefore have empty `results`; the file has them.
 */
export async function runProcess(
  inputs: readonly string[],
  output: string,
  statsFile: string | undefined,
  options: ProcessOptions = {},
): Promise<ProcessOutcome> {
  const starts = new LineStore();
  const outcome = await processInputs(inputs, options, (r, kept) => {
    if (kept) starts.add(processedLineStart(r));
    for (const s of r.searches) s.results = NO_RESULTS;
  });
  await writeLinesAtomic(
    output,
    (function* () {
      for (const [i, r] of outcome.records.entries()) {
        yield starts.bytes(i);
        yield processedLineEnd(r);
      }
    })(),
  );
  if (statsFile) await writeJsonAtomic(statsFile, outcome.stats);
  return outcome;
}
