/**
 * The restart policy of every helper process the extension keeps (today: `drag serve`). A helper
 * that cannot start is not restarted per request: it is "unavailable: <reason>", requests fail at
 * once with that reason, and the next start waits 1 s, then 2 s, 4 s … up to 60 s. A change to the
 * cause (the OCR file appears, Build Corpus finished) calls `restart()`, which starts it at once.
 *
 * No `vscode` here and time is passed in, so the policy is unit-tested without waiting.
 */

/** The time source, injected so tests step it by hand. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** Exponential backoff: `delay(n)` after n consecutive failures (0 when none). */
export class Backoff {
  constructor(
    readonly initialMs = 1_000,
    readonly maxMs = 60_000,
  ) {}

  delay(failures: number): number {
    if (failures <= 0) return 0;
    return Math.min(this.initialMs * 2 ** Math.min(failures - 1, 30), this.maxMs);
  }
}

export type SupervisorState =
  | { kind: 'idle' }
  | { kind: 'starting' }
  | { kind: 'running'; since: number }
  | { kind: 'unavailable'; reason: string; retryAt: number };

/** What a running helper looks like to the supervisor: something that can be stopped. */
export interface Stoppable {
  stop(): void;
}

/** Thrown (as a rejection) while the helper is unavailable: `reason` says why, once, in words. */
export class UnavailableError extends Error {
  constructor(
    readonly reason: string,
    readonly retryAt: number,
  ) {
    super(reason);
    this.name = 'UnavailableError';
  }
}

export interface SupervisorOptions {
  clock?: Clock;
  backoff?: Backoff;
  /**
   * A helper that ran at least this long before it died is restarted on the next request without
   * delay (a crash now and then, or a kill -9, costs one start); one that dies sooner counts as a
   * failure like one that never started.
   */
  stableMs?: number;
}

/**
 * Starts a helper on demand and keeps at most one. `launch` resolves once the helper is ready and
 * rejects with the reason it could not start; the helper reports its own later death through
 * `exited`.
 */
export class Supervisor<T extends Stoppable> {
  private current: SupervisorState = { kind: 'idle' };
  private helper: T | null = null;
  private pending: Promise<T> | null = null;
  /** Bumped by every restart/stop, so a start that was superseded does not overwrite newer state. */
  private generation = 0;
  private failures = 0;
  private readonly listeners = new Set<(s: SupervisorState) => void>();
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private readonly stableMs: number;
  /** How many times `launch` was called (for tests and the log). */
  starts = 0;

  constructor(
    private readonly launch: (exited: (reason: string) => void) => Promise<T>,
    options: SupervisorOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.backoff = options.backoff ?? new Backoff();
    this.stableMs = options.stableMs ?? 10_000;
  }

  get state(): SupervisorState {
    return this.current;
  }

  onState(listener: (s: SupervisorState) => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** The running helper, starting it if allowed; rejects at once with `UnavailableError` while backing off. */
  get(): Promise<T> {
    if (this.helper && this.current.kind === 'running') return Promise.resolve(this.helper);
    if (this.pending) return this.pending;
    const s = this.current;
    if (s.kind === 'unavailable' && this.clock.now() < s.retryAt)
      return Promise.reject(new UnavailableError(s.reason, s.retryAt));
    return this.startNow();
  }

  /** The cause may have changed (file appeared, corpus rebuilt, user asked): forget the backoff, start now. */
  restart(): Promise<T> {
    this.stopHelper();
    this.failures = 0;
    return this.startNow();
  }

  /** Stops the helper and forgets it; the next `get()` starts a new one. */
  stop(): void {
    this.stopHelper();
    this.set({ kind: 'idle' });
  }

  private stopHelper(): void {
    this.generation++;
    this.pending = null;
    const h = this.helper;
    this.helper = null;
    h?.stop();
  }

  private startNow(): Promise<T> {
    const generation = ++this.generation;
    this.starts++;
    this.set({ kind: 'starting' });
    let readyAt: number | null = null;
    let exitedEarly: string | null = null;
    const exited = (reason: string) => {
      if (generation !== this.generation) return; // an old helper we already stopped
      if (readyAt === null) {
        exitedEarly = reason; // `launch` settles too; the state is decided there
        return;
      }
      this.helper = null;
      const uptime = this.clock.now() - readyAt;
      if (uptime >= this.stableMs) this.failures = 0;
      this.failures++;
      // The first death after a good run restarts on the next request; repeated ones back off.
      this.unavailable(reason, this.backoff.delay(this.failures - 1));
    };
    const p = this.launch(exited).then(
      (helper) => {
        if (generation !== this.generation) {
          helper.stop(); // superseded by a restart: its callers wait for the newer one
          return this.get();
        }
        if (exitedEarly !== null) return this.failed(new Error(exitedEarly));
        this.pending = null;
        this.helper = helper;
        readyAt = this.clock.now();
        this.set({ kind: 'running', since: readyAt });
        return helper;
      },
      (err: unknown) => (generation !== this.generation ? this.get() : this.failed(err)),
    );
    this.pending = p;
    return p;
  }

  private failed(err: unknown): never {
    this.pending = null;
    this.failures++;
    const error = err instanceof Error ? err : new Error(String(err));
    this.unavailable(error.message, this.backoff.delay(this.failures));
    throw error;
  }

  private unavailable(reason: string, delayMs: number): void {
    if (delayMs === 0) this.set({ kind: 'idle' });
    else this.set({ kind: 'unavailable', reason, retryAt: this.clock.now() + delayMs });
  }

  private set(s: SupervisorState): void {
    this.current = s;
    for (const l of [...this.listeners]) l(s);
  }
}
