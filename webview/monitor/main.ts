/**
 * Training Monitor (webview): state, progress with ETA, loss / eval-loss and learning-rate curves
 * drawn as SVG with Lit (the CSP forbids inline styles, so sizes are SVG attributes), GPU use, the
 * log's tail as text (never HTML), and buttons to cancel and fetch the adapter.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import { HostElement, panelStyles, vscodeApi } from '../shared/host';
import { css, html, nothing, svg, type TemplateResult } from 'lit';
import { HostToMonitor, type MonitorToHost } from '../../src/protocol/monitor';

const send = (m: MonitorToHost) => vscodeApi.postMessage(m);
type Snapshot = Extract<HostToMonitor, { type: 'snapshot' }>;
type Point = Snapshot['points'][number];

/** A line chart of one or two series over steps. */
function lineChart(
  title: string,
  points: Point[],
  series: Array<{ key: 'loss' | 'evalLoss' | 'lr'; cls: string; label: string }>,
): TemplateResult {
  const W = 420;
  const H = 180;
  const pad = 36;
  const values = series.flatMap((s) => points.map((p) => p[s.key]).filter((v): v is number => v !== null));
  if (points.length === 0 || values.length === 0)
    return html`<figure>
      <figcaption>${title}</figcaption>
      <p class="meta">no points yet</p>
    </figure>`;
  const maxStep = Math.max(1, ...points.map((p) => p.step));
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const span = hi - lo || Math.abs(hi) || 1;
  const x = (step: number) => pad + ((W - pad - 8) * step) / maxStep;
  const y = (v: number) => H - 22 - ((H - 34) * (v - lo)) / span;
  const fmt = (v: number) => (Math.abs(v) < 0.01 ? v.toExponential(1) : v.toFixed(3));
  return html`<figure>
    <figcaption>${title} ${series.map((s) => html`<span class="key ${s.cls}">${s.label}</span>`)}</figcaption>
    <svg width=${W} height=${H} role="img" aria-label=${title}>
      <line class="axis" x1=${pad} y1=${H - 22} x2=${W - 8} y2=${H - 22}></line>
      <line class="axis" x1=${pad} y1="8" x2=${pad} y2=${H - 22}></line>
      <text x="2" y="14">${fmt(hi)}</text>
      <text x="2" y=${H - 24}>${fmt(lo)}</text>
      <text x=${W - 8} y=${H - 6} text-anchor="end">step ${maxStep}</text>
      ${series.map((s) => {
        const pts = points.filter((p) => p[s.key] !== null);
        const coords = pts.map((p) => `${x(p.step).toFixed(1)},${y(p[s.key]!).toFixed(1)}`).join(' ');
        const dots =
          pts.length < 40
            ? pts.map(
                (p) => svg`<circle class=${s.cls} cx=${x(p.step)} cy=${y(p[s.key]!)} r="2.5"><title
                  >step ${p.step}: ${p[s.key]}</title></circle>`,
              )
            : nothing;
        return svg`<polyline class=${s.cls} points=${coords}></polyline>
          ${dots}`;
      })}
    </svg>
  </figure>`;
}

class DragMonitorApp extends HostElement {
  static override properties = { data: { state: true }, notice: { state: true } };
  data: Snapshot | null = null;
  notice: { message: string; level: 'info' | 'error' } | null = null;

  static override styles = [
    panelStyles,
    css`
      .state {
        font-weight: 600;
        text-transform: uppercase;
      }
      .state.running {
        color: var(--vscode-charts-blue);
      }
      .state.succeeded {
        color: var(--vscode-testing-iconPassed);
      }
      .state.failed {
        color: var(--vscode-testing-iconFailed);
      }
      .state.cancelled,
      .state.queued {
        color: var(--vscode-descriptionForeground);
      }
      .toolbar {
        display: flex;
        gap: 8px;
        margin: 10px 0;
      }
      .charts {
        display: flex;
        flex-wrap: wrap;
        gap: 24px;
        margin: 8px 0;
      }
      figure {
        margin: 0;
      }
      figcaption {
        color: var(--vscode-descriptionForeground);
        margin-bottom: 4px;
      }
      polyline {
        fill: none;
        stroke-width: 1.8;
      }
      circle {
        stroke: none;
      }
      polyline.loss {
        stroke: var(--vscode-charts-blue);
      }
      circle.loss {
        fill: var(--vscode-charts-blue);
      }
      polyline.eval {
        stroke: var(--vscode-charts-orange);
      }
      circle.eval {
        fill: var(--vscode-charts-orange);
      }
      polyline.lr {
        stroke: var(--vscode-charts-green);
      }
      circle.lr {
        fill: var(--vscode-charts-green);
      }
      .key {
        margin-left: 10px;
      }
      .key.loss {
        color: var(--vscode-charts-blue);
      }
      .key.eval {
        color: var(--vscode-charts-orange);
      }
      .key.lr {
        color: var(--vscode-charts-green);
      }
      line.axis {
        stroke: var(--vscode-descriptionForeground);
      }
      text {
        fill: var(--vscode-descriptionForeground);
        font-size: 10px;
      }
      rect.track {
        fill: var(--vscode-input-background);
      }
      rect.bar {
        fill: var(--vscode-charts-blue);
      }
      table {
        border-collapse: collapse;
      }
      td,
      th {
        padding: 2px 10px 2px 0;
        text-align: left;
      }
      pre {
        background: var(--vscode-textCodeBlock-background);
        padding: 8px;
        max-height: 260px;
        overflow: auto;
        white-space: pre-wrap;
        overflow-wrap: anywhere;
        font-family: var(--vscode-editor-font-family);
        font-size: 12px;
      }
      .error {
        color: var(--vscode-errorForeground);
      }
    `,
  ];

  protected override onMessage = (event: MessageEvent): void => {
    const parsed = HostToMonitor.safeParse(event.data);
    if (!parsed.success) return;
    if (parsed.data.type === 'snapshot') this.data = parsed.data;
    else this.notice = { message: parsed.data.message, level: parsed.data.level };
  };

  /** Keeps the log's tail scrolled to its end, as a terminal would. */
  protected override updated(): void {
    const pre = this.renderRoot.querySelector('pre');
    if (pre) pre.scrollTop = pre.scrollHeight;
  }

  private progressBar(d: Snapshot): TemplateResult {
    const pct =
      d.progress.percentage ??
      (d.progress.step !== null && d.progress.total ? (100 * d.progress.step) / d.progress.total : null);
    if (pct === null) return html`<p class="meta">No progress yet (trainer_log.jsonl has no line).</p>`;
    const p = d.progress;
    const epoch = p.epoch !== null ? ` · epoch ${p.epoch.toFixed(2)}` : '';
    const elapsed = p.elapsed ? ` · elapsed ${p.elapsed}` : '';
    const eta = p.remaining && d.job.state === 'running' ? ` · ETA ${p.remaining}` : '';
    return html`<div class="progress">
      <svg
        width="420"
        height="12"
        role="progressbar"
        aria-valuenow=${pct.toFixed(0)}
        aria-valuemin="0"
        aria-valuemax="100"
      >
        <rect class="track" x="0" y="0" width="420" height="12" rx="3"></rect>
        <rect class="bar" x="0" y="0" width=${(4.2 * Math.min(100, pct)).toFixed(1)} height="12" rx="3"></rect>
      </svg>
      <div class="meta">
        step ${d.progress.step ?? '?'} / ${d.progress.total ?? '?'} (${pct.toFixed(1)}%)${epoch}${elapsed}${eta}
      </div>
    </div>`;
  }

  /** The last logged point's loss, eval loss and learning rate. */
  private lossLine(last: Point): TemplateResult {
    const evalLoss = last.evalLoss !== null ? ` · eval loss ${last.evalLoss}` : '';
    const lr = last.lr !== null ? ` · lr ${last.lr.toExponential(2)}` : '';
    return html`<p class="meta">loss ${last.loss ?? '–'}${evalLoss}${lr}</p>`;
  }

  override render(): TemplateResult {
    const d = this.data;
    if (!d)
      return html`<p>Loading…</p>
        ${this.notice ? html`<p class="error">${this.notice.message}</p>` : nothing}`;
    const j = d.job;
    const last = d.points.at(-1);
    const live = j.state === 'running' || j.state === 'queued';
    const slurm = j.slurmJobId ? ` (SLURM ${j.slurmJobId})` : '';
    const task = j.task ? ` · ${j.task.toUpperCase()}` : '';
    const dataset = j.dataset ? ` on ${j.dataset}` : '';
    const model = j.model ? ` · ${j.model}` : '';
    const finished = j.finishedAt ? ` · finished ${j.finishedAt.replace('T', ' ').replace('Z', '')}` : '';
    return html`
      <h1>${j.name}</h1>
      <div class="meta">
        <span class="state ${j.state}">${j.state}</span
        >${j.reason && j.state !== 'running' ? html` · ${j.reason}` : nothing} · ${j.launcher}
        ${j.host}${slurm}${task}${dataset}${model}
      </div>
      <div class="meta">
        ${j.id} · submitted ${j.submittedAt.slice(0, 19).replace('T', ' ')}${finished} · checked
        ${d.checkedAt.slice(11, 19)}
      </div>
      <div class="toolbar">
        <vscode-button ?disabled=${!live} @click=${() => send({ type: 'cancel' })}>Cancel Job</vscode-button>
        <vscode-button secondary ?disabled=${!d.canFetchAdapter} @click=${() => send({ type: 'fetchAdapter' })}
          >${d.adapterFetched ? 'Fetch Adapter Again' : 'Fetch Adapter'}</vscode-button
        >
        <vscode-button
          secondary
          ?disabled=${!d.canEvaluate}
          title="vLLM with this adapter on the host, drag eval, compared with a base evaluation"
          @click=${() => send({ type: 'evaluate' })}
          >Evaluate this Adapter</vscode-button
        >
        <vscode-button secondary @click=${() => send({ type: 'refresh' })}>Refresh</vscode-button>
      </div>
      ${this.progressBar(d)} ${last ? this.lossLine(last) : nothing}
      <div class="charts">
        ${lineChart('Loss', d.points, [
          { key: 'loss', cls: 'loss', label: 'train' },
          { key: 'evalLoss', cls: 'eval', label: 'eval' },
        ])}
        ${lineChart('Learning rate', d.points, [{ key: 'lr', cls: 'lr', label: 'lr' }])}
      </div>
      ${
        d.gpus
          ? html`<table aria-label="GPUs">
              <thead>
                <tr>
                  <th>GPU</th>
                  <th>utilisation</th>
                  <th>memory</th>
                </tr>
              </thead>
              <tbody>
                ${d.gpus.map(
                  (g) =>
                    html`<tr>
                      <td>${g.index}: ${g.name}</td>
                      <td>${g.utilization}%</td>
                      <td>${(g.memoryUsedMiB / 1024).toFixed(1)} / ${(g.memoryTotalMiB / 1024).toFixed(1)} GiB</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
          : html`<p class="meta">GPU: ${live ? 'no nvidia-smi on the host' : 'job not running'}</p>`
      }
      <p class="meta">Log (tail of job.log)</p>
      <pre aria-label="log tail">${d.logTail || '(empty)'}</pre>
      ${
        this.notice
          ? html`<p class=${this.notice.level === 'error' ? 'error' : 'meta'} role="status">${this.notice.message}</p>`
          : nothing
      }
    `;
  }
}

customElements.define('drag-monitor-app', DragMonitorApp);
