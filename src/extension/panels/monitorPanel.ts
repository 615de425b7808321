import * as vscode from 'vscode';
import { cancelJob, fetchAdapter, FINAL_STATES } from '../../core/jobs/engine';
import { monitorSnapshot } from '../../core/jobs/monitor';
import { HostToMonitor, MonitorToHost } from '../../protocol/monitor';
import { createPanel, PanelRegistry, type PanelSpec, WebviewPanelHost } from './host';

const SPEC: PanelSpec<MonitorToHost, HostToMonitor> = {
  viewType: 'drag.trainingMonitor',
  bundle: 'monitor',
  title: 'Training Monitor',
  incoming: MonitorToHost,
  outgoing: HostToMonitor,
  notice: (message) => ({ type: 'notice', level: 'error', message }),
};

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * Training Monitor: one job's state, progress with ETA, loss / eval-loss / learning-rate curves
 * from trainer_log.jsonl, GPU use from nvidia-smi on the host, the log's tail; cancel and fetch the
 * adapter. Polls every few seconds while the job runs and the panel is visible; all the remote
 * work is core's (src/core/jobs), the same as `drag jobs`.
 */
export class TrainingMonitorPanel extends WebviewPanelHost<MonitorToHost, HostToMonitor> {
  /** The open monitors, by job id. */
  static readonly open = new PanelRegistry<TrainingMonitorPanel>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  last: HostToMonitor | null = null;

  static show(
    context: vscode.ExtensionContext,
    log: vscode.LogOutputChannel,
    workspace: string,
    id: string,
    onChange: () => void,
    intervalMs = 3000,
  ): TrainingMonitorPanel {
    const existing = TrainingMonitorPanel.open.get(id);
    if (existing) {
      existing.panel.reveal();
      void existing.refresh();
      return existing;
    }
    const panel = createPanel({ ...SPEC, title: `Training: ${id}` }, vscode.ViewColumn.Active);
    return TrainingMonitorPanel.open.set(
      new TrainingMonitorPanel(panel, context, log, workspace, id, onChange, intervalMs),
      id,
    );
  }

  private constructor(
    panel: vscode.WebviewPanel,
    context: vscode.ExtensionContext,
    log: vscode.LogOutputChannel,
    private readonly workspace: string,
    readonly id: string,
    private readonly onChange: () => void,
    private readonly intervalMs: number,
  ) {
    super(panel, context, SPEC, log);
    this.remember({ jobId: id });
    this.disposables.push(panel.onDidChangeViewState(() => this.schedule()));
    this.onDidDispose(() => {
      if (this.timer) clearInterval(this.timer);
    });
  }

  private schedule(): void {
    const live = !this.last || this.last.type !== 'snapshot' || !FINAL_STATES.has(this.last.job.state);
    if (this.panel.visible && live && !this.timer) this.timer = setInterval(() => void this.refresh(), this.intervalMs);
    if ((!this.panel.visible || !live) && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  async refresh(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const snap = await monitorSnapshot(this.workspace, this.id);
      const { record, status: s } = snap;
      const p = s.progress ?? {};
      const meta = record.meta ?? {};
      const message: HostToMonitor = {
        type: 'snapshot',
        job: {
          id: record.id,
          name: record.name,
          host: record.host,
          launcher: s.launcher,
          state: s.state,
          reason: s.reason,
          exitCode: s.exitCode,
          submittedAt: s.submittedAt,
          startedAt: s.startedAt,
          finishedAt: s.finishedAt,
          slurmJobId: s.slurmJobId,
          task: str(meta.task),
          dataset: str(meta.dataset),
          model: str(meta.model),
        },
        progress: {
          step: num(p.current_steps),
          total: num(p.total_steps),
          percentage: num(p.percentage),
          epoch: num(p.epoch),
          elapsed: str(p.elapsed_time),
          remaining: str(p.remaining_time),
        },
        points: snap.points,
        gpus: snap.gpus,
        logTail: snap.logTail,
        adapterFetched: typeof meta.adapterFetched === 'string',
        canFetchAdapter: meta.kind === 'train' && s.state === 'succeeded',
        canEvaluate: meta.kind === 'train' && s.state === 'succeeded',
        checkedAt: s.checkedAt,
      };
      const changed = this.last?.type !== 'snapshot' || this.last.job.state !== s.state;
      this.last = message;
      this.postState(message);
      if (changed) this.onChange();
    } catch (err) {
      this.log.warn(`monitor ${this.id}: ${(err as Error).message}`);
      this.postState({ type: 'notice', level: 'error', message: (err as Error).message });
    } finally {
      this.busy = false;
      this.schedule();
    }
  }

  protected override async onReady(): Promise<void> {
    if (this.last) this.post(this.last);
    await this.refresh();
  }

  protected async onMessage(m: Exclude<MonitorToHost, { type: 'ready' }>): Promise<void> {
    if (m.type === 'refresh') await this.refresh();
    else if (m.type === 'cancel') await this.cancel();
    else if (m.type === 'fetchAdapter') await this.fetch();
    else if (m.type === 'evaluate') await vscode.commands.executeCommand('drag.evaluateAdapter', this.id);
    else if (m.type === 'openLog') this.log.show();
  }

  async cancel(): Promise<void> {
    const ok = await vscode.window.showWarningMessage(
      `Cancel job ${this.id}? Its processes on the host are stopped; what it wrote stays.`,
      { modal: true },
      'Cancel Job',
    );
    if (ok !== 'Cancel Job') return;
    try {
      const s = await cancelJob(this.workspace, this.id);
      this.post({ type: 'notice', level: 'info', message: `job ${s.state}` });
    } catch (err) {
      this.post({ type: 'notice', level: 'error', message: (err as Error).message });
    }
    await this.refresh();
  }

  async fetch(): Promise<string | null> {
    try {
      const target = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `DRAG: fetching the adapter of ${this.id}` },
        () => fetchAdapter(this.workspace, this.id),
      );
      this.post({
        type: 'notice',
        level: 'info',
        message: `adapter fetched into ${vscode.workspace.asRelativePath(target)}`,
      });
      await this.refresh();
      return target;
    } catch (err) {
      this.post({ type: 'notice', level: 'error', message: (err as Error).message });
      return null;
    }
  }
}
