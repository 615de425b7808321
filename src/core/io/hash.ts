import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import type * as WorkerThreads from 'node:worker_threads';

/**
 * The SHA-256 of a file's bytes as a reader reads them (a dataset's manifest records its inputs'
 * hashes), given the reader's own buffers so that nothing is copied for it.
 */
export interface ReadHash {
  /**
   * Hashes `buffer[from, to)`, the bytes just read, once the reader is done with the buffer. Returns a
   * buffer of the same size for the reader to read into again: `buffer` itself, or a spare when
   * `buffer` was taken away to hash.
   */
  take(buffer: Buffer, from: number, to: number): Buffer;
  /** The hex digest of everything taken; the hash takes nothing more. */
  digest(): Promise<string>;
  /** Drops the hash (the read failed); no digest follows. */
  abort(): void;
}

/**
 * Inputs at least this big are hashed on a thread of their own, when there are more than two cores;
 * smaller ones here (a thread costs more). With two, V8's garbage collector already keeps the second
 * busy while the main thread parses: measured on 2 cores, a hashing thread saved no time and cost
 * about 5% more CPU.
 */
export const BACKGROUND_HASH_BYTES = 16 << 20;

// Each message is a buffer to hash, sent back empty-handed (transferred) for the reader to reuse;
// null asks for the digest.
const WORKER = `
const { parentPort } = require('node:worker_threads');
const hash = require('node:crypto').createHash('sha256');
parentPort.on('message', (m) => {
  if (m === null) return parentPort.postMessage(hash.digest('hex'));
  hash.update(new Uint8Array(m.buffer, m.from, m.to - m.from));
  parentPort.postMessage(m.buffer, [m.buffer]);
});`;

/**
 * A hash of an input of about `size` bytes. A big one, with cores to spare, is hashed on a worker
 * thread while this one parses (about 50 ms of a 50 MB file's 1.5 s in `drag process`): each buffer
 * read is handed over whole (no copy) and comes back to be read into again.
 */
export function readHash(size: number, cores = availableParallelism()): ReadHash {
  if (size < BACKGROUND_HASH_BYTES || cores <= 2) {
    const hash = createHash('sha256');
    return {
      take(buffer, from, to) {
        hash.update(buffer.subarray(from, to));
        return buffer;
      },
      digest: async () => hash.digest('hex'),
      abort() {},
    };
  }
  // Loaded here, not at start-up: most commands, and every input under the threshold, never need it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Worker } = require('node:worker_threads') as typeof WorkerThreads;
  const worker = new Worker(WORKER, { eval: true });
  worker.unref(); // only a digest being awaited keeps the process alive for it
  const spares: ArrayBuffer[] = [];
  let digest: ((hex: string) => void) | undefined;
  const done = new Promise<string>((resolve, reject) => {
    digest = resolve;
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the hashing thread exited (${code}) before its digest`)));
  });
  done.catch(() => {}); // a failure is reported by digest(), not as an unhandled rejection meanwhile
  worker.on('message', (m: ArrayBuffer | string) => (typeof m === 'string' ? digest?.(m) : spares.push(m)));
  return {
    take(buffer, from, to) {
      if (buffer.byteOffset !== 0 || buffer.buffer.byteLength !== buffer.length) {
        // Its memory is shared (a small buffer from Node's pool): hash a copy, keep the buffer.
        const copy = Uint8Array.prototype.slice.call(buffer, from, to);
        worker.postMessage({ buffer: copy.buffer, from: 0, to: copy.length }, [copy.buffer]);
        return buffer;
      }
      const i = spares.findIndex((s) => s.byteLength === buffer.length);
      const spare = i >= 0 ? Buffer.from(spares.splice(i, 1)[0]) : Buffer.allocUnsafeSlow(buffer.length);
      const whole = buffer.buffer as ArrayBuffer; // its own, whole (checked above), never shared
      worker.postMessage({ buffer: whole, from, to }, [whole]);
      return spare;
    },
    async digest() {
      worker.ref();
      worker.postMessage(null);
      try {
        return await done;
      } finally {
        void worker.terminate();
      }
    },
    abort() {
      void worker.terminate();
    },
  };
}

/** Runs `read` (which reads `file` once, giving the hash its bytes) and returns its result and the digest. */
export async function withReadHash<T>(file: string, read: (hash: ReadHash) => Promise<T>): Promise<[T, string]> {
  const hash = readHash((await stat(file).catch(() => null))?.size ?? 0);
  try {
    const result = await read(hash);
    return [result, await hash.digest()];
  } catch (err) {
    hash.abort();
    throw err;
  }
}
