import { z } from 'zod';

/** A question id as DRAG writes it: usually a string, sometimes an integer from a HF dataset. */
export const QuestionId = z.union([z.string(), z.number()]);

/**
 * A 1-based page number; DRAG data sometimes carries it as a numeric string
 * (docs/drag-compatibility.md#input-data).
 */
export const PageRef = z.union([z.number().int(), z.string()]);
