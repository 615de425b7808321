import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { indexJsonl } from '../io/jsonl';
import { writeJsonAtomic, writeJsonlAtomic } from '../io/write';
import { ALL_FORMATS, type FormatName, formatProcessed, type FormatReport } from '../pipeline/format';
import { processTrajectory, type PairSide, type ProcessedRecord } from '../pipeline/process';
import { rankScore } from '../trajectories/rankScore';
import type { Trajectory } from '../schema/trajectory';
import { isTrajectory } from '../schema/trajectoryCheck.generated';
import { explainTrajectory } from '../schema/trajectoryProblems';
import { type Decision, readDecisions, replay } from './decisions';

export interface CuratedExport {
  report: FormatReport;
  accepted: number;
  pairs: number;
  edits: number;
  decisionsUsed: string[];
}

/**
 * "DRAG: Export Curated Dataset…": SFT and DPO data from what a person curated — accepted
 * trajectories (their best search, or a better query they wrote and verified), and hand-made
 * pairs — through the same formatter as `drag format` (every format), into `datasets/<name>/`,
 * with a manifest naming the decisions used. Deterministic for a given log and seed.
 */
export async function exportCuratedDataset(
  workspace: string,
  trajectoryFiles: readonly string[],
  name: string,
  options: { topK?: number; seed?: number; trainRatio?: number; formats?: FormatName[] } = {},
): Promise<CuratedExport> {
  const topK = options.topK ?? 3;
  const { decisions } = await readDecisions(path.join(workspace, 'curation', 'decisions.jsonl'));
  const state = replay(decisions);
  const used = new Set<string>();
  const records = new Map<string, ProcessedRecord>();
  for (const file of trajectoryFiles) {
    await indexJsonl(file, (v) => {
      const verdict = isTrajectory(v) ? null : explainTrajectory(v, 1);
      if (verdict && !verdict.ok) return verdict;
      const t = v as Trajectory;
      const c = state.byTrajectory.get(t.id);
      if (
        !c ||
        (c.status !== 'accepted' && c.pairs.length === 0 && c.edits.length === 0) ||
        c.status === 'rejected' ||
        c.labelProblem
      )
        return { ok: true, summary: null };
      const r = processTrajectory(t, topK);
      // A verified edited query is a search the person made: it becomes the best search when better.
      for (const e of c.edits) {
        if (!e.query) continue;
        used.add(e.id);
        const rank = e.verified_rank ?? null;
        const s = {
          step: e.step ?? r.searches.length + 1,
          query: e.query,
          reasoning: null,
          results: [],
          gt_found: rank !== null,
          gt_rank: rank,
          rank_score: rank === null ? null : rankScore(rank, topK),
        };
        r.searches.push(s as never);
        if (s.rank_score !== null && s.rank_score > r.best_rank_score) {
          r.best_search = s as never;
          r.best_rank_score = s.rank_score;
        }
      }
      r.query_pairs = c.pairs.map((p: Decision) => {
        used.add(p.id);
        const side = (x: NonNullable<Decision['chosen']>): PairSide => ({
          step: x.step ?? 0,
          query: x.query,
          reasoning: null,
          gt_found: x.rank != null,
          gt_rank: x.rank ?? null,
          rank_score: x.rank != null ? rankScore(x.rank, topK) : null,
          trajectory_id: x.trajectory_id ?? t.id,
        });
        const better = side(p.chosen!);
        const worse = side(p.rejected!);
        return { better, worse, margin: (better.rank_score ?? 0) - (worse.rank_score ?? 0) };
      });
      if (c.status === 'accepted') for (const d of c.decisions) if (d.decision === 'accept') used.add(d.id);
      if (c.status !== 'accepted') r.best_search = null; // only pairs and edits were curated here
      records.set(t.id, r);
      return { ok: true, summary: null };
    });
  }
  const outDir = path.join(workspace, 'datasets', name);
  const processedFile = path.join(outDir, 'curated_processed.jsonl');
  await writeJsonlAtomic(
    processedFile,
    [...records.values()].sort((a, b) => a.id.localeCompare(b.id)),
  );
  const report = await formatProcessed([processedFile], outDir, {
    formats: options.formats ?? [...ALL_FORMATS],
    trainRatio: options.trainRatio ?? 0.9,
    seed: options.seed ?? 42,
    splitBy: 'question',
    reasoning: true,
  });
  const decisionsUsed = [...used].sort();
  const manifestFile = path.join(outDir, 'manifest.json');
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as Record<string, unknown>;
  await writeJsonAtomic(manifestFile, {
    ...manifest,
    curated: true,
    trajectory_files: trajectoryFiles.map((f) => path.resolve(f)),
    decisions_used: decisionsUsed,
  });
  const values = [...records.values()];
  return {
    report,
    accepted: values.filter((r) => state.byTrajectory.get(r.id)?.status === 'accepted').length,
    pairs: values.reduce((n, r) => n + r.query_pairs.length, 0),
    edits: decisionsUsed.filter((id) => decisions.find((d) => d.id === id)?.decision === 'edit').length,
    decisionsUsed,
  };
}
