import { formatFieldPath } from '../io/errors';
import type { Summarizer } from '../io/jsonl';
import { type ExportedLines, LineStore } from '../io/write';
import { compileFastCheck } from '../schema/fastCheck';
import { Trajectory } from '../schema/trajectory';
import { DatasetBuilder, type ExportedDataset, type FormatOptions, type PairRecord } from './format';
import {
  processedLineMeta,
  processedLineStart,
  processTrajectory,
  type ProcessedRecord,
  type StatsRecord,
} from './process';

const isTrajectory = compileFastCheck(Trajectory);

/**
 * The per-line step of `drag process`: validates a trajectory (the fast check, then zod for the
 * messages of one that fails), processes it and hands the record to `onRecord` with whether it is
 * kept for output. The same in the main thread and in a worker.
 */
export function trajectoryStep(
  topK: number,
  includeFailed: boolean,
  onRecord: (r: ProcessedRecord, kept: boolean) => void,
): Summarizer<null> {
  return (value) => {
    if (!isTrajectory(value)) {
      const p = Trajectory.safeParse(value);
      if (!p.success)
        return {
          ok: false,
          problems: p.error.issues.slice(0, 5).map((i) => ({ fieldPath: formatFieldPath(i.path), message: i.message })),
        };
    }
    const r = processTrajectory(value as Trajectory, topK);
    onRecord(r, includeFailed || r.gt_ever_found);
    return { ok: true, summary: null };
  };
}

/** What `drag process` keeps of a trajectory until its question's pairs are mined. */
export type Retained = StatsRecord & PairRecord & { /** Its line in the sink's stores, or -1. */ line: number };

/** {@link ProcessSink.export}. */
export interface ExportedSink {
  starts: ExportedLines | null;
  metas: ExportedLines | null;
  dataset: ExportedDataset | null;
}

/**
 * Where `drag process` puts what it makes of each trajectory as it is read: processed.jsonl's line
 * up to its pairs and after them, and the dataset's examples of every format without pairs, as
 * bytes off the heap. {@link retain} returns the little that stays in memory.
 */
export class ProcessSink {
  readonly starts: LineStore | null;
  readonly metas: LineStore | null;
  readonly builder: DatasetBuilder | null;

  constructor(processed: boolean, dataset: FormatOptions | null) {
    this.starts = processed ? new LineStore() : null;
    this.metas = processed ? new LineStore(1 << 20) : null;
    this.builder = dataset ? new DatasetBuilder(dataset) : null;
  }

  retain(r: ProcessedRecord, kept: boolean): Retained {
    let line = -1;
    if (kept && this.starts && this.metas) {
      line = this.starts.add(processedLineStart(r));
      this.metas.add(processedLineMeta(r));
    }
    if (kept) this.builder?.addRecord(r);
    const best = r.best_search;
    return {
      id: r.id,
      question_id: r.question_id,
      question: r.question,
      searches: r.searches.map(({ results: _, ...s }) => s),
      query_pairs: r.query_pairs,
      best_rank_score: r.best_rank_score,
      first_success_step: r.first_success_step,
      gt_ever_found: r.gt_ever_found,
      cumulative_effort_score: r.cumulative_effort_score,
      total_searches: r.total_searches,
      best_search: best && { gt_rank: best.gt_rank },
      line,
    };
  }

  /** Everything made so far, for another thread; the stores' memory moves with it. */
  export(): ExportedSink {
    return {
      starts: this.starts?.export() ?? null,
      metas: this.metas?.export() ?? null,
      dataset: this.builder?.export() ?? null,
    };
  }

  /** The memory an {@link export} can transfer instead of copying. */
  static transferList(e: ExportedSink): ArrayBuffer[] {
    const chunks = [e.starts, e.metas, ...(e.dataset?.lines.map((l) => l.text) ?? [])].flatMap((l) => l?.chunks ?? []);
    return chunks.map((c) => c.buffer as ArrayBuffer);
  }

  /** Appends another sink's output after this one's; `retained` (its records) are renumbered to match. */
  absorb(e: ExportedSink, retained: Retained[]): void {
    const base = this.starts?.length ?? 0;
    if (e.starts) this.starts?.absorb(e.starts);
    if (e.metas) this.metas?.absorb(e.metas);
    if (e.dataset) this.builder?.absorb(e.dataset);
    for (const r of retained) if (r.line >= 0) r.line += base;
  }
}
