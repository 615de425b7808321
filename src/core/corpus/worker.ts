/**
 * Worker thread entry: PDF text extraction and page rendering off the calling thread, so a
 * corpus build uses both cores and rendering never blocks an event loop.
 */
import { parentPort } from 'node:worker_threads';
import { analyze } from '../search/analyzer';
import { extractPdfText, PdfError, renderPdfPage, type RenderOptions, termBoxes, type TextBox } from './pdf';

export type WorkerRequest =
  | { id: number; type: 'extract'; file: string }
  | { id: number; type: 'render'; file: string; page: number; options: RenderOptions }
  | { id: number; type: 'boxes'; file: string; page: number; terms: string[] };

export type WorkerReply =
  | {
      id: number;
      ok: true;
      pages?: string[];
      boxes?: TextBox[];
      image?: { data: Uint8Array; width: number; height: number; format: 'png' | 'jpeg'; pageCount: number };
    }
  | { id: number; ok: false; kind: string; message: string };

parentPort?.on('message', async (req: WorkerRequest) => {
  try {
    if (req.type === 'boxes') {
      parentPort!.postMessage({
        id: req.id,
        ok: true,
        boxes: await termBoxes(req.file, req.page, req.terms, analyze),
      } satisfies WorkerReply);
    } else if (req.type === 'extract') {
      parentPort!.postMessage({ id: req.id, ok: true, pages: await extractPdfText(req.file) } satisfies WorkerReply);
    } else {
      const r = await renderPdfPage(req.file, req.page, req.options);
      const data = new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength);
      parentPort!.postMessage({
        id: req.id,
        ok: true,
        image: { data, width: r.width, height: r.height, format: r.format, pageCount: r.pageCount },
      } satisfies WorkerReply);
    }
  } catch (err) {
    const kind = err instanceof PdfError ? err.kind : 'unreadable';
    parentPort!.postMessage({
      id: req.id,
      ok: false,
      kind,
      message: (err as Error).message ?? String(err),
    } satisfies WorkerReply);
  }
});
