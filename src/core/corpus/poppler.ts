import { spawn } from 'node:child_process';
import { normalisePageText, PdfError } from './pdf';

/** Thrown when `drag corpus build --extractor poppler` runs where pdftotext is not installed. */
export class PopplerMissingError extends Error {}

/**
 * The text of every page with poppler's `pdftotext` (a separate process; the caller decides how
 * many run at once). pdftotext ends each page with a form feed; each page's text is normalised as
 * the pdf.js extractor's is, so the two give the same kind of text to the search index.
 */
export function extractWithPdftotext(file: string, signal?: AbortSignal): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('pdftotext', ['-enc', 'UTF-8', file, '-'], { stdio: ['ignore', 'pipe', 'pipe'], signal });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (err += t));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'ENOENT'
          ? new PopplerMissingError(
              '--extractor poppler needs pdftotext on PATH (Debian: apt-get install poppler-utils)',
            )
          : e,
      ),
    );
    child.on('close', (code) => {
      if (code === 0) {
        const pages = Buffer.concat(out).toString('utf8').split('\f');
        pages.pop(); // after the last page's form feed
        resolve(pages.map(normalisePageText));
        return;
      }
      const message = err.trim().split('\n').pop() ?? `pdftotext exited with ${code}`;
      // pdftotext: 1 = cannot open the PDF (damaged, or encrypted without the password), 3 = permissions.
      if (/password/i.test(err) || code === 3)
        reject(new PdfError('password', `password-protected: pdftotext cannot open it (${message})`));
      else if (code === 1) reject(new PdfError('damaged', `damaged or not a PDF (${message})`));
      else reject(new PdfError('unreadable', message));
    });
  });
}
