import { formatFieldPath, type LineError } from '../io/errors';
import { indexJsonl, indexProblems } from '../io/jsonl';
import { writeJsonAtomic, writeJsonlAtomic } from '../io/write';
import { compileFastCheck } from '../schema/fastCheck';
import { Trajectory } from '../schema/trajectory';
import { minePairs, processStats, processTrajectory, type ProcessedRecord } from './process';

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

/** `drag process` in memory: every input file's trajectories, pairs mined per question across them. */
export async function processFiles(inputs: readonly string[], options: ProcessOptions = {}): Promise<ProcessOutcome> {
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
        all.push(processTrajectory(value as Trajectory, topK));
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

export async function runProcess(
  inputs: readonly string[],
  output: string,
  statsFile: string | undefined,
  options: ProcessOptions = {},
): Promise<ProcessOutcome> {
  const outcome = await processFiles(inputs, options);
  await writeJsonlAtomic(output, outcome.records);
  if (statsFile) await writeJsonAtomic(statsFile, outcome.stats);
  return outcome;
}
