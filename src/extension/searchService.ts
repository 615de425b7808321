import { type ChildProcess, fork } from 'node:child_process';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import type * as vscode from 'vscode';
import type { z } from 'zod';
import { BoxesResult, RankOfResult, RenderResult, SearchResult, ServeReply } from '../protocol/serve';
import type { CorpusPaths } from '../core/workspace/layout';

const REQUEST_TIMEOUT_MS = 60_000;

/**
 * The extension's handle on a `drag serve` child process: the index, pdf.js and the native canvas
 * stay out of the extension host. Started on first use with VS Code's own runtime
 * (child_process.fork), restarted if it dies, requests correlated by id and timed out.
 */
export class SearchService implements vscode.Disposable {
  private child: ChildProcess | null = null;
  private ready: Promise<{ pages: number }> | null = null;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();

  constructor(
    private readonly cliPath: string,
    readonly paths: CorpusPaths,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  start(): Promise<{ pages: number }> {
    if (this.ready) return this.ready;
    this.ready = new Promise((resolve, reject) => {
      const args = [
        'serve',
        '--ocr',
        this.paths.ocrFile,
        '--pdf-dir',
        this.paths.pdfDir,
        '--cache-dir',
        this.paths.cacheDir,
      ];
      this.log.info(`starting ${path.basename(this.cliPath)} ${args.join(' ')}`);
      const child = fork(this.cliPath, args, {
        stdio: ['pipe', 'pipe', 'pipe', 'ipc'],
        env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      });
      this.child = child;
      child.stderr?.on('data', (d: Buffer) => this.log.warn(`[drag serve] ${d.toString().trimEnd()}`));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let reply: ServeReply;
        try {
          reply = ServeReply.parse(JSON.parse(line));
        } catch {
          this.log.warn(`[drag serve] unexpected output: ${line.slice(0, 200)}`);
          return;
        }
        if ('event' in reply) {
          if (reply.event === 'ready') resolve({ pages: reply.pages });
          else if (reply.event === 'fatal') reject(new Error(reply.error));
          else this.log.info(`[drag serve] ${reply.message}`);
          return;
        }
        const waiter = this.pending.get(reply.id);
        if (!waiter) return;
        this.pending.delete(reply.id);
        clearTimeout(waiter.timer);
        if ('error' in reply) waiter.reject(new Error(reply.error));
        else waiter.resolve(reply.result);
      });
      child.on('exit', (code) => {
        this.log.info(`drag serve exited (${code})`);
        reject(new Error(`the search process exited (${code}) before it was ready; see the DRAG Studio log`));
        for (const [, w] of this.pending) {
          clearTimeout(w.timer);
          w.reject(new Error('the search process exited'));
        }
        this.pending.clear();
        this.child = null;
        this.ready = null;
      });
    });
    return this.ready;
  }

  private async request<S extends z.ZodType>(method: string, params: unknown, schema: S): Promise<z.infer<S>> {
    await this.start();
    const child = this.child;
    if (!child?.stdin) throw new Error('the search process is not running');
    const id = this.nextId++;
    const result = await new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method} timed out after ${REQUEST_TIMEOUT_MS / 1000} s`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      child.stdin!.write(`${JSON.stringify({ id, method, params })}\n`);
    });
    return schema.parse(result);
  }

  search(query: string, topK: number) {
    return this.request('search', { query, topK }, SearchResult);
  }

  render(file: string, page: number, maxPixels: number) {
    return this.request('render', { file, page, maxPixels, format: 'jpeg' }, RenderResult);
  }

  /** Boxes of the query's words on a page (pdf.js text positions), for highlighting. */
  boxes(file: string, page: number, query: string) {
    return this.request('boxes', { file, page, query }, BoxesResult);
  }

  /** Where the first of `targets` ranks for `query` within the top `depth` (live verification). */
  rankOf(query: string, targets: Array<{ file: string; page: number }>, depth: number) {
    return this.request('rankOf', { query, targets, depth }, RankOfResult);
  }

  dispose(): void {
    this.child?.stdin?.end();
    this.child?.kill();
    this.child = null;
  }
}
