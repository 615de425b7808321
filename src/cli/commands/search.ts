import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { formatLineError } from '../../core/io/errors';
import { openSearchEngine } from '../../core/search/open';
import { formatQuery, parseQuery } from '../../core/search/query';
import {
  type CliWorkspace,
  openCliWorkspace,
  resolveCorpus,
  workspaceDefaults,
  workspaceHelp,
} from '../../core/workspace/cli';
import { type CliCommand, type CliIO, UsageError } from '../args';

async function open(
  values: { ocr?: string; 'cache-dir'?: string; rebuild?: boolean },
  ws: CliWorkspace | null,
  io: CliIO,
  signal: AbortSignal,
  quiet: boolean,
) {
  const { ocr, cacheDir } = resolveCorpus({ ocr: values.ocr, cacheDir: values['cache-dir'] }, ws);
  if (!ocr) throw new UsageError('--ocr <ocr_output.jsonl> is required (or run in a workspace with drag.config.json)');
  const opened = await openSearchEngine(ocr, {
    cacheDir,
    rebuild: values.rebuild,
    signal,
    onProgress: quiet || !process.stderr.isTTY ? undefined : (pages) => io.stderr(`\rindexing: ${pages} pages`),
  });
  if (opened.fallbackNote) io.stderr(`note: ${opened.fallbackNote}\n`);
  for (const e of opened.errors) io.stderr(`${formatLineError(e)}\n`);
  return { ...opened, ocr };
}

export const indexCommand: CliCommand = {
  name: 'index',
  summary: 'build (or load) the BM25 search index of an OCR file',
  usage: `drag index build --ocr <ocr_output.jsonl> [--cache-dir D] [--rebuild] [--workspace DIR] [--json]

The index is cached in D (default: .cache/ beside the OCR file) under the OCR file's content
hash: an unchanged corpus loads, a changed one rebuilds. Bad OCR lines are reported and skipped.

${workspaceHelp('search')}`,
  async run(argv, io, signal) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        ocr: { type: 'string' },
        'cache-dir': { type: 'string' },
        rebuild: { type: 'boolean', default: false },
        workspace: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
    if (positionals[0] !== 'build' || positionals.length !== 1) throw new UsageError('expected "drag index build"');
    const opened = await open(
      values,
      await openCliWorkspace(values.workspace, process.cwd(), (w) => io.stderr(`${w}\n`)),
      io,
      signal,
      values.json,
    );
    const summary = {
      ocr: opened.ocr,
      pages: opened.engine.docCount,
      terms: opened.engine.index.terms.length,
      source: opened.source,
      cacheFile: opened.cacheFile,
      ms: Math.round(opened.ms),
      badLines: opened.errors.length,
    };
    if (values.json) io.stdout(`${JSON.stringify(summary)}\n`);
    else
      io.stderr(
        `\r${opened.source === 'cache' ? 'loaded' : 'built'} index of ${summary.pages} pages, ` +
          `${summary.terms} terms in ${summary.ms} ms: ${summary.cacheFile}\n`,
      );
    return opened.errors.length ? 1 : 0;
  },
};

export const searchCommand: CliCommand = {
  name: 'search',
  summary: "search the corpus with Whoosh-compatible BM25 (DRAG's query language)",
  usage: `drag search --ocr <ocr_output.jsonl> [--cache-dir D] [--top-k K] [--workspace DIR] [--json] [--explain]
  (--query Q | --queries-file F)

Query language (Whoosh's): words are ANDed; AND, OR, NOT, ANDNOT, ANDMAYBE (upper case);
parentheses; "phrases" and "phrases"~N; * and ? wildcards, prefix*; file:NAME, page_number:N.
--json prints one line per query: {"query","results":[{"file","page_number","total_pages","rank","score"}],"ms"}.
--explain shows the parsed query tree. --top-k defaults to 3.

${workspaceHelp('search')}`,
  async run(argv, io, signal) {
    const { values } = parseArgs({
      args: argv,
      options: {
        ocr: { type: 'string' },
        'cache-dir': { type: 'string' },
        'top-k': { type: 'string' },
        workspace: { type: 'string' },
        json: { type: 'boolean', default: false },
        explain: { type: 'boolean', default: false },
        query: { type: 'string', short: 'q', multiple: true },
        'queries-file': { type: 'string' },
        rebuild: { type: 'boolean', default: false },
      },
    });
    const ws = await openCliWorkspace(values.workspace, process.cwd(), (w) => io.stderr(`${w}\n`));
    const topK = values['top-k'] !== undefined ? Number(values['top-k']) : ((ws && workspaceDefaults(ws).topK) ?? 3);
    if (!Number.isInteger(topK) || topK < 1) throw new UsageError('--top-k must be a positive integer');
    let queries = values.query ?? [];
    if (values['queries-file'])
      queries = queries.concat((await readFile(values['queries-file'], 'utf8')).split(/\r?\n/).filter((q) => q.trim()));
    if (queries.length === 0) throw new UsageError('give --query Q or --queries-file F');
    const { engine } = await open(values, ws, io, signal, true);
    for (const query of queries) {
      if (signal.aborted) return 130;
      const t0 = performance.now();
      const parsed = parseQuery(query);
      const hits = engine.searchParsed(parsed, topK);
      const ms = performance.now() - t0;
      if (values.json) {
        const line: Record<string, unknown> = {
          query,
          results: hits.map((h) => ({
            file: h.file,
            page_number: h.page_number,
            total_pages: h.total_pages,
            rank: h.rank,
            score: h.score,
          })),
          ms: Number(ms.toFixed(3)),
        };
        if (values.explain) line.parsed = formatQuery(parsed);
        io.stdout(`${JSON.stringify(line)}\n`);
      } else {
        io.stdout(`${query}\n`);
        if (values.explain) io.stdout(`  parsed: ${formatQuery(parsed)}\n`);
        if (hits.length === 0) io.stdout('  (no results)\n');
        for (const h of hits)
          io.stdout(`  ${h.rank}. ${h.file} p.${h.page_number}/${h.total_pages}  ${h.score.toFixed(4)}\n`);
      }
    }
    return 0;
  },
};
