import { indexJsonl, readLine } from '../io/jsonl';

/** Page texts of an OCR file, read on demand by byte offset (never the whole file in memory). */
export class CorpusText {
  private constructor(
    private readonly file: string,
    private readonly where: Map<string, [number, number]>,
  ) {}

  static async open(ocrFile: string): Promise<CorpusText> {
    const where = new Map<string, [number, number]>();
    const index = await indexJsonl<string | null>(ocrFile, (v) => ({
      ok: true,
      summary:
        typeof v.file === 'string' && typeof v.page_number === 'number' ? `${v.file}\u0000${v.page_number}` : null,
    }));
    index.summaries.forEach((key, i) => {
      if (key) where.set(key, [index.offsets[i], index.lengths[i]]);
    });
    return new CorpusText(ocrFile, where);
  }

  async get(file: string, page: number): Promise<string | null> {
    const at = this.where.get(`${file}\u0000${page}`);
    if (!at) return null;
    const rec = (await readLine(this.file, at[0], at[1])) as { text?: string | null };
    return rec.text ?? '';
  }
}
