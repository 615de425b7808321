import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { buildCorpus, ForeignOcrFileError } from '../../core/corpus/build';
import { PageImageCache } from '../../core/corpus/pageCache';
import { PopplerMissingError } from '../../core/corpus/poppler';
import { PdfWorkerPool } from '../../core/corpus/pool';
import { openSearchEngine, userCacheDir } from '../../core/search/open';
import { openCliWorkspace, workspaceDefaults } from '../../core/workspace/cli';
import { type CliCommand, UsageError } from '../args';

const BUILD_USAGE =
  'drag corpus build [<pdf dir>] [--out <ocr_output.jsonl>] [--workers N] [--extractor pdfjs|poppler]\n' +
  `                  [--force] [--json] [--workspace DIR] [--cache-dir DIR] [--no-index]

Extracts every page's text with pdf.js into DRAG's OCR format, on worker threads, re-reading only
PDFs whose content changed. --extractor poppler uses poppler's pdftotext instead (several times
faster; Debian: poppler-utils), N processes at a time; the default stays pdf.js, so an index never
changes because a tool happens to be installed. Changing the extractor re-extracts every PDF.
Password-protected, damaged and image-only PDFs are reported per file and the rest continue. An
ocr_output.jsonl made by another OCR tool is left as it is (pass --force to replace it). --json
prints one JSON event per line. In a workspace (the nearest drag.config.json, or --workspace DIR)
the PDF folder and --out default to its corpus.pdfDir and corpus.ocrFile. Then it builds the search
index and caches it where drag serve and drag search look for it (the workspace's corpus.cacheDir,
or --cache-dir), so the first search does not wait for it; --no-index skips that.`;

const RENDER_USAGE =
  'drag corpus render <pdf> <page> --out <file> [--max-pixels N | --dpi D] [--format png|jpeg] ' +
  `[--quality Q] [--cache-dir D]

Renders one page (1-based) with pdf.js on a worker thread. With --max-pixels the page is scaled
to fit that many pixels (Qwen-VL's default budget is 1003520); otherwise --dpi (default 200).
Images are cached by (PDF content hash, page, size, format).`;

export const corpusCommand: CliCommand = {
  name: 'corpus',
  summary: 'build an OCR file from a folder of PDFs, or render a page image',
  usage: `${BUILD_USAGE}\n\n${RENDER_USAGE}`,
  async run(argv, io, signal) {
    const [sub, ...rest] = argv;
    if (sub === 'build') {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          out: { type: 'string' },
          workers: { type: 'string' },
          force: { type: 'boolean', default: false },
          json: { type: 'boolean', default: false },
          extractor: { type: 'string', default: 'pdfjs' },
          workspace: { type: 'string' },
          'cache-dir': { type: 'string' },
          'no-index': { type: 'boolean', default: false },
        },
      });
      if (positionals.length > 1) throw new UsageError(BUILD_USAGE);
      const ws = await openCliWorkspace(values.workspace, process.cwd(), (w) => io.stderr(`${w}\n`));
      const corpus = ws ? workspaceDefaults(ws).corpus : undefined;
      const pdfDir = positionals[0] ?? corpus?.pdfDir;
      const out = values.out ?? corpus?.ocrFile;
      if (!pdfDir || !out) throw new UsageError(BUILD_USAGE);
      const extractor = values.extractor;
      if (extractor !== 'pdfjs' && extractor !== 'poppler')
        throw new UsageError('--extractor must be pdfjs or poppler');
      const workers = values.workers ? Number(values.workers) : undefined;
      if (workers !== undefined && !(Number.isInteger(workers) && workers >= 1))
        throw new UsageError('--workers must be a positive integer');
      try {
        const report = await buildCorpus(pdfDir, out, {
          workers,
          force: values.force,
          extractor,
          signal,
          onEvent: (e) => {
            if (values.json) io.stdout(`${JSON.stringify(e)}\n`);
            else if (e.type === 'file') {
              const pages = e.pages ? `, ${e.pages} pages` : '';
              const took = e.ms ? ` (done after ${(e.ms / 1000).toFixed(1)} s)` : '';
              io.stderr(
                `[${e.done}/${e.total}] ${e.file}: ${e.status}${pages}${took}${e.message ? ` (${e.message})` : ''}\n`,
              );
            }
          },
        });
        if (values.json) io.stdout(`${JSON.stringify({ type: 'done', ...report })}\n`);
        else
          io.stderr(
            `${report.out}: ${report.pages} pages from ${report.files - report.failed.length} of ${report.files} ` +
              `PDFs (${report.extracted.length} extracted, ${report.reused.length} unchanged)` +
              `${report.failed.length ? `; failed: ${report.failed.map((f) => f.file).join(', ')}` : ''}\n`,
          );
        if (report.pages > 0 && !values['no-index']) {
          // The search index too, where drag serve and drag search look for it: the first search
          // (and the Failed Searches view) then starts from the cache instead of building it.
          const inWorkspace = corpus && path.resolve(out) === path.resolve(corpus.ocrFile);
          const cacheDir = values['cache-dir'] ?? (inWorkspace ? corpus.cacheDir : undefined);
          if (values.json) io.stdout(`${JSON.stringify({ type: 'indexing' })}\n`);
          const opened = await openSearchEngine(out, { cacheDir, signal });
          const index = { source: opened.source, ms: Math.round(opened.ms), cacheFile: opened.cacheFile };
          if (values.json) io.stdout(`${JSON.stringify({ type: 'index', ...index })}\n`);
          else {
            const how = opened.source === 'cache' ? 'unchanged' : `built in ${(opened.ms / 1000).toFixed(1)} s`;
            io.stderr(`search index: ${how}, ${opened.cacheFile}\n`);
          }
        }
        return report.failed.length ? 1 : 0;
      } catch (err) {
        if (err instanceof ForeignOcrFileError || err instanceof PopplerMissingError) {
          io.stderr(`drag corpus build: ${err.message}\n`);
          return 1;
        }
        throw err;
      }
    }
    if (sub === 'render') {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          out: { type: 'string' },
          'max-pixels': { type: 'string' },
          dpi: { type: 'string' },
          format: { type: 'string', default: 'png' },
          quality: { type: 'string' },
          'cache-dir': { type: 'string' },
        },
      });
      if (positionals.length !== 2 || !values.out) throw new UsageError(RENDER_USAGE);
      const page = Number(positionals[1]);
      if (!Number.isInteger(page) || page < 1) throw new UsageError('<page> must be a positive integer (1-based)');
      const format = values.format as 'png' | 'jpeg';
      if (format !== 'png' && format !== 'jpeg') throw new UsageError('--format must be png or jpeg');
      const maxPixels = values['max-pixels'] ? Number(values['max-pixels']) : undefined;
      const dpi = values.dpi ? Number(values.dpi) : undefined;
      const options = { maxPixels, dpi, format, quality: values.quality ? Number(values.quality) : undefined };
      const pdf = positionals[0];
      const cache = new PageImageCache(values['cache-dir'] ?? path.join(userCacheDir(), 'pages'));
      const pool = new PdfWorkerPool(1);
      try {
        const image = await cache.get(pdf, page, options, () => pool.render(pdf, page, options));
        const { readFile } = await import('node:fs/promises');
        await writeFile(values.out, await readFile(image.file));
        io.stderr(
          `${values.out}: ${image.width}x${image.height} ${image.format}${image.cached ? ' (from cache)' : ''}\n`,
        );
        return 0;
      } finally {
        await pool.close();
      }
    }
    throw new UsageError(`expected "drag corpus build" or "drag corpus render"\n\n${BUILD_USAGE}\n\n${RENDER_USAGE}`);
  },
};
