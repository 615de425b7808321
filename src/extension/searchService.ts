import { type ChildProcess, fork } from 'node:child_process';
import { type Stats, unwatchFile, watchFile } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import type * as vscode from 'vscode';
import type { z } from 'zod';
import {
  BoxesResult,
  RankOfResult,
  RanksOfResult,
  type RanksOfParams,
  RenderResult,
  SearchResult,
  ServeReply,
} from '../protocol/serve';
import type { CorpusPaths } from '../core/workspace/layout';
import { type Backoff, type Clock, Supervisor, type SupervisorState, systemClock } from './supervisor';

const REQUEST_TIMEOUT_MS = 60_000;

/** The part of a LogOutputChannel the service writes to (plain-Node tests pass their own). */
export type ServiceLog = Pick<vscode.LogOutputChannel, 'info' | 'warn'>;

export interface SearchServiceOptions {
  clock?: Clock;
  backoff?: Backoff;
  stableMs?: number;
  /** How often the OCR file is polled for appearing or changing (fs.watchFile also sees a missing file). */
  watchIntervalMs?: number;
}

/** One running `drag serve` child: requests correlated by id and timed out. */
class ServeProcess {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  pages = 0;
  corpusHash = '';

  constructor(readonly child: ChildProcess) {}

  request(method: string, params: unknown): Promise<unknown> {
    const stdin = this.child.stdin;
    if (!stdin || this.child.exitCode !== null) return Promise.reject(new Error('the search process is not running'));
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method} timed out after ${REQUEST_TIMEOUT_MS / 1000} s`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      stdin.write(`${JSON.stringify({ id, method, params })}\n`);
    });
  }

  settle(id: number, outcome: { result: unknown } | { error: string }): void {
    const waiter = this.pending.get(id);
    if (!waiter) return;
    this.pending.delete(id);
    clearTimeout(waiter.timer);
    if ('error' in outcome) waiter.reject(new Error(outcome.error));
    else waiter.resolve(outcome.result);
  }

  failAll(reason: string): void {
    for (const [, w] of this.pending) {
      clearTimeout(w.timer);
      w.reject(new Error(reason));
    }
    this.pending.clear();
  }

  /** Set when we stopped it (restart, dispose): its exit is then no news. */
  stopping = false;

  stop(): void {
    this.stopping = true;
    this.child.stdin?.end();
    this.child.kill();
  }
}

/**
 * The extension's handle on a `drag serve` child process: the index, pdf.js and the native canvas
 * stay out of the extension host. Started on first use with VS Code's own runtime
 * (child_process.fork) under a `Supervisor`: a child that cannot start makes the service
 * "unavailable: <reason>" and requests fail at once until the backoff allows a new start or the
 * OCR file appears or changes (watched) or `restart()` is called (after Build Corpus).
 */
export class SearchService implements vscode.Disposable {
  private readonly supervisor: Supervisor<ServeProcess>;
  private current: ServeProcess | null = null;
  private readonly noticeListeners = new Set<(message: string) => void>();
  private readonly watchListener: (curr: Stats, prev: Stats) => void;

  constructor(
    private readonly cliPath: string,
    readonly paths: CorpusPaths,
    private readonly log: ServiceLog,
    options: SearchServiceOptions = {},
  ) {
    const clock = options.clock ?? systemClock;
    this.supervisor = new Supervisor((exited) => this.launch(exited), { ...options, clock });
    this.supervisor.onState((s) => {
      if (s.kind === 'unavailable')
        this.log.warn(
          `drag serve unavailable: ${s.reason} (next start in ${Math.round((s.retryAt - clock.now()) / 1000)} s, ` +
            'or at once when the OCR file changes)',
        );
    });
    // Compared with what this listener saw last, not with `prev`: after a file was removed and put
    // back, Node passes the stat from before the removal as `prev`, equal to the new one.
    let seen: string | null = null;
    this.watchListener = (curr, prev) => {
      const key = (st: Stats) => `${st.mtimeMs}:${st.size}:${st.ino}`;
      seen ??= key(prev);
      if (key(curr) === seen) return;
      seen = key(curr);
      // A new or changed corpus is the cause most failures wait for; a running child has a stale index.
      // Nobody asked for the service yet: the first request starts it with the new file anyway.
      if (this.supervisor.starts === 0) return;
      this.log.info(
        `${path.basename(this.paths.ocrFile)} ${curr.mtimeMs === 0 ? 'was removed' : 'changed'}: restarting drag serve`,
      );
      this.restart();
    };
    watchFile(
      this.paths.ocrFile,
      { interval: options.watchIntervalMs ?? 2_000, persistent: false },
      this.watchListener,
    );
  }

  /** idle, starting, running, or unavailable with a reason. */
  get state(): SupervisorState {
    return this.supervisor.state;
  }

  /** How many `drag serve` processes this service started. */
  get starts(): number {
    return this.supervisor.starts;
  }

  /** The running child's process id (tests inject faults with it). */
  get pid(): number | undefined {
    return this.supervisor.state.kind === 'running' ? this.current?.child.pid : undefined;
  }

  onState(listener: (s: SupervisorState) => void): { dispose(): void } {
    return this.supervisor.onState(listener);
  }

  /** Things to tell the person once (an unreadable index cache that was rebuilt, skipped OCR lines). */
  onNotice(listener: (message: string) => void): { dispose(): void } {
    this.noticeListeners.add(listener);
    return { dispose: () => this.noticeListeners.delete(listener) };
  }

  /** Starts `drag serve` now, forgetting any backoff (Build Corpus calls this when it finishes). */
  restart(): void {
    this.supervisor.restart().catch(() => undefined); // the state says why it failed
  }

  /** The running child's page count and corpus hash, starting it if the backoff allows. */
  start(): Promise<{ pages: number; corpusHash: string }> {
    return this.supervisor.get().then((p) => ({ pages: p.pages, corpusHash: p.corpusHash }));
  }

  private launch(exited: (reason: string) => void): Promise<ServeProcess> {
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
    const proc = new ServeProcess(child);
    return new Promise<ServeProcess>((resolve, reject) => {
      let ready = false;
      let fatal: string | null = null;
      // Before ready, stderr is kept for the reason (one log line per failed start, not a stream).
      let lastStderr = '';
      child.stderr?.on('data', (d: Buffer) => {
        const text = d.toString().trimEnd();
        if (ready) this.log.warn(`[drag serve] ${text}`);
        else if (text)
          lastStderr = text
            .split('\n')
            .at(-1)!
            .replace(/^drag serve: /, '');
      });
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let reply: ServeReply;
        try {
          reply = ServeReply.parse(JSON.parse(line));
        } catch {
          this.log.warn(`[drag serve] unexpected output: ${line.slice(0, 200)}`);
          return;
        }
        if (!('event' in reply)) return proc.settle(reply.id, reply);
        if (reply.event === 'ready') {
          ready = true;
          proc.pages = reply.pages;
          proc.corpusHash = reply.corpusHash ?? '';
          this.current = proc;
          this.log.info(`drag serve ready: ${reply.pages} pages (index from ${reply.source}, ${reply.ms} ms)`);
          if (reply.notice) {
            this.log.warn(`drag serve: ${reply.notice}`);
            for (const l of [...this.noticeListeners]) l(reply.notice);
          }
          resolve(proc);
        } else if (reply.event === 'fatal') fatal = reply.error;
        else this.log.info(`[drag serve] ${reply.message}`);
      });
      child.on('error', (err) => {
        if (!ready) reject(new Error(`cannot start the search process: ${err.message}`));
      });
      child.on('exit', (code, signal) => {
        const how = signal ? `was killed (${signal})` : `exited (${code})`;
        const reason = fatal ?? (lastStderr || `the search process ${how}`);
        proc.failAll(`the search process ${how}`);
        if (proc.stopping) return;
        if (ready) {
          this.log.warn(`drag serve ${how}; it restarts on the next request`);
          exited(`the search process ${how}`);
        } else reject(new Error(reason));
      });
    });
  }

  private async request<S extends z.ZodType>(method: string, params: unknown, schema: S): Promise<z.infer<S>> {
    const proc = await this.supervisor.get();
    return schema.parse(await proc.request(method, params));
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

  /** Many `rankOf` in one round trip: one rank (or null) per item, in order. */
  ranksOf(items: RanksOfParams['items'], depth: number) {
    return this.request('ranksOf', { items, depth }, RanksOfResult);
  }

  dispose(): void {
    unwatchFile(this.paths.ocrFile, this.watchListener);
    this.supervisor.stop();
  }
}
