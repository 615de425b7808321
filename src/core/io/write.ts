import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

/** One JSON line, non-ASCII left unescaped as DRAG writes it. */
export function toJsonLine(record: unknown): string {
  return `${JSON.stringify(record)}\n`;
}

/**
 * Appends records to a JSONL file and fsyncs before returning: once this resolves, a crash cannot
 * lose them. Earlier content is never rewritten.
 */
export async function appendJsonl(file: string, records: readonly unknown[]): Promise<void> {
  if (records.length === 0) return;
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const handle = await fsp.open(file, 'a');
  try {
    await handle.writeFile(records.map(toJsonLine).join(''), 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `file` atomically: write a temp file beside it, fsync, rename over, fsync the folder.
 * Readers see the old content or the new, never a mix; a crash leaves the old file intact.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  await fsp.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await fsp.open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  try {
    const dirHandle = await fsp.open(dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  } catch {
    // Some file systems refuse fsync on a directory; the rename itself is still atomic.
  }
}

/** Atomic JSON write with a trailing newline. */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** Writes records as JSONL atomically, one JSON line each (see writeLinesAtomic). */
export async function writeJsonlAtomic(file: string, records: Iterable<unknown>): Promise<number> {
  return writeLinesAtomic(
    file,
    (function* () {
      for (const r of records) yield toJsonLine(r);
    })(),
  );
}

/**
 * Writes lines (each ending in a newline) atomically without building one giant string: chunks go
 * to a temp file, which is fsynced and renamed over the target. Returns the number of lines.
 */
export async function writeLinesAtomic(file: string, lines: Iterable<string>): Promise<number> {
  const dir = path.dirname(file);
  await fsp.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await fsp.open(tmp, 'w');
  let n = 0;
  try {
    let chunk: string[] = [];
    let size = 0;
    for (const text of lines) {
      chunk.push(text);
      size += text.length;
      n++;
      if (size > 1 << 22) {
        await handle.write(chunk.join(''));
        chunk = [];
        size = 0;
      }
    }
    if (chunk.length) await handle.write(chunk.join(''));
    await handle.sync();
  } catch (err) {
    await handle.close();
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  await fsp.rename(tmp, file);
  return n;
}
