import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { PageImageCache } from '../../core/corpus/pageCache';
import { PdfWorkerPool } from '../../core/corpus/pool';
import { CorpusText } from '../../core/corpus/text';
import { formatFieldPath, formatLineError } from '../../core/io/errors';
import { snippet } from '../../core/search/engine';
import type { WhooshCompatibleEngine } from '../../core/search/engine';
import { defaultCacheDir, openSearchEngine, type OpenedEngine } from '../../core/search/open';
import { formatQuery, parseQuery } from '../../core/search/query';
import { type ServeReply, ServeRequest } from '../../protocol/serve';
import { type CliCommand, UsageError } from '../args';

export const serveCommand: CliCommand = {
  name: 'serve',
  summary: 'answer search and page-image requests as JSON lines on stdio (used by the extension)',
  usage: `drag serve --ocr <ocr_output.jsonl> [--pdf-dir D] [--cache-dir D]

Loads (or builds) the index, then reads one JSON request per line on stdin:
  {"id":1,"method":"search","params":{"query":"net income","topK":10}}
  {"id":2,"method":"render","params":{"file":"a.pdf","page":3,"maxPixels":200000,"format":"jpeg"}}
and writes one JSON reply per line on stdout. Exits when stdin closes.`,
  async run(argv, io, signal) {
    const { values } = parseArgs({
      args: argv,
      options: { ocr: { type: 'string' }, 'pdf-dir': { type: 'string' }, 'cache-dir': { type: 'string' } },
    });
    if (!values.ocr) throw new UsageError('--ocr is required');
    const ocr = values.ocr;
    const pdfDir = values['pdf-dir'] ?? path.join(path.dirname(ocr), 'pdfs');
    const send = (reply: ServeReply) => io.stdout(`${JSON.stringify(reply)}\n`);
    send({ event: 'progress', message: 'loading the search index' });
    const opened = await openOrExplain(ocr, values['cache-dir'], signal, (error) => send({ event: 'fatal', error }));
    // Page texts for snippets, read on demand by (file, page).
    const texts = await CorpusText.open(ocr);
    const cache = new PageImageCache(
      path.join(values['cache-dir'] ?? path.join(path.dirname(opened.cacheFile), '..'), 'pages'),
    );
    const pool = new PdfWorkerPool(1);
    send({
      event: 'ready',
      pages: opened.engine.docCount,
      source: opened.source,
      ms: Math.round(opened.ms),
      corpusHash: opened.engine.index.sourceHash,
      ...(opened.notice ? { notice: opened.notice } : {}),
    });

    const handle = async (raw: string): Promise<void> => {
      let id = -1;
      try {
        const json = JSON.parse(raw) as { id?: unknown };
        if (typeof json.id === 'number') id = json.id;
        const req = ServeRequest.parse(json);
        switch (req.method) {
          case 'search': {
            const t0 = performance.now();
            const parsed = parseQuery(req.params.query);
            const hits = opened.engine.searchParsed(parsed, req.params.topK);
            const ms = performance.now() - t0;
            const terms = opened.engine.queryTerms(req.params.query);
            const out = [];
            for (const h of hits) {
              const text = await texts.get(h.file, h.page_number);
              out.push({
                file: h.file,
                page_number: h.page_number,
                total_pages: h.total_pages,
                rank: h.rank,
                score: h.score,
                snippet: snippet(text ?? '', terms),
                hasPdf: existsSync(path.join(pdfDir, h.file)),
              });
            }
            send({
              id: req.id,
              result: { query: req.params.query, parsed: formatQuery(parsed), terms, ms, hits: out },
            });
            return;
          }
          case 'render': {
            const pdf = path.join(pdfDir, req.params.file);
            if (!existsSync(pdf)) throw new Error(`no PDF named ${req.params.file} in ${pdfDir}`);
            const options = { maxPixels: req.params.maxPixels, format: req.params.format };
            const image = await cache.get(pdf, req.params.page, options, () =>
              pool.render(pdf, req.params.page, options),
            );
            send({
              id: req.id,
              result: { path: image.file, width: image.width, height: image.height, cached: image.cached },
            });
            return;
          }
          case 'boxes': {
            const pdf = path.join(pdfDir, req.params.file);
            if (!existsSync(pdf)) throw new Error(`no PDF named ${req.params.file} in ${pdfDir}`);
            send({
              id: req.id,
              result: { boxes: await pool.boxes(pdf, req.params.page, opened.engine.queryTerms(req.params.query)) },
            });
            return;
          }
          case 'rankOf': {
            send({ id: req.id, result: rankOf(opened.engine, req.params.query, req.params.targets, req.params.depth) });
            return;
          }
          case 'ranksOf': {
            const { depth, items } = req.params;
            send({
              id: req.id,
              result: { ranks: items.map((it) => rankOf(opened.engine, it.query, it.targets, depth).rank) },
            });
            return;
          }
          case 'status':
            send({
              id: req.id,
              result: {
                pages: opened.engine.docCount,
                terms: opened.engine.index.terms.length,
                source: opened.source,
                ocrFile: ocr,
              },
            });
            return;
        }
      } catch (err) {
        const issues = (err as { issues?: Array<{ path: PropertyKey[]; message: string }> }).issues;
        send({
          id,
          error: issues
            ? issues.map((i) => `${formatFieldPath(i.path) || 'request'}: ${i.message}`).join('; ')
            : (err as Error).message,
        });
      }
    };

    const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
    const pending = new Set<Promise<void>>();
    signal.addEventListener('abort', () => rl.close(), { once: true });
    for await (const line of rl) {
      if (!line.trim()) continue;
      const p = handle(line).finally(() => pending.delete(p));
      pending.add(p);
    }
    await Promise.all(pending);
    await pool.close();
    return 0;
  },
};

/** Where the first of `targets` ranks for `query` within the top `depth` (null when deeper). */
function rankOf(
  engine: WhooshCompatibleEngine,
  query: string,
  targets: ReadonlyArray<{ file: string; page: number }>,
  depth: number,
): { rank: number | null; hits: number } {
  const hits = engine.search(query, depth);
  const i = hits.findIndex((h) => targets.some((t) => t.file === h.file && t.page === h.page_number));
  return { rank: i < 0 ? null : i + 1, hits: hits.length };
}

/**
 * Opens the index, or says in one `fatal` event why it cannot (no corpus, no readable page) before
 * failing, so the extension can show the reason instead of restarting the process per request.
 * A cache file that was there but could not be used (corrupt, old format) is rebuilt, with a notice.
 */
async function openOrExplain(
  ocr: string,
  cacheDirArg: string | undefined,
  signal: AbortSignal,
  fatal: (error: string) => void,
): Promise<OpenedEngine & { notice?: string }> {
  const fail = (error: string): never => {
    fatal(error);
    throw new Error(error);
  };
  if (!existsSync(ocr))
    fail(`no corpus: ${ocr} does not exist (build it with DRAG: Build Corpus, or drag corpus build)`);
  const cacheDir = cacheDirArg ?? defaultCacheDir(ocr);
  // Index caches live in <cache>/search/; one that is there and still gets rebuilt was unreadable.
  const searchCache = path.join(cacheDir, 'search');
  const cachedBefore = new Set(
    existsSync(searchCache) ? readdirSync(searchCache).map((f) => path.resolve(searchCache, f)) : [],
  );
  let opened: OpenedEngine;
  try {
    opened = await openSearchEngine(ocr, { cacheDir: cacheDirArg, signal });
  } catch (err) {
    return fail(`cannot open the corpus ${ocr}: ${(err as Error).message}`);
  }
  if (opened.engine.docCount === 0) {
    const first = opened.errors[0];
    fail(
      `no readable page in ${ocr}` +
        (first ? ` (${opened.errors.length} problems; first: ${formatLineError(first)})` : ''),
    );
  }
  const notes: string[] = [];
  if (opened.source === 'built' && cachedBefore.has(path.resolve(opened.cacheFile)))
    notes.push(`the search index cache ${opened.cacheFile} could not be read; rebuilt it`);
  if (opened.fallbackNote) notes.push(opened.fallbackNote);
  if (opened.errors.length) notes.push(`${opened.errors.length} lines of ${ocr} could not be read and were skipped`);
  return notes.length ? { ...opened, notice: notes.join('; ') } : opened;
}
