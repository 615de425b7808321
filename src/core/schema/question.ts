import { z } from 'zod';
import { PageRef, QuestionId } from './common';

/** One answer location as an object: DRAG reads `document` or `file`, and `page`. */
export const AnswerLocationObject = z.looseObject({
  document: z.string().nullable().optional(),
  file: z.string().nullable().optional(),
  page: PageRef.nullable().optional(),
});

/** Every shape DRAG accepts (docs/drag-compatibility.md#input-data): an object, a `"file:page"` string, or a list of either. */
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

/** A normalised ground-truth location. `page` is null when it could not be read as an integer. */
export interface Location {
  file: string;
  page: number | null;
}

function toPage(value: unknown): number | null {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^\s*\d+\s*$/.test(value)) return Number.parseInt(value, 10);
  return null;
}

function toLocation(entry: unknown): Location | null {
  if (typeof entry === 'string') {
    // "{file}:{page}": the page is the last part, so file names containing ':' still work.
    const cut = entry.lastIndexOf(':');
    if (cut <= 0) return null;
    return { file: entry.slice(0, cut), page: toPage(entry.slice(cut + 1)) };
  }
  if (entry && typeof entry === 'object') {
    const obj = entry as Record<string, unknown>;
    const file = (typeof obj.document === 'string' && obj.document) || (typeof obj.file === 'string' && obj.file) || '';
    if (!file) return null;
    return { file, page: toPage(obj.page) };
  }
  return null;
}

/**
 * All answer locations, normalised (docs/drag-compatibility.md#input-data): every location counts (not only the
 * first), and a numeric-string page matches an integer page.
 */
export function answerLocations(value: unknown): Location[] {
  if (!value) return [];
  const list = Array.isArray(value) ? value : [value];
  const out: Location[] = [];
  for (const entry of list) {
    const loc = toLocation(entry);
    if (loc) out.push(loc);
  }
  return out;
}

/** Whether a search result is one of the ground-truth pages. */
export function isGroundTruthPage(
  result: { file: string; page_number: number },
  locations: readonly Location[],
): boolean {
  return locations.some((loc) => loc.file === result.file && loc.page === result.page_number);
}
