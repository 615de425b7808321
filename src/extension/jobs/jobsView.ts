import * as vscode from 'vscode';
import { FINAL_STATES, type JobRecord, jobStatus, listJobs } from '../../core/jobs/engine';
import { Backoff, type Clock, systemClock } from '../supervisor';
import { isTrusted, onTrustGranted } from '../trust';

/** 45 s, 12 min, 3 h 05 min. */
export function formatElapsed(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

const ICONS: Record<string, [string, string?]> = {
  queued: ['clock'],
  running: ['sync~spin', 'charts.blue'],
  succeeded: ['pass', 'testing.iconPassed'],
  failed: ['error', 'testing.iconFailed'],
  cancelled: ['circle-slash', 'disabledForeground'],
};

/** A jobs/<id>/job.json that cannot be read: a row of its own that says why, instead of no row. */
export class UnreadableJob {
  constructor(readonly problem: string) {}
}

export type JobRow = JobRecord | UnreadableJob;

/**
 * The Jobs view: every jobs/<id>/job.json, newest first, with state, host and progress. Jobs that
 * are not finished are polled (one short ssh command each) while the view is visible; a job whose
 * host does not answer is polled again after a growing pause (one interval, doubling to 5 min),
 * with one log line, not one per poll. In Restricted Mode it shows each job's last recorded state,
 * marked as not refreshed, and polls nothing (a job.json can name any host); trusting the folder
 * starts polling without a reload.
 */
export class JobsProvider implements vscode.TreeDataProvider<JobRow>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly watcher: vscode.FileSystemWatcher;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private visible = false;
  private jobs: JobRecord[] = [];
  private readonly trustGranted: vscode.Disposable;
  /** Jobs whose last poll failed: how many times in a row, and when to try again. */
  private readonly unreachable = new Map<string, { failures: number; retryAt: number; reason: string }>();
  private readonly backoff: Backoff;

  constructor(
    private readonly workspace: string,
    private readonly log: Pick<vscode.LogOutputChannel, 'warn' | 'info'>,
    private readonly intervalMs = 5000,
    private readonly clock: Clock = systemClock,
  ) {
    this.backoff = new Backoff(intervalMs, 5 * 60_000);
    this.watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(workspace, 'jobs/*/job.json'));
    for (const e of [this.watcher.onDidCreate, this.watcher.onDidChange, this.watcher.onDidDelete])
      e(() => this.changed.fire());
    this.trustGranted = onTrustGranted(() => {
      this.changed.fire();
      this.setVisible(this.visible);
    });
  }

  /** Starts or stops polling (the extension ties this to the view's visibility); never untrusted. */
  setVisible(visible: boolean): void {
    this.visible = visible;
    if (visible && !this.timer && isTrusted()) {
      this.timer = setInterval(() => void this.poll(), this.intervalMs);
      void this.poll();
    } else if (!visible && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  async poll(): Promise<void> {
    if (this.polling || !isTrusted()) return;
    this.polling = true;
    try {
      for (const j of this.jobs.length ? this.jobs : (await listJobs(this.workspace)).jobs) {
        if (j.last && FINAL_STATES.has(j.last.state)) continue;
        const down = this.unreachable.get(j.id);
        if (down && this.clock.now() < down.retryAt) continue;
        try {
          await jobStatus(this.workspace, j.id);
          if (down) {
            this.unreachable.delete(j.id);
            this.log.info(`job ${j.id}: its host answers again`);
            this.changed.fire();
          }
        } catch (err) {
          const failures = (down?.failures ?? 0) + 1;
          const reason = (err as Error).message;
          this.unreachable.set(j.id, { failures, retryAt: this.clock.now() + this.backoff.delay(failures), reason });
          if (failures === 1) {
            this.log.warn(`job ${j.id}: ${reason} (retrying less and less often, up to every 5 min)`);
            this.changed.fire();
          }
        }
      }
    } finally {
      this.polling = false;
    }
  }

  async getChildren(item?: JobRow): Promise<JobRow[]> {
    if (item) return [];
    const { jobs, errors } = await listJobs(this.workspace);
    this.jobs = jobs;
    return [...jobs, ...errors.map((e) => new UnreadableJob(e))];
  }

  getTreeItem(j: JobRow): vscode.TreeItem {
    if (j instanceof UnreadableJob) {
      const t = new vscode.TreeItem('unreadable job.json', vscode.TreeItemCollapsibleState.None);
      t.description = j.problem;
      t.tooltip = j.problem;
      t.iconPath = new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'));
      t.contextValue = 'drag.job.unreadable';
      return t;
    }
    const state = j.last?.state ?? 'queued';
    const t = new vscode.TreeItem(j.name, vscode.TreeItemCollapsibleState.None);
    const p = j.last?.progress;
    const progress =
      p && typeof p.current_steps === 'number'
        ? ` · step ${p.current_steps}/${String(p.total_steps ?? '?')}` +
          `${typeof p.loss === 'number' ? ` · loss ${p.loss.toFixed(3)}` : ''}`
        : '';
    const started = j.last?.startedAt ? Date.parse(j.last.startedAt) : NaN;
    // A cancelled job never wrote finished_at: the first check that saw it final is close enough.
    const ended = j.last?.finishedAt
      ? Date.parse(j.last.finishedAt)
      : FINAL_STATES.has(state)
        ? Date.parse(j.last?.checkedAt ?? '')
        : Date.now();
    const elapsed = Number.isFinite(started) && Number.isFinite(ended) ? ` · ${formatElapsed(ended - started)}` : '';
    // A failed job says why in words ("environment check failed on node n1: torch is not importable"),
    // unless the reason is only its exit code, which the state already shows.
    const reason =
      j.last?.reason && state === 'failed' && !/^exit code /.test(j.last.reason) ? `: ${j.last.reason}` : '';
    const exit = j.last?.exitCode != null && state !== 'succeeded' ? ` (${j.last.exitCode})` : '';
    t.description = `${state}${reason}${exit}${elapsed} · ${j.host}${progress}`;
    t.tooltip = new vscode.MarkdownString(undefined, false);
    t.tooltip.appendText(
      `${j.id}\n${j.hostConfig.launcher ?? 'ssh'} ${j.host}: ${j.remoteDir}\n` +
        `${j.command.join(' ')}\n${j.last?.reason ?? ''}`,
    );
    const [icon, color] = ICONS[state] ?? ['circle-outline'];
    t.iconPath = new vscode.ThemeIcon(icon, color ? new vscode.ThemeColor(color) : undefined);
    const cleaned = typeof j.meta?.remoteCleanedAt === 'string';
    if (cleaned) t.description += ' · remote files deleted';
    const down = this.unreachable.get(j.id);
    if (down && isTrusted() && !FINAL_STATES.has(state)) {
      t.description += ' · not refreshed: host not answering';
      t.tooltip.appendText(`\nNot refreshed: ${down.reason}`);
    }
    if (!isTrusted() && !FINAL_STATES.has(state)) {
      t.description += ' · not refreshed (Restricted Mode)';
      t.tooltip.appendText(
        '\nNot refreshed: this folder is in Restricted Mode; trust it to check the job on its host.',
      );
    }
    // drag.job.final.train.sft: a succeeded SFT job whose adapter is still on the host ("Continue with DPO…")
    const sft = j.meta?.kind === 'train' && j.meta?.task === 'sft' && state === 'succeeded' && !cleaned ? '.sft' : '';
    const train = j.meta?.kind === 'train' && !cleaned ? '.train' : '';
    t.contextValue = `drag.job.${FINAL_STATES.has(state) ? 'final' : 'live'}${train}${sft}${cleaned ? '.cleaned' : ''}`;
    t.id = `job:${j.id}`;
    t.command = { command: 'drag.openTrainingMonitor', title: 'Open Training Monitor', arguments: [j] };
    return t;
  }

  refresh(): void {
    this.changed.fire();
  }

  dispose(): void {
    if (this.timer) clearInterval(this.timer);
    this.trustGranted.dispose();
    this.watcher.dispose();
    this.changed.dispose();
  }
}
