import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { formatFieldPath, type LineError } from '../io/errors';
import { indexJsonl, indexProblems } from '../io/jsonl';
import { writeFileAtomic } from '../io/write';
import { compileFastCheck } from '../schema/fastCheck';
import { OcrPage } from '../schema/ocr';
import { analyze } from './analyzer';
import { lengthToByte } from './lengths';

/** Bump when the on-disk layout or the analysis changes: old caches are then rebuilt. */
export const INDEX_FORMAT = 1;

/**
 * The search index: one document per OCR line, in line order (Whoosh's doc numbers), with
 * positional postings for the text field, the exact total length (for avgdl) and each page's
 * length as Whoosh's lossy byte.
 */
export interface IndexData {
  docCount: number;
  /** Distinct file names; `docFile[d]` indexes into it. */
  files: string[];
  docFile: Uint32Array;
  pageNumber: Int32Array;
  totalPages: Int32Array;
  lengthByte: Uint8Array;
  totalLength: number;
  /** Terms in first-seen order; a term's id is its position. */
  terms: string[];
  /** Postings of term t are [postStart[t], postStart[t+1]) in postDocs/postTf. */
  postStart: Uint32Array;
  postDocs: Uint32Array;
  postTf: Uint32Array;
  /** Positions of posting p are [posStart[p], posStart[p+1]) in positions. */
  posStart: Uint32Array;
  positions: Uint32Array;
  /** Content hash of the OCR file this index was built from. */
  sourceHash: string;
}

export interface BuildResult {
  index: IndexData;
  errors: LineError[];
}

const isOcrPage = compileFastCheck(OcrPage);

/** SHA-256 of a file, streamed. */
export async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Builds the index in one streaming pass over `ocr_output.jsonl`; bad lines are reported and skipped. */
export async function buildIndex(
  ocrFile: string,
  options: { signal?: AbortSignal; onProgress?: (pages: number) => void; sourceHash?: string } = {},
): Promise<BuildResult> {
  const sourceHash = options.sourceHash ?? (await hashFile(ocrFile));
  const fileIds = new Map<string, number>();
  const files: string[] = [];
  const docFile: number[] = [];
  const pageNumber: number[] = [];
  const totalPages: number[] = [];
  const lengthByte: number[] = [];
  let totalLength = 0;
  const termIds = new Map<string, number>();
  const terms: string[] = [];
  // Per term: postings as flat growable arrays (doc, tf) and positions.
  const tDocs: number[][] = [];
  const tTf: number[][] = [];
  const tPos: number[][] = [];
  let postings = 0;
  let positionsCount = 0;

  const result = await indexJsonl<null>(
    ocrFile,
    (value) => {
      if (!isOcrPage(value)) {
        const parsed = OcrPage.safeParse(value);
        if (!parsed.success)
          return {
            ok: false,
            problems: parsed.error.issues
              .slice(0, 5)
              .map((i) => ({ fieldPath: formatFieldPath(i.path), message: i.message })),
          };
      }
      const page = value as OcrPage;
      const doc = docFile.length;
      let fid = fileIds.get(page.file);
      if (fid === undefined) {
        fid = files.length;
        files.push(page.file);
        fileIds.set(page.file, fid);
      }
      docFile.push(fid);
      pageNumber.push(page.page_number);
      totalPages.push(page.total_pages);
      const tokens = analyze(page.text ?? '');
      totalLength += tokens.length;
      lengthByte.push(lengthToByte(tokens.length));
      // Group positions by term for this document.
      const local = new Map<number, number[]>();
      for (let pos = 0; pos < tokens.length; pos++) {
        let id = termIds.get(tokens[pos]);
        if (id === undefined) {
          id = terms.length;
          terms.push(tokens[pos]);
          termIds.set(tokens[pos], id);
          tDocs.push([]);
          tTf.push([]);
          tPos.push([]);
        }
        let list = local.get(id);
        if (!list) local.set(id, (list = []));
        list.push(pos);
      }
      for (const [id, list] of local) {
        tDocs[id].push(doc);
        tTf[id].push(list.length);
        const target = tPos[id];
        for (const p of list) target.push(p);
        postings++;
        positionsCount += list.length;
      }
      if (options.onProgress && doc % 500 === 0) options.onProgress(doc);
      return { ok: true, summary: null };
    },
    undefined,
    { signal: options.signal },
  );

  const postStart = new Uint32Array(terms.length + 1);
  const postDocs = new Uint32Array(postings);
  const postTf = new Uint32Array(postings);
  const posStart = new Uint32Array(postings + 1);
  const positions = new Uint32Array(positionsCount);
  let p = 0;
  let q = 0;
  for (let t = 0; t < terms.length; t++) {
    postStart[t] = p;
    const docs = tDocs[t];
    const tfs = tTf[t];
    const pos = tPos[t];
    let k = 0;
    for (let i = 0; i < docs.length; i++) {
      postDocs[p] = docs[i];
      postTf[p] = tfs[i];
      posStart[p] = q;
      for (let j = 0; j < tfs[i]; j++) positions[q++] = pos[k++];
      p++;
    }
  }
  postStart[terms.length] = p;
  posStart[postings] = q;
  return {
    index: {
      docCount: docFile.length,
      files,
      docFile: Uint32Array.from(docFile),
      pageNumber: Int32Array.from(pageNumber),
      totalPages: Int32Array.from(totalPages),
      lengthByte: Uint8Array.from(lengthByte),
      totalLength,
      terms,
      postStart,
      postDocs,
      postTf,
      posStart,
      positions,
      sourceHash,
    },
    errors: indexProblems(result),
  };
}

const ARRAYS = [
  'docFile',
  'pageNumber',
  'totalPages',
  'lengthByte',
  'postStart',
  'postDocs',
  'postTf',
  'posStart',
  'positions',
] as const;
type ArrayKey = (typeof ARRAYS)[number];
const CTORS: Record<
  ArrayKey,
  {
    new (buffer: ArrayBuffer, offset: number, length: number): ArrayLike<number> & { byteLength: number };
    BYTES_PER_ELEMENT: number;
  }
> = {
  docFile: Uint32Array,
  pageNumber: Int32Array,
  totalPages: Int32Array,
  lengthByte: Uint8Array,
  postStart: Uint32Array,
  postDocs: Uint32Array,
  postTf: Uint32Array,
  posStart: Uint32Array,
  positions: Uint32Array,
};

/** Binary layout: 8-byte magic, u32 header length, JSON header, then each typed array 8-byte aligned. */
export function serializeIndex(index: IndexData): Buffer {
  const header = {
    format: INDEX_FORMAT,
    docCount: index.docCount,
    totalLength: index.totalLength,
    sourceHash: index.sourceHash,
    files: index.files,
    terms: index.terms.join('\n'),
    arrays: ARRAYS.map((k) => ({ name: k, length: (index[k] as ArrayLike<number>).length })),
  };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const parts: Buffer[] = [Buffer.from('DRAGIDX1'), Buffer.alloc(4), headerBytes];
  parts[1].writeUInt32LE(headerBytes.length);
  let offset = 12 + headerBytes.length;
  for (const k of ARRAYS) {
    const pad = (8 - (offset % 8)) % 8;
    if (pad) parts.push(Buffer.alloc(pad));
    offset += pad;
    const arr = index[k] as unknown as { buffer: ArrayBuffer; byteOffset: number; byteLength: number };
    parts.push(Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength));
    offset += arr.byteLength;
  }
  return Buffer.concat(parts);
}

export function deserializeIndex(data: Buffer): IndexData {
  if (data.toString('latin1', 0, 8) !== 'DRAGIDX1') throw new Error('not a DRAG search index');
  const headerLength = data.readUInt32LE(8);
  const header = JSON.parse(data.toString('utf8', 12, 12 + headerLength)) as {
    format: number;
    docCount: number;
    totalLength: number;
    sourceHash: string;
    files: string[];
    terms: string;
    arrays: Array<{ name: ArrayKey; length: number }>;
  };
  if (header.format !== INDEX_FORMAT) throw new Error(`index format ${header.format}, expected ${INDEX_FORMAT}`);
  // Copy into one aligned buffer so typed arrays can view it without per-array copies.
  const body = new ArrayBuffer(data.length);
  new Uint8Array(body).set(data);
  let offset = 12 + headerLength;
  const arrays = {} as Record<ArrayKey, ArrayLike<number>>;
  for (const { name, length } of header.arrays) {
    offset += (8 - (offset % 8)) % 8;
    const Ctor = CTORS[name];
    arrays[name] = new Ctor(body, offset, length);
    offset += length * Ctor.BYTES_PER_ELEMENT;
  }
  return {
    docCount: header.docCount,
    totalLength: header.totalLength,
    sourceHash: header.sourceHash,
    files: header.files,
    terms: header.terms === '' ? [] : header.terms.split('\n'),
    ...(arrays as unknown as Pick<IndexData, ArrayKey>),
  };
}

/** Where the cached index of an OCR file with this content hash lives. */
export function cachePath(cacheDir: string, sourceHash: string): string {
  return path.join(cacheDir, 'search', `index-v${INDEX_FORMAT}-${sourceHash.slice(0, 32)}.bin`);
}

export interface LoadResult {
  index: IndexData;
  /** `cache` when loaded from disk, `built` when (re)built. */
  source: 'cache' | 'built';
  errors: LineError[];
  cacheFile: string;
}

/**
 * Loads the index for `ocrFile` from `cacheDir`, keyed by the OCR file's content hash: an
 * unchanged corpus loads, a changed one rebuilds (DRAG reused a stale index forever; see
 * docs/drag-compatibility.md#search-engine). Each OCR file gets its own cache entry.
 */
export async function loadOrBuildIndex(
  ocrFile: string,
  cacheDir: string,
  options: { signal?: AbortSignal; onProgress?: (pages: number) => void; rebuild?: boolean } = {},
): Promise<LoadResult> {
  const sourceHash = await hashFile(ocrFile);
  const cacheFile = cachePath(cacheDir, sourceHash);
  if (!options.rebuild) {
    try {
      const index = deserializeIndex(await fsp.readFile(cacheFile));
      if (index.sourceHash === sourceHash) return { index, source: 'cache', errors: [], cacheFile };
    } catch {
      // Missing, corrupt or old-format cache: rebuild, never fatal.
    }
  }
  const { index, errors } = await buildIndex(ocrFile, { ...options, sourceHash });
  await writeFileAtomic(cacheFile, serializeIndex(index));
  return { index, source: 'built', errors, cacheFile };
}
