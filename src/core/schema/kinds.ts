import type { z } from 'zod';
import { EvalQuestionRecord, EvalSummary } from './evaluation';
import { OcrPage } from './ocr';
import { QuestionRecord } from './question';
import { Trajectory } from './trajectory';

/** The DRAG file kinds `drag validate` knows. `eval-summary` is the `_summary.json` (a single JSON object). */
export type FileKind = 'ocr' | 'questions' | 'trajectories' | 'eval' | 'eval-summary';

export const RECORD_SCHEMAS: Record<FileKind, z.ZodType> = {
  ocr: OcrPage,
  questions: QuestionRecord,
  trajectories: Trajectory,
  eval: EvalQuestionRecord,
  'eval-summary': EvalSummary,
};

/** Guesses a JSONL file's kind from one record's keys; null when nothing fits. */
export function detectKind(record: Record<string, unknown>): FileKind | null {
  if ('iterations' in record) return 'trajectories';
  if ('page_number' in record && 'total_pages' in record && 'file' in record) return 'ocr';
  if ('anls_score' in record || 'page_f1' in record || 'ground_truth_locations' in record) return 'eval';
  if ('total_questions' in record || 'success_rate' in record) return 'eval-summary';
  if ('question' in record) return 'questions';
  return null;
}
