import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/write';
import { hashFile } from '../search/index';
import type { RenderedPage, RenderOptions } from './pdf';

export interface CachedImage {
  file: string;
  width: number;
  height: number;
  format: 'png' | 'jpeg';
  cached: boolean;
}

/**
 * Page images on disk, keyed by (PDF content hash, page, size, format), so the same image serves
 * the model (base64) and the person (webview), and a changed PDF never shows a stale page. The
 * folder is capped in bytes; the least recently used images go first.
 */
export class PageImageCache {
  private readonly hashes = new Map<string, { key: string; hash: string }>();

  constructor(
    readonly dir: string,
    readonly maxBytes = 1024 * 1024 * 1024,
  ) {}

  private async pdfHash(pdf: string): Promise<string> {
    const st = await fsp.stat(pdf);
    const key = `${st.size}:${st.mtimeMs}`;
    const known = this.hashes.get(pdf);
    if (known && known.key === key) return known.hash;
    const hash = await hashFile(pdf);
    this.hashes.set(pdf, { key, hash });
    return hash;
  }

  static sizeKey(options: RenderOptions): string {
    const size = options.maxPixels ? `mp${options.maxPixels}` : `dpi${options.dpi ?? 200}`;
    const format = options.format ?? 'png';
    return `${size}${format === 'jpeg' ? `-q${options.quality ?? 85}` : ''}.${format === 'jpeg' ? 'jpg' : 'png'}`;
  }

  /** The cached image, rendering it with `render` on a miss. */
  async get(
    pdf: string,
    page: number,
    options: RenderOptions,
    render: () => Promise<RenderedPage>,
  ): Promise<CachedImage> {
    const hash = await this.pdfHash(pdf);
    const file = path.join(this.dir, hash.slice(0, 32), `p${page}-${PageImageCache.sizeKey(options)}`);
    const meta = `${file}.json`;
    try {
      const info = JSON.parse(await fsp.readFile(meta, 'utf8')) as {
        width: number;
        height: number;
        format: 'png' | 'jpeg';
      };
      await fsp.access(file);
      const now = new Date();
      await fsp.utimes(file, now, now).catch(() => undefined); // recency for the LRU
      return { file, ...info, cached: true };
    } catch {
      // miss
    }
    const image = await render();
    await writeFileAtomic(file, image.data);
    await writeFileAtomic(meta, JSON.stringify({ width: image.width, height: image.height, format: image.format }));
    await this.evict();
    return { file, width: image.width, height: image.height, format: image.format, cached: false };
  }

  /** Removes least recently used images until the folder is under its cap. */
  async evict(): Promise<number> {
    const entries: Array<{ file: string; size: number; time: number }> = [];
    let total = 0;
    for (const sub of await fsp.readdir(this.dir).catch(() => [] as string[])) {
      const subdir = path.join(this.dir, sub);
      for (const name of await fsp.readdir(subdir).catch(() => [] as string[])) {
        if (name.endsWith('.json')) continue;
        const file = path.join(subdir, name);
        const st = await fsp.stat(file).catch(() => null);
        if (!st) continue;
        entries.push({ file, size: st.size, time: st.mtimeMs });
        total += st.size;
      }
    }
    if (total <= this.maxBytes) return 0;
    entries.sort((a, b) => a.time - b.time);
    let removed = 0;
    for (const e of entries) {
      if (total <= this.maxBytes) break;
      await fsp.rm(e.file, { force: true });
      await fsp.rm(`${e.file}.json`, { force: true });
      total -= e.size;
      removed++;
    }
    return removed;
  }
}
