import { z } from 'zod';
import { PageRef, QuestionId } from './common';
import { GroundTruth } from './question';

/** One search result as logged by DRAG's collector (docs/drag-compatibility.md#collection). */
export const SearchResult = z.looseObject({
  file: z.string(),
  page_number: z.number().int(),
  total_pages: z.number().int().nullable().optional(),
  rank: z.number().int().min(1),
  score: z.number().nullable().optional(),
});
export type SearchResult = z.infer<typeof SearchResult>;

export const Citation = z.looseObject({
  file: z.string().nullable().optional(),
  document: z.string().nullable().optional(),
  page: PageRef.nullable().optional(),
});

export const IterationAction = z.enum(['search', 'answer', 'text_response', 'unknown']);

/**
 * One agent step (docs/drag-compatibility.md#collection). Every field but `step` may be absent or null
 * in real files.
 */
export const Iteration = z.looseObject({
  step: z.number().int().min(1),
  reasoning: z.string().nullable().optional(),
  action: IterationAction.optional(),
  query: z.string().nullable().optional(),
  results: z.array(SearchResult).nullable().optional(),
  gt_found: z.boolean().nullable().optional(),
  gt_rank: z.number().int().min(1).nullable().optional(),
  rank_score: z.number().nullable().optional(),
  answer: z.array(z.string()).nullable().optional(),
  citations: z.array(Citation).nullable().optional(),
  raw_response: z.string().nullable().optional(),
});
export type Iteration = z.infer<typeof Iteration>;

export const SamplingConfig = z.looseObject({
  temperature: z.number().nullable().optional(),
  top_p: z.number().nullable().optional(),
  repetition_penalty: z.number().nullable().optional(),
  max_tokens: z.number().int().nullable().optional(),
});

/**
 * One trajectory, one line of `trajectories.jsonl` (docs/drag-compatibility.md#collection). Unknown
 * extra fields are kept.
 */
export const Trajectory = z.looseObject({
  id: z.string(),
  question_id: QuestionId.nullable().optional(),
  question: z.string(),
  ground_truth: GroundTruth.nullable().optional(),
  iterations: z.array(Iteration),
  final_answer: z.array(z.string()).nullable().optional(),
  final_citations: z.array(Citation).nullable().optional(),
  success: z.boolean().nullable().optional(),
  gt_ever_found: z.boolean().nullable().optional(),
  first_gt_iteration: z.number().int().nullable().optional(),
  best_gt_rank: z.number().int().nullable().optional(),
  best_rank_score: z.number().nullable().optional(),
  total_iterations: z.number().int().nullable().optional(),
  total_searches: z.number().int().nullable().optional(),
  sampling_config: SamplingConfig.nullable().optional(),
  model: z.string().nullable().optional(),
  timestamp: z.string().nullable().optional(),
  error: z.string().nullable().optional(),
  // DRAG Studio's additions (issue: agent); optional so DRAG's own files load unchanged.
  run_id: z.string().nullable().optional(),
  sample: z.number().int().nullable().optional(),
});
export type Trajectory = z.infer<typeof Trajectory>;
