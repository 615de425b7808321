import { isUtf8 } from 'node:buffer';
import { promises as fsp } from 'node:fs';
import type { LineError } from './errors';
import type { ReadHash } from './hash';

/** What a summarizer makes of one parsed line: a summary to keep, or the problems that make it unusable. */
export type SummaryResult<S> =
  { ok: true; summary: S } | { ok: false; problems: Array<{ fieldPath: string; message: string }> };

export type Summarizer<S> = (value: Record<string, unknown>, line: number) => SummaryResult<S>;

/** A good line kept without a summary: one object for every such line, not one each. */
export const NO_SUMMARY: SummaryResult<null> = Object.freeze({ ok: true, summary: null });

/**
 * Byte-offset index of a JSONL file plus one summary per good line. Records are read back on
 * demand with {@link readLine}; the file itself is never held in memory.
 */
export interface JsonlIndex<S> {
  file: string;
  /** 1-based line numbers of the indexed (good) records. */
  lines: number[];
  offsets: number[];
  lengths: number[];
  summaries: S[];
  /** Problems with lines that were skipped (and with fields of kept lines, if the summarizer reports them). */
  errors: LineError[];
  /** Bytes consumed: everything before this offset is indexed; a growing file continues from here. */
  indexedBytes: number;
  /** Line number that the byte at `indexedBytes` starts. */
  nextLine: number;
  /** An unfinished last line (no newline, not valid JSON): reported, and re-read when the file grows. */
  tailError: LineError | null;
  /** File identity when indexed, to tell growth from replacement. */
  ino: number;
  size: number;
}

export interface IndexOptions {
  /** Read size; lines longer than this are assembled from several reads. */
  chunkSize?: number;
  signal?: AbortSignal;
  /** Cap on errors kept (the count is still exact in `errorCount`). */
  maxErrors?: number;
  /** Given every byte read (from `previous`'s end, or the whole file), so a caller need not read it twice. */
  hash?: ReadHash;
}

const NEWLINE = 0x0a;
const CR = 0x0d;

function isBlank(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c !== 0x20 && c !== 0x09 && c !== CR) return false;
  }
  return true;
}

/**
 * Indexes `file` in one streaming pass. With `previous` (an index of the same file), only the bytes
 * appended since are read, so a trajectory file still being written is followed cheaply; a file
 * that shrank or was replaced is indexed from scratch.
 */
export async function indexJsonl<S>(
  file: string,
  summarize: Summarizer<S>,
  previous?: JsonlIndex<S>,
  options: IndexOptions = {},
): Promise<JsonlIndex<S>> {
  const chunkSize = options.chunkSize ?? 1 << 20;
  const maxErrors = options.maxErrors ?? 10_000;
  const handle = await fsp.open(file, 'r');
  try {
    const stat = await handle.stat();
    const resume = previous && previous.ino === stat.ino && stat.size >= previous.indexedBytes;
    const index: JsonlIndex<S> = resume
      ? { ...previous, lines: previous.lines, tailError: null, size: stat.size }
      : {
          file,
          lines: [],
          offsets: [],
          lengths: [],
          summaries: [],
          errors: [],
          indexedBytes: 0,
          nextLine: 1,
          tailError: null,
          ino: stat.ino,
          size: stat.size,
        };
    let lineNo = index.nextLine;
    let position = index.indexedBytes;
    const { lines, offsets, lengths, summaries, errors } = index;

    const addError = (error: LineError) => {
      if (errors.length < maxErrors) errors.push(error);
    };

    // `checked`: the caller has already found these bytes to be valid UTF-8.
    const handleLine = (
      buf: Buffer,
      start: number,
      end: number,
      fileOffset: number,
      complete: boolean,
      checked = false,
    ): boolean => {
      let stop = end;
      if (stop > start && buf[stop - 1] === CR) stop--;
      if (
        fileOffset === 0 &&
        stop - start >= 3 &&
        buf[start] === 0xef &&
        buf[start + 1] === 0xbb &&
        buf[start + 2] === 0xbf
      ) {
        start += 3; // UTF-8 byte-order mark
        fileOffset += 3;
      }
      if (isBlank(buf, start, stop)) return true;
      if (!checked && !isUtf8(buf.subarray(start, stop))) {
        addError({ file, line: lineNo, fieldPath: '', message: 'invalid UTF-8 byte sequence; line skipped' });
        return true;
      }
      let value: unknown;
      try {
        value = JSON.parse(buf.toString('utf8', start, stop));
      } catch (err) {
        if (!complete) return false;
        addError({ file, line: lineNo, fieldPath: '', message: `invalid JSON: ${(err as Error).message}` });
        return true;
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        const found = Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value;
        addError({ file, line: lineNo, fieldPath: '', message: `expected a JSON object, found ${found}` });
        return true;
      }
      const result = summarize(value as Record<string, unknown>, lineNo);
      if (result.ok) {
        lines.push(lineNo);
        offsets.push(fileOffset);
        lengths.push(stop - start);
        summaries.push(result.summary);
      } else {
        for (const p of result.problems) addError({ file, line: lineNo, fieldPath: p.fieldPath, message: p.message });
      }
      return true;
    };

    // Each read lands after the unfinished line that the last one ended with (copied to the front of
    // the buffer it lands in), and the next read starts as soon as that line is known, before the
    // lines of this one are parsed: the disk works while this thread parses. A buffer grows only for
    // a longer line; the two take turns.
    let buffer: Buffer = Buffer.allocUnsafe(chunkSize);
    let spare: Buffer | null = null;
    let carry = 0; // bytes of an unfinished line at the start of `buffer`
    let carryOffset = position; // the file offset of buffer[0]
    const read = (into: Buffer, at: number, from: number) => {
      const p = handle.read(into, at, into.length - at, from);
      p.catch(() => {}); // awaited below, or settled before the file is closed: never unhandled
      return p;
    };
    let pending: ReturnType<typeof read> | null = read(buffer, carry, position);
    try {
      for (;;) {
        const { bytesRead } = await pending;
        pending = null;
        if (bytesRead === 0) break;
        position += bytesRead;
        const data = buffer.subarray(0, carry + bytesRead);
        const dataOffset = carryOffset;
        const last = data.lastIndexOf(NEWLINE);
        const rest = last + 1; // where the unfinished line after the last newline starts
        let next: Buffer = spare ?? Buffer.allocUnsafe(buffer.length);
        if (data.length - rest >= next.length) next = Buffer.allocUnsafe(2 * (data.length - rest));
        data.copy(next, 0, rest);
        if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
        pending = read(next, data.length - rest, position);
        // A newline is never inside a multi-byte character: complete lines are valid UTF-8 together
        // exactly when each is, so one check covers them all (each line is checked only if it fails).
        const checked = last > 0 && isUtf8(data.subarray(0, last));
        let start = 0;
        let nl: number;
        while (start < rest && (nl = data.indexOf(NEWLINE, start)) !== -1) {
          handleLine(data, start, nl, dataOffset + start, true, checked);
          lineNo++;
          start = nl + 1;
        }
        // The bytes just read go to the hash, which may keep the buffer (and `data` with it) and hand
        // back another.
        const end = data.length;
        spare = options.hash ? options.hash.take(buffer, carry, end) : buffer;
        buffer = next;
        carry = end - rest;
        carryOffset = dataOffset + rest;
      }
    } finally {
      // A read still on its way when this one stopped (an error, an abort) lands before the file closes.
      if (pending) await pending.catch(() => {});
    }
    let indexed = carry ? carryOffset : position;
    if (carry) {
      // A last line with no newline: keep it if it parses; otherwise it is probably still being written.
      if (handleLine(buffer, 0, carry, carryOffset, false)) {
        indexed = position;
        lineNo++;
      } else {
        index.tailError = {
          file,
          line: lineNo,
          fieldPath: '',
          message: 'truncated last line (no newline, incomplete JSON): skipped; it is re-read if the file grows',
        };
      }
    }
    index.indexedBytes = indexed;
    index.nextLine = lineNo;
    return index;
  } finally {
    await handle.close();
  }
}

/** All problems of an index, including an unfinished last line. */
export function indexProblems(index: JsonlIndex<unknown>): LineError[] {
  return index.tailError ? [...index.errors, index.tailError] : index.errors;
}

/** Reads and parses the record at position `i` of an index. */
export async function readLine(file: string, offset: number, length: number): Promise<unknown> {
  const handle = await fsp.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await handle.read(buf, 0, length, offset);
    return JSON.parse(buf.toString('utf8', 0, bytesRead));
  } finally {
    await handle.close();
  }
}
