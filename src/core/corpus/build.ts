import { existsSync, promises as fsp } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { indexJsonl, readLine } from '../io/jsonl';
import { toJsonLine, writeFileAtomic, writeJsonAtomic } from '../io/write';
import { hashFile } from '../search/index';
import type { OcrPage } from '../schema/ocr';
import { PdfError } from './pdf';
import { extractWithPdftotext, PopplerMissingError } from './poppler';
import { PdfWorkerPool } from './pool';

/** Text extractors: pdf.js (the default, bundled) or poppler's pdftotext (faster, when installed). */
export type Extractor = 'pdfjs' | 'poppler';
const EXTRACTOR_TOOL = { pdfjs: 'drag-studio pdf.js', poppler: 'drag-studio pdftotext' } as const;

/** Which PDFs an OCR file was built from, so a rebuild re-reads only changed ones. */
export interface CorpusManifest {
  version: 1;
  tool: (typeof EXTRACTOR_TOOL)[Extractor];
  files: Record<string, { sha256: string; pages: number; status: 'ok' | 'image-only' | 'failed'; message?: string }>;
}

export type CorpusEvent =
  | { type: 'start'; total: number; reused: number }
  | {
      type: 'file';
      file: string;
      done: number;
      total: number;
      status: 'extracted' | 'reused' | 'image-only' | 'failed';
      pages: number;
      message?: string;
      ms: number;
    };

export interface CorpusReport {
  out: string;
  files: number;
  pages: number;
  extracted: string[];
  reused: string[];
  imageOnly: string[];
  failed: Array<{ file: string; kind: string; message: string }>;
}

/** At most `size` tasks at once (the pdftotext processes). */
class Slots {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly size: number) {}
  async run<T>(task: () => Promise<T>): Promise<T> {
    // A finished task hands its slot straight to the next waiting one.
    if (this.running >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}

/** Thrown when the output was made by another OCR tool: we use it as-is rather than overwrite it. */
export class ForeignOcrFileError extends Error {}

export function manifestPath(outFile: string): string {
  return `${outFile}.manifest.json`;
}

async function readManifest(outFile: string): Promise<CorpusManifest | null> {
  try {
    const m = JSON.parse(await fsp.readFile(manifestPath(outFile), 'utf8')) as CorpusManifest;
    return m.version === 1 ? m : null;
  } catch {
    return null;
  }
}

/** Existing lines of our own OCR file, grouped by PDF (only used for files whose hash is unchanged). */
async function existingPages(outFile: string): Promise<Map<string, OcrPage[]>> {
  const byFile = new Map<string, OcrPage[]>();
  if (!existsSync(outFile)) return byFile;
  const index = await indexJsonl<{ file: string }>(outFile, (v) =>
    typeof v.file === 'string' ? { ok: true, summary: { file: v.file } } : { ok: false, problems: [] },
  );
  for (let i = 0; i < index.summaries.length; i++) {
    const page = (await readLine(outFile, index.offsets[i], index.lengths[i])) as OcrPage;
    const list = byFile.get(page.file) ?? [];
    list.push(page);
    byFile.set(page.file, list);
  }
  return byFile;
}

/**
 * Extracts the text of every PDF in `pdfDir` into DRAG's OCR format (one line per page), on
 * worker threads, re-reading only PDFs whose content hash changed since the last build.
 * Password-protected and damaged PDFs are reported and skipped; image-only ones are kept with
 * empty text and reported (they need a real OCR tool). Written atomically; never half a file.
 */
export async function buildCorpus(
  pdfDir: string,
  outFile: string,
  options: {
    workers?: number;
    force?: boolean;
    signal?: AbortSignal;
    onEvent?: (e: CorpusEvent) => void;
    /** pdf.js unless asked: an index never changes because a tool happens to be installed. */
    extractor?: Extractor;
  } = {},
): Promise<CorpusReport> {
  const extractor = options.extractor ?? 'pdfjs';
  const manifest = await readManifest(outFile);
  if (existsSync(outFile) && !manifest && !options.force) {
    throw new ForeignOcrFileError(
      `${outFile} was not made by drag corpus build (no ${path.basename(manifestPath(outFile))}): it is used as-is. ` +
        'Pass --force to rebuild it from the PDFs.',
    );
  }
  const names = (await fsp.readdir(pdfDir)).filter((n) => n.toLowerCase().endsWith('.pdf')).sort();
  const hashes = await Promise.all(names.map((n) => hashFile(path.join(pdfDir, n))));
  const previous = manifest ? await existingPages(outFile) : new Map<string, OcrPage[]>();
  const pagesByFile = new Map<string, OcrPage[]>();
  const next: CorpusManifest = { version: 1, tool: EXTRACTOR_TOOL[extractor], files: {} };
  const report: CorpusReport = {
    out: outFile,
    files: names.length,
    pages: 0,
    extracted: [],
    reused: [],
    imageOnly: [],
    failed: [],
  };
  const todo: number[] = [];
  names.forEach((name, i) => {
    const old = manifest?.files[name];
    const kept = previous.get(name);
    const sameTool = manifest?.tool === next.tool; // another extractor's text is re-extracted
    if (sameTool && old && old.sha256 === hashes[i] && old.status !== 'failed' && kept && kept.length === old.pages) {
      pagesByFile.set(name, kept);
      next.files[name] = old;
      report.reused.push(name);
    } else {
      todo.push(i);
    }
  });
  options.onEvent?.({ type: 'start', total: names.length, reused: report.reused.length });
  let done = report.reused.length;
  for (const name of report.reused)
    options.onEvent?.({
      type: 'file',
      file: name,
      done,
      total: names.length,
      status: 'reused',
      pages: pagesByFile.get(name)!.length,
      ms: 0,
    });

  const pool = extractor === 'pdfjs' ? new PdfWorkerPool(options.workers) : null;
  const processes = new Slots(options.workers ?? Math.max(1, Math.min(4, availableParallelism())));
  const extract = async (file: string) =>
    pool ? pool.extract(file) : processes.run(() => extractWithPdftotext(file, options.signal));
  const abort = () => void pool?.close();
  options.signal?.addEventListener('abort', abort, { once: true });
  try {
    await Promise.all(
      todo.map(async (i) => {
        const name = names[i];
        const started = performance.now();
        try {
          const texts = await extract(path.join(pdfDir, name));
          const pages = texts.map((text, p) => ({ file: name, page_number: p + 1, total_pages: texts.length, text }));
          pagesByFile.set(name, pages);
          const imageOnly = texts.length > 0 && texts.every((t) => t.trim() === '');
          next.files[name] = { sha256: hashes[i], pages: texts.length, status: imageOnly ? 'image-only' : 'ok' };
          if (imageOnly) {
            next.files[name].message =
              'no text layer (scanned or image-only): pages kept with empty text; run an OCR tool for their text';
            report.imageOnly.push(name);
          }
          report.extracted.push(name);
          options.onEvent?.({
            type: 'file',
            file: name,
            done: ++done,
            total: names.length,
            status: imageOnly ? 'image-only' : 'extracted',
            pages: texts.length,
            message: next.files[name].message,
            ms: performance.now() - started,
          });
        } catch (err) {
          if (options.signal?.aborted) throw options.signal.reason ?? new Error('cancelled');
          if (err instanceof PopplerMissingError) throw err;
          const kind = err instanceof PdfError ? err.kind : 'unreadable';
          const message = (err as Error).message;
          next.files[name] = { sha256: hashes[i], pages: 0, status: 'failed', message };
          report.failed.push({ file: name, kind, message });
          options.onEvent?.({
            type: 'file',
            file: name,
            done: ++done,
            total: names.length,
            status: 'failed',
            pages: 0,
            message,
            ms: performance.now() - started,
          });
        }
      }),
    );
  } finally {
    options.signal?.removeEventListener('abort', abort);
    await pool?.close();
  }
  let body = '';
  for (const name of names)
    for (const page of pagesByFile.get(name) ?? []) {
      body += toJsonLine(page);
      report.pages++;
    }
  await writeFileAtomic(outFile, body);
  await writeJsonAtomic(manifestPath(outFile), next);
  return report;
}
