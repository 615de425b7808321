import { z } from 'zod';
import { PageRef, QuestionId } from './common';

/** One answer location as an object: DRAG reads `document` or `file`, and `page`. */
export const AnswerLocationObject = z.looseObject({
  document: z.string().nullable().optional(),
  file: z.string().nullable().optional(),
  page: PageRef.nullable().optional(),
});

/**
 * Every shape DRAG accepts (docs/drag-compatibility.md#input-data): an object, a `"file:page"` string,
 * or a list of either.
 */
export const AnswerLocation = z.union([AnswerLocationObject, z.string()]);
export const AnswerLocations = z
  .union([AnswerLocation, z.array(AnswerLocation)])
  .nullable()
  .optional();
export type AnswerLocations = z.infer<typeof AnswerLocations>;

/** Gold answers: a list of variants, each a list of strings or a bare string. */
export const Answers = z
  .union([z.string(), z.array(z.union([z.string(), z.array(z.string())]))])
  .nullable()
  .optional();

/** A question record (docs/drag-compatibility.md#input-data; also FinanceBench-style `question_id`). */
export const QuestionRecord = z.looseObject({
  id: QuestionId.optional(),
  question_id: QuestionId.optional(),
  question: z.string(),
  answers: Answers,
  answer_locations: AnswerLocations,
  category: z.string().nullable().optional(),
});
export type QuestionRecord = z.infer<typeof QuestionRecord>;

/** The ground truth copied into each trajectory: `{answers, answer_locations, category}`, values may be null. */
export const GroundTruth = z.looseObject({
  answers: Answers,
  answer_locations: AnswerLocations,
  category: z.string().nullable().optional(),
});
export type GroundTruth = z.infer<typeof GroundTruth>;
