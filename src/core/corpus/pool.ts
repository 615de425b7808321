import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { PdfError, type PdfErrorKind, type RenderedPage, type RenderOptions, type TextBox } from './pdf';
import type { WorkerReply, WorkerRequest } from './worker';

/** A request before the pool numbers it (Omit distributed over the union). */
type Request = WorkerRequest extends infer T ? (T extends unknown ? Omit<T, 'id'> : never) : never;
type Job = { req: Request; resolve: (r: WorkerReply & { ok: true }) => void; reject: (e: Error) => void };

/** The worker script: the bundled one beside dist/cli.js, or the TypeScript source under tsx (tests). */
function newWorker(): Worker {
  if (__filename.endsWith('.ts')) {
    // Running from source (tests, benchmarks): register tsx in the worker, then load the entry.
    return new Worker(`require('tsx/cjs'); require(${JSON.stringify(path.join(__dirname, 'worker.ts'))});`, {
      eval: true,
    });
  }
  return new Worker(path.join(__dirname, 'pdfWorker.js'));
}

/** A small pool of PDF worker threads (default: one per core, at most 4). */
export class PdfWorkerPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Job & { id: number }>();
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  constructor(readonly size = Math.max(1, Math.min(4, availableParallelism()))) {}

  private spawn(): Worker {
    const worker = newWorker();
    worker.on('message', (reply: WorkerReply) => {
      const job = this.busy.get(worker);
      this.busy.delete(worker);
      if (job) {
        if (reply.ok) job.resolve(reply);
        else job.reject(new PdfError(reply.kind as PdfErrorKind, reply.message));
      }
      this.idle.push(worker);
      this.pump();
    });
    worker.on('error', (err) => {
      const job = this.busy.get(worker);
      this.busy.delete(worker);
      job?.reject(new PdfError('unreadable', `worker crashed: ${err.message}`));
      this.pump();
    });
    return worker;
  }

  private pump(): void {
    while (this.queue.length && !this.closed) {
      let worker = this.idle.pop();
      if (!worker) {
        if (this.busy.size >= this.size) return;
        worker = this.spawn();
      }
      const job = this.queue.shift()!;
      const id = this.nextId++;
      this.busy.set(worker, { ...job, id });
      worker.postMessage({ ...job.req, id });
    }
  }

  private run(req: Request): Promise<WorkerReply & { ok: true }> {
    if (this.closed) return Promise.reject(new Error('worker pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      this.pump();
    });
  }

  async extract(file: string): Promise<string[]> {
    return (await this.run({ type: 'extract', file })).pages ?? [];
  }

  async render(file: string, page: number, options: RenderOptions): Promise<RenderedPage> {
    const img = (await this.run({ type: 'render', file, page, options })).image!;
    return {
      data: Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength),
      width: img.width,
      height: img.height,
      format: img.format,
      pageCount: img.pageCount,
    };
  }

  async boxes(file: string, page: number, terms: string[]): Promise<TextBox[]> {
    return (await this.run({ type: 'boxes', file, page, terms })).boxes ?? [];
  }

  /** Stops all workers; queued and running jobs are rejected (used for cancellation too). */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('cancelled'));
    for (const [, job] of this.busy) job.reject(new Error('cancelled'));
    const all = [...this.idle, ...this.busy.keys()];
    this.busy.clear();
    this.idle.length = 0;
    await Promise.all(all.map((w) => w.terminate()));
  }
}
