import { z } from 'zod';
import { SearchHitResult } from './serve';

/**
 * Messages between the Search Corpus webview and the extension host. Parsed with zod on both
 * sides; nothing here can name a path or a command: pages are (file name, page number) pairs
 * that the host resolves inside the workspace's corpus.
 */
export const PageRef = z.strictObject({ file: z.string().min(1).max(500), page: z.number().int().min(1) });

/** A rendered page sent to a panel: a thumbnail, or with `large` the page opened to read. */
export const PageImage = z.strictObject({
  type: z.literal('image'),
  requestId: z.number().int(),
  page: PageRef,
  uri: z.string(),
  width: z.number().int(),
  height: z.number().int(),
  large: z.boolean(),
});

export const WebviewToHost = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ready') }),
  z.strictObject({
    type: z.literal('search'),
    requestId: z.number().int(),
    query: z.string().max(2000),
    topK: z.number().int().min(1).max(50),
  }),
  z.strictObject({ type: z.literal('thumbnail'), requestId: z.number().int(), page: PageRef }),
  z.strictObject({
    type: z.literal('openPage'),
    requestId: z.number().int(),
    page: PageRef,
    terms: z.array(z.string().max(200)).max(50),
  }),
]);
export type WebviewToHost = z.infer<typeof WebviewToHost>;

export const HostToWebview = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('init'),
    corpus: z.string(),
    pages: z.number().int(),
    topK: z.number().int(),
    query: z.string(),
  }),
  z.strictObject({ type: z.literal('status'), text: z.string(), busy: z.boolean() }),
  z.strictObject({
    type: z.literal('results'),
    requestId: z.number().int(),
    query: z.string(),
    parsed: z.string(),
    terms: z.array(z.string()),
    ms: z.number(),
    hits: z.array(SearchHitResult),
  }),
  PageImage,
  z.strictObject({ type: z.literal('error'), requestId: z.number().int().nullable(), message: z.string() }),
]);
export type HostToWebview = z.infer<typeof HostToWebview>;
