import { readFile } from 'node:fs/promises';
import type * as PdfJsModule from 'pdfjs-dist/legacy/build/pdf.mjs' with { 'resolution-mode': 'import' };

/**
 * pdf.js (legacy build, the one that runs in Node) and @napi-rs/canvas, loaded lazily: only the
 * processes that extract or render pay for them, never the extension host.
 */
type PdfJs = typeof PdfJsModule;
let pdfjs: Promise<PdfJs> | null = null;

/**
 * pdf.js's legacy build carries core-js, which replaces the builtins it finds wanting in Node 20's V8
 * with JavaScript versions, for the whole thread: `Array.prototype.push` (for a V8 bug about arrays
 * with a read-only length) and `JSON.stringify` and `JSON.parse` (for proposals pdf.js does not use).
 * Every push in pdf.js's own parser then went through the polyfill, about a fifth of the time text
 * extraction takes, and `JSON.stringify` ran four times slower for all other code in the thread. Both
 * pdf.js modules (the worker's too, which would otherwise be imported at the first document, with
 * its own core-js) are loaded first, then the thread's own builtins are put back.
 */
const REPLACED_BUILTINS: ReadonlyArray<[object, PropertyKey]> = [
  [Array.prototype, 'push'],
  [JSON, 'stringify'],
  [JSON, 'parse'],
];

async function importPdfJs(): Promise<PdfJs> {
  // A real dynamic import even in the CommonJS bundle (esbuild would turn import() into require()).
  const load = new Function('s', 'return import(s)') as (s: string) => Promise<unknown>;
  const own = REPLACED_BUILTINS.map(([on, key]) => [on, key, Object.getOwnPropertyDescriptor(on, key)] as const);
  try {
    const lib = (await load('pdfjs-dist/legacy/build/pdf.mjs')) as PdfJs;
    // It sets globalThis.pdfjsWorker, which pdf.js then uses for its in-thread worker.
    await load('pdfjs-dist/legacy/build/pdf.worker.mjs');
    return lib;
  } finally {
    for (const [on, key, descriptor] of own) if (descriptor) Object.defineProperty(on, key, descriptor);
  }
}

function loadPdfJs(): Promise<PdfJs> {
  pdfjs ??= importPdfJs();
  return pdfjs;
}

export type PdfErrorKind = 'password' | 'damaged' | 'unreadable';

/** A per-file problem that stops that file only. */
export class PdfError extends Error {
  constructor(
    readonly kind: PdfErrorKind,
    message: string,
  ) {
    super(message);
  }
}

function classify(err: unknown): PdfError {
  const e = err as { name?: string; message?: string };
  if (e?.name === 'PasswordException')
    return new PdfError('password', 'password-protected: pdf.js cannot open it without the password');
  if (
    e?.name === 'InvalidPDFException' ||
    e?.name === 'FormatError' ||
    /Invalid PDF|bad XRef|startxref/i.test(e?.message ?? '')
  ) {
    return new PdfError('damaged', `damaged or not a PDF (${e?.message ?? e})`);
  }
  return new PdfError('unreadable', e?.message ?? String(err));
}

async function open(file: string) {
  const { getDocument } = await loadPdfJs();
  const data = new Uint8Array(await readFile(file));
  try {
    return await getDocument({ data, isEvalSupported: false, useSystemFonts: false, verbosity: 0, stopAtErrors: false })
      .promise;
  } catch (err) {
    throw classify(err);
  }
}

/** A page's extracted text as it goes into the OCR file: no trailing blanks on a line, single spaces, trimmed. */
export function normalisePageText(text: string): string {
  return text
    .replace(/[ \t]+\n/g, '\n')
    .replace(/[ \t]{2,}/g, ' ')
    .trim();
}

/** The text of every page, in page order (items joined; pdf.js end-of-line marks become newlines). */
export async function extractPdfText(file: string): Promise<string[]> {
  const doc = await open(file);
  try {
    const pages: string[] = [];
    for (let n = 1; n <= doc.numPages; n++) {
      const page = await doc.getPage(n);
      const content = await page.getTextContent();
      let text = '';
      for (const item of content.items) {
        if (!('str' in item)) continue;
        text += item.str;
        if (item.hasEOL) text += '\n';
        else if (item.str && !/\s$/.test(item.str)) text += ' ';
      }
      pages.push(normalisePageText(text));
      page.cleanup();
    }
    return pages;
  } finally {
    await doc.destroy();
  }
}

export interface RenderOptions {
  /** Pixel budget (width x height); the page is scaled to fit it. */
  maxPixels?: number;
  /** Resolution when no pixel budget is given (DRAG rendered at 200 dpi). */
  dpi?: number;
  format?: 'png' | 'jpeg';
  /** JPEG quality 1-100. */
  quality?: number;
}

export interface RenderedPage {
  data: Buffer;
  width: number;
  height: number;
  format: 'png' | 'jpeg';
  pageCount: number;
}

/** The scale (pixels per PDF point) for a page of `w` x `h` points under the options. */
export function renderScale(w: number, h: number, options: RenderOptions): number {
  const dpiScale = (options.dpi ?? 200) / 72;
  if (!options.maxPixels) return dpiScale;
  return Math.min(dpiScale, Math.sqrt(options.maxPixels / (w * h)));
}

export async function renderPdfPage(
  file: string,
  pageNumber: number,
  options: RenderOptions = {},
): Promise<RenderedPage> {
  const { createCanvas } = await import('@napi-rs/canvas');
  const doc = await open(file);
  try {
    if (!Number.isInteger(pageNumber) || pageNumber < 1 || pageNumber > doc.numPages) {
      throw new PdfError('unreadable', `page ${pageNumber} does not exist (the PDF has ${doc.numPages} pages)`);
    }
    const page = await doc.getPage(pageNumber);
    const base = page.getViewport({ scale: 1 });
    let scale = renderScale(base.width, base.height, options);
    let viewport = page.getViewport({ scale });
    // Flooring keeps us inside the budget; re-check after rounding.
    while (options.maxPixels && Math.floor(viewport.width) * Math.floor(viewport.height) > options.maxPixels) {
      scale *= 0.995;
      viewport = page.getViewport({ scale });
    }
    const width = Math.max(1, Math.floor(viewport.width));
    const height = Math.max(1, Math.floor(viewport.height));
    const canvas = createCanvas(width, height);
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, width, height);
    await page.render({
      canvasContext: ctx as unknown as CanvasRenderingContext2D,
      viewport,
      canvas: canvas as unknown as HTMLCanvasElement,
    }).promise;
    const format = options.format ?? 'png';
    const data =
      format === 'jpeg' ? canvas.toBuffer('image/jpeg', options.quality ?? 85) : canvas.toBuffer('image/png');
    page.cleanup();
    return { data, width, height, format, pageCount: doc.numPages };
  } finally {
    await doc.destroy();
  }
}

/** A highlighted word box, as fractions of the page (left, top, width, height), top-left origin. */
export interface TextBox {
  left: number;
  top: number;
  width: number;
  height: number;
  text: string;
}

/**
 * Where the given (analysed) terms sit on a page, from pdf.js text positions: boxes of the text
 * items that contain one of them. Used to highlight a query's words on the page image.
 */
export async function termBoxes(
  file: string,
  pageNumber: number,
  terms: readonly string[],
  analyze: (text: string) => string[],
): Promise<TextBox[]> {
  const doc = await open(file);
  try {
    const page = await doc.getPage(pageNumber);
    const viewport = page.getViewport({ scale: 1 });
    const content = await page.getTextContent();
    const wanted = new Set(terms);
    const boxes: TextBox[] = [];
    for (const item of content.items) {
      if (!('str' in item) || !item.str.trim()) continue;
      if (!analyze(item.str).some((t) => wanted.has(t))) continue;
      const [, , , d, e, f] = item.transform as number[];
      const height = item.height || Math.abs(d) || 10;
      boxes.push({
        left: e / viewport.width,
        top: 1 - (f + height) / viewport.height,
        width: item.width / viewport.width,
        height: (height * 1.2) / viewport.height,
        text: item.str,
      });
    }
    page.cleanup();
    return boxes;
  } finally {
    await doc.destroy();
  }
}
