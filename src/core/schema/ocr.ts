import { z } from 'zod';

/** One page of DRAG's `ocr_output.jsonl` (docs/drag-compatibility.md#input-data). Unknown extra fields are kept. */
export const OcrPage = z.looseObject({
  file: z.string().min(1),
  page_number: z.number().int().min(1),
  total_pages: z.number().int().min(1),
  text: z.string().nullable().optional(),
});
export type OcrPage = z.infer<typeof OcrPage>;
