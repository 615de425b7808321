import { z } from 'zod';

/**
 * `drag serve`: a long-lived child process the extension talks to in JSON lines over stdio, so
 * the index, pdf.js and the native canvas live outside the extension host. One request per line
 * on stdin, one reply (or event) per line on stdout.
 */
export const SearchParams = z.strictObject({ query: z.string().max(2000), topK: z.number().int().min(1).max(50) });
/** `file` must be a bare PDF name from the corpus (no path): the server resolves it in its PDF folder. */
export const RenderParams = z.strictObject({
  file: z
    .string()
    .min(1)
    .max(500)
    .refine((f) => !/[\\/]/.test(f) && f !== '..' && f !== '.', 'must be a file name, not a path'),
  page: z.number().int().min(1),
  maxPixels: z.number().int().min(10_000).max(20_000_000),
  format: z.enum(['png', 'jpeg']).default('jpeg'),
});

const RankTargets = z.array(z.strictObject({ file: z.string(), page: z.number().int() })).max(50);
export const RankOfParams = z.strictObject({
  query: z.string().max(2000),
  depth: z.number().int().min(1).max(1000),
  targets: RankTargets,
});
/** Most queries one `ranksOf` request may carry: a page of the Failed Searches view, a few queries each. */
export const RANKS_OF_MAX = 2000;
/**
 * Many `rankOf` in one round trip (the Failed Searches view asks for what it shows): one rank per
 * item, in order, null where the target is deeper than `depth`.
 */
export const RanksOfParams = z.strictObject({
  depth: RankOfParams.shape.depth,
  items: z.array(z.strictObject({ query: RankOfParams.shape.query, targets: RankTargets })).max(RANKS_OF_MAX),
});
export type RanksOfParams = z.infer<typeof RanksOfParams>;

export const ServeRequest = z.discriminatedUnion('method', [
  z.strictObject({ id: z.number().int(), method: z.literal('search'), params: SearchParams }),
  z.strictObject({ id: z.number().int(), method: z.literal('render'), params: RenderParams }),
  z.strictObject({ id: z.number().int(), method: z.literal('status'), params: z.strictObject({}).default({}) }),
  z.strictObject({
    id: z.number().int(),
    method: z.literal('boxes'),
    params: z.strictObject({
      file: RenderParams.shape.file,
      page: z.number().int().min(1),
      query: z.string().max(2000),
    }),
  }),
  z.strictObject({ id: z.number().int(), method: z.literal('rankOf'), params: RankOfParams }),
  z.strictObject({ id: z.number().int(), method: z.literal('ranksOf'), params: RanksOfParams }),
]);
export type ServeRequest = z.infer<typeof ServeRequest>;

export const Snippet = z.strictObject({
  text: z.string(),
  highlights: z.array(z.tuple([z.number().int(), z.number().int()])),
});

export const SearchHitResult = z.strictObject({
  file: z.string(),
  page_number: z.number().int(),
  total_pages: z.number().int(),
  rank: z.number().int(),
  score: z.number(),
  snippet: Snippet,
  hasPdf: z.boolean(),
});
export type SearchHitResult = z.infer<typeof SearchHitResult>;

export const SearchResult = z.strictObject({
  query: z.string(),
  parsed: z.string(),
  terms: z.array(z.string()),
  ms: z.number(),
  hits: z.array(SearchHitResult),
});
export type SearchResult = z.infer<typeof SearchResult>;

export const RenderResult = z.strictObject({
  path: z.string(),
  width: z.number().int(),
  height: z.number().int(),
  cached: z.boolean(),
});
export const BoxesResult = z.strictObject({
  boxes: z.array(
    z.strictObject({ left: z.number(), top: z.number(), width: z.number(), height: z.number(), text: z.string() }),
  ),
});
/** Rank of the first target page within the top `depth` results (null when deeper), and the hit count. */
export const RankOfResult = z.strictObject({ rank: z.number().int().nullable(), hits: z.number().int() });
export const RanksOfResult = z.strictObject({ ranks: z.array(z.number().int().nullable()) });
export const StatusResult = z.strictObject({
  pages: z.number().int(),
  terms: z.number().int(),
  source: z.enum(['cache', 'built']),
  ocrFile: z.string(),
});

export const ServeReply = z.union([
  z.strictObject({ id: z.number().int(), result: z.unknown() }),
  z.strictObject({ id: z.number().int(), error: z.string() }),
  z.strictObject({
    event: z.literal('ready'),
    pages: z.number().int(),
    source: z.enum(['cache', 'built']),
    ms: z.number(),
    /** Something the person should hear about once (the index cache was unreadable and was rebuilt). */
    notice: z.string().optional(),
    /** Content hash of the OCR file the index was built from (what rank caches are keyed by). */
    corpusHash: z.string().optional(),
  }),
  z.strictObject({ event: z.literal('progress'), message: z.string() }),
  z.strictObject({ event: z.literal('fatal'), error: z.string() }),
]);
export type ServeReply = z.infer<typeof ServeReply>;
