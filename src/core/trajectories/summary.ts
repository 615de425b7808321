import type { z } from 'zod';
import type { Summarizer } from '../io/jsonl';
import { answerLocations, type Location, stepGroundTruthRank } from './groundTruth';
import type { Trajectory } from '../schema/trajectory';
import { isTrajectory } from '../schema/trajectoryCheck.generated';
import { explainTrajectory } from '../schema/trajectoryProblems';

/**
 * Where a trajectory's searches put the ground-truth page:
 * - `rank1`: some search ranked it first;
 * - `lower`: found, but never at rank 1;
 * - `never`: no search found it (including "Maximum iterations reached");
 * - `errored`: not found, and the run stopped on an error (API, search, parsing).
 */
export type Outcome = 'rank1' | 'lower' | 'never' | 'errored';

export const OUTCOMES: readonly Outcome[] = ['rank1', 'lower', 'never', 'errored'];

export const OUTCOME_LABELS: Record<Outcome, string> = {
  rank1: 'Found at rank 1',
  lower: 'Found lower',
  never: 'Never found',
  errored: 'Errored',
};

/**
 * The "error" of a run that simply ran out of steps, as DRAG's collector writes it: the agent sets it,
 * and collection (resume) and this summary treat it as final, not as a failure.
 */
export const MAX_ITERATIONS_ERROR = 'Maximum iterations reached';

/** A record is final unless it stopped on an error (running out of steps is final). */
export function isFinal(record: { error?: unknown }): boolean {
  return !record.error || record.error === MAX_ITERATIONS_ERROR;
}

/** What the Trajectories view needs of one record, kept in memory; the rest is read on demand. */
export interface TrajectorySummary {
  id: string;
  questionId: string | null;
  question: string;
  outcome: Outcome;
  /** Best (lowest) ground-truth rank over all searches, or null. */
  bestRank: number | null;
  bestRankScore: number | null;
  steps: number;
  searches: number;
  queries: string[];
  groundTruth: Location[];
  error: string | null;
  model: string | null;
}

export function summarizeTrajectory(t: z.infer<typeof Trajectory>): TrajectorySummary {
  const groundTruth = answerLocations(t.ground_truth?.answer_locations);
  let bestRank: number | null = null;
  let bestRankScore: number | null = null;
  let searches = 0;
  const queries: string[] = [];
  for (const step of t.iterations) {
    if (step.action === 'search') searches++;
    if (step.query) queries.push(step.query);
    const rank = stepGroundTruthRank(step, groundTruth);
    if (rank !== null && (bestRank === null || rank < bestRank)) {
      bestRank = rank;
      bestRankScore = typeof step.rank_score === 'number' ? step.rank_score : null;
    }
  }
  if (bestRank === null && typeof t.best_gt_rank === 'number' && t.gt_ever_found) {
    bestRank = t.best_gt_rank;
    bestRankScore = t.best_rank_score ?? null;
  }
  const error = t.error ?? null;
  let outcome: Outcome;
  if (bestRank === 1) outcome = 'rank1';
  else if (bestRank !== null) outcome = 'lower';
  else if (error && error !== MAX_ITERATIONS_ERROR) outcome = 'errored';
  else outcome = 'never';
  return {
    id: t.id,
    questionId: t.question_id === null || t.question_id === undefined ? null : String(t.question_id),
    question: t.question,
    outcome,
    bestRank,
    bestRankScore,
    steps: t.iterations.length,
    searches,
    queries,
    groundTruth,
    error,
    model: t.model ?? null,
  };
}

/** Validates a line as a DRAG trajectory and summarises it; invalid lines become field-level problems. */

export const trajectorySummarizer: Summarizer<TrajectorySummary> = (value) => {
  // Valid records (nearly all) skip zod's copy and issue list; zod explains the rest.
  if (isTrajectory(value)) return { ok: true, summary: summarizeTrajectory(value as z.infer<typeof Trajectory>) };
  const verdict = explainTrajectory(value);
  return verdict.ok ? { ok: true, summary: summarizeTrajectory(verdict.data) } : verdict;
};
