import { z } from 'zod';
import { QuestionId } from './common';
import { AnswerLocations, Answers } from './question';
import { Citation } from './trajectory';

const nnum = z.number().nullable().optional();
const nint = z.number().int().nullable().optional();

/** One line of DRAG's evaluation JSONL (docs/drag-compatibility.md#evaluation-and-metrics). */
export const EvalQuestionRecord = z.looseObject({
  id: QuestionId,
  question: z.string(),
  answer: z
    .union([z.array(z.string()), z.string()])
    .nullable()
    .optional(),
  citations: z.array(Citation).nullable().optional(),
  iterations: nint,
  ground_truth_answers: Answers,
  ground_truth_locations: AnswerLocations,
  category: z.string().nullable().optional(),
  success: z.boolean(),
  iterations_to_success: nint,
  first_hit_rank: nint,
  best_rank: nint,
  anls_score: nnum,
  page_f1: nnum,
  page_precision: nnum,
  page_recall: nnum,
  doc_f1: nnum,
  doc_precision: nnum,
  doc_recall: nnum,
});
export type EvalQuestionRecord = z.infer<typeof EvalQuestionRecord>;

/**
 * The 22 aggregate keys of DRAG's `_summary.json`, in DRAG's order
 * (docs/drag-compatibility.md#evaluation-and-metrics).
 */
export const SUMMARY_KEYS = [
  'total_questions',
  'success_count',
  'success_rate',
  'avg_iterations',
  'avg_iterations_to_success',
  'first_hit_rate',
  'avg_first_hit_rank',
  'first_search_mrr',
  'avg_best_rank',
  'best_search_mrr',
  'hit_at_1',
  'hit_at_3',
  'hit_at_5',
  'avg_anls',
  'anls_accuracy',
  'avg_page_f1',
  'avg_page_precision',
  'avg_page_recall',
  'avg_doc_f1',
  'avg_doc_precision',
  'avg_doc_recall',
] as const;

/** DRAG's `_summary.json`: `model` plus the aggregate keys. Missing keys read as 0, as DRAG's `--compare` does. */
export const EvalSummary = z.looseObject({
  model: z.string().nullable().optional(),
  ...Object.fromEntries(SUMMARY_KEYS.map((k) => [k, z.number().nullable().optional()])),
});
export type EvalSummary = z.infer<typeof EvalSummary>;
