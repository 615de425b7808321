/**
 * Evaluation Comparison (webview): the table, charts drawn as SVG with Lit (no chart library, no
 * inline styles: the CSP forbids them), and the per-question lists. Labels and questions are text.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import { HostElement, panelStyles, vscodeApi } from '../shared/host';
import { css, html, nothing, svg, type TemplateResult } from 'lit';
import { type CompareToHost, HostToCompare } from '../../src/protocol/compare';

const send = (m: CompareToHost) => vscodeApi.postMessage(m);

type Data = Extract<HostToCompare, { type: 'comparison' }>;
const f3 = (x: number | null) => (x === null ? '–' : x.toFixed(3));

/** Grouped bars (A grey, B blue) for labelled series. */
function bars(title: string, labels: string[], a: number[], b: number[], percent: boolean): TemplateResult {
  const max = Math.max(1e-9, ...a, ...b);
  const w = 36;
  const gap = 24;
  const width = 30 + labels.length * (2 * w + gap);
  // The baseline, so a bar of 0 reads as zero rather than as a missing bar.
  return html`<figure>
    <figcaption>${title}</figcaption>
    <svg width=${width} height="170" role="img" aria-label=${title}>
      <line class="axis" x1="14" y1="140.5" x2=${width - 4} y2="140.5"></line>
      ${labels.map((l, i) => {
        const x = 20 + i * (2 * w + gap);
        const ha = (130 * a[i]) / max;
        const hb = (130 * b[i]) / max;
        const t = (v: number) => (percent ? `${(100 * v).toFixed(0)}%` : String(v));
        return svg`<g><rect class="a" x=${x} y=${140 - ha} width=${w} height=${ha}></rect><rect class="b"
          x=${x + w + 2} y=${140 - hb} width=${w} height=${hb}></rect>
        <text x=${x + w} y="158" text-anchor="middle">${l}</text><text class="v" x=${x + w / 2} y=${136 - ha}
          text-anchor="middle">${t(a[i])}</text><text class="v" x=${x + w * 1.5 + 2} y=${136 - hb}
          text-anchor="middle">${t(b[i])}</text></g>`;
      })}
    </svg>
  </figure>`;
}

/** Per-question best rank, A on x and B on y ("never" at the far end); below the diagonal = B better. */
/** {@link bars} of a distribution: how many questions fall in each bucket, in each run. */
const counts = (title: string, d: { labels: string[]; a: number[]; b: number[] }) =>
  bars(title, d.labels, d.a, d.b, false);

function scatter(
  points: Array<{ id: string; a: number | null; b: number | null }>,
  runs: [string, string],
): TemplateResult {
  const maxRank = Math.max(3, ...points.flatMap((p) => [p.a ?? 0, p.b ?? 0]));
  const pos = (r: number | null) => 20 + ((r ?? maxRank + 1) - 1) * (160 / maxRank);
  const counts = new Map<string, number>();
  for (const p of points) counts.set(`${p.a}|${p.b}`, (counts.get(`${p.a}|${p.b}`) ?? 0) + 1);
  return html`<figure>
    <figcaption>Best rank per question (x: ${runs[0]}, y: ${runs[1]}; "never" at the end)</figcaption>
    <svg width="220" height="220" role="img" aria-label="best rank scatter">
      <line class="axis" x1="20" y1="200" x2="200" y2="200"></line>
      <line class="axis" x1="20" y1="20" x2="20" y2="200"></line>
      <line class="diag" x1="20" y1="200" x2="200" y2="20"></line>
      ${[...counts].map(([k, n]) => {
        const [a, b] = k.split('|').map((x) => (x === 'null' ? null : Number(x)));
        return svg`<circle class="pt" cx=${pos(a)} cy=${220 - pos(b)} r=${3 + Math.sqrt(n) * 2}><title
          >${n} question(s): ${a ?? 'never'} → ${b ?? 'never'}</title></circle>`;
      })}
    </svg>
  </figure>`;
}

class DragCompareApp extends HostElement {
  static override properties = { data: { state: true }, notice: { state: true } };
  data: Data | null = null;
  notice = '';

  static override styles = [
    panelStyles,
    css`
      .meta {
        margin-bottom: 8px;
      }
      table {
        border-collapse: collapse;
        margin: 8px 0 16px;
      }
      td,
      th {
        padding: 3px 10px;
        border-bottom: 1px solid var(--vscode-panel-border);
        text-align: right;
      }
      td:first-child,
      th:first-child {
        text-align: left;
      }
      .up {
        color: var(--vscode-testing-iconPassed);
      }
      .down {
        color: var(--vscode-testing-iconFailed);
      }
      .sig {
        font-weight: 600;
      }
      .charts {
        display: flex;
        flex-wrap: wrap;
        gap: 24px;
      }
      figure {
        margin: 0;
      }
      figcaption {
        color: var(--vscode-descriptionForeground);
        margin-bottom: 4px;
      }
      rect.a {
        fill: var(--vscode-descriptionForeground);
      }
      rect.b {
        fill: var(--vscode-charts-blue);
      }
      text {
        fill: var(--vscode-foreground);
        font-size: 11px;
      }
      text.v {
        font-size: 10px;
      }
      line.axis {
        stroke: var(--vscode-descriptionForeground);
      }
      line.diag {
        stroke: var(--vscode-panel-border);
        stroke-dasharray: 4 3;
      }
      circle.pt {
        fill: var(--vscode-charts-blue);
        fill-opacity: 0.7;
      }
      .lists {
        display: grid;
        grid-template-columns: repeat(3, minmax(0, 1fr));
        gap: 16px;
        margin-top: 16px;
      }
      .lists ul {
        padding-left: 18px;
        margin: 4px 0;
      }
      .lists li {
        cursor: pointer;
        color: var(--vscode-textLink-foreground);
        overflow-wrap: anywhere;
      }
      .toolbar {
        display: flex;
        gap: 8px;
        margin: 8px 0;
      }
      .legend .a,
      .legend .b {
        display: inline-block;
        width: 10px;
        height: 10px;
        margin: 0 4px 0 10px;
      }
      .legend .a {
        background: var(--vscode-descriptionForeground);
      }
      .legend .b {
        background: var(--vscode-charts-blue);
      }
    `,
  ];

  protected override onMessage = (event: MessageEvent): void => {
    const parsed = HostToCompare.safeParse(event.data);
    if (!parsed.success) return;
    if (parsed.data.type === 'comparison') this.data = parsed.data;
    else this.notice = parsed.data.message;
  };

  private list(title: string, items: Data['questions']['wins']): TemplateResult {
    return html`<div>
      <strong>${title} (${items.length})</strong>
      <ul>
        ${items.map(
          (q) =>
            html`<li
              role="button"
              tabindex="0"
              title=${q.id}
              aria-label=${`Open both trajectories of: ${q.question}`}
              @click=${() => send({ type: 'openQuestion', id: q.id })}
              @keydown=${(e: KeyboardEvent) => {
                if (e.key === 'Enter') send({ type: 'openQuestion', id: q.id });
              }}
            >
              ${q.question}
            </li>`,
        )}
      </ul>
    </div>`;
  }

  override render(): TemplateResult {
    const d = this.data;
    if (!d) return html`<p>Loading…</p>`;
    const [a, b] = d.runs;
    const wins = this.list(`Wins for ${b}`, d.questions.wins);
    const losses = this.list(`Losses for ${b}`, d.questions.losses);
    const ties = this.list('Ties', d.questions.ties);
    return html`
      <h1>${b} vs ${a}</h1>
      <div class="meta">
        ${d.paired} questions in both runs · Δ = ${b} − ${a} · 95% CI: paired bootstrap over questions · p: exact
        McNemar <span class="legend"><span class="a"></span>${a}<span class="b"></span>${b}</span>
      </div>
      <div class="toolbar">
        <vscode-button @click=${() => send({ type: 'export', format: 'markdown' })}>Export Markdown</vscode-button
        ><vscode-button secondary @click=${() => send({ type: 'export', format: 'html' })}
          >Export HTML report</vscode-button
        >
      </div>
      <table aria-label="metrics">
        <thead>
          <tr>
            <th>metric</th>
            <th>${a}</th>
            <th>${b}</th>
            <th>Δ</th>
            <th>Δ%</th>
            <th>95% CI of Δ</th>
            <th>p</th>
          </tr>
        </thead>
        <tbody>
          ${d.metrics.map((m) => {
            const good = m.delta !== null && m.delta !== 0 && m.delta > 0 === m.higherIsBetter;
            const significant = m.ci95 !== null && (m.ci95[0] > 0 || m.ci95[1] < 0);
            return html`<tr data-metric=${m.key}>
              <td>${m.label}</td>
              <td>${f3(m.a)}</td>
              <td>${f3(m.b)}</td>
              <td class="${m.delta === null || m.delta === 0 ? '' : good ? 'up' : 'down'} ${significant ? 'sig' : ''}">
                ${m.delta === null ? '–' : `${m.delta >= 0 ? '+' : ''}${m.delta.toFixed(3)}`}
              </td>
              <td>${m.relative === null ? '–' : `${m.relative >= 0 ? '+' : ''}${(100 * m.relative).toFixed(1)}%`}</td>
              <td>${m.ci95 ? `[${m.ci95[0].toFixed(3)}, ${m.ci95[1].toFixed(3)}]` : '–'}</td>
              <td>${m.p === null ? '–' : m.p.toFixed(4)}</td>
            </tr>`;
          })}
        </tbody>
      </table>
      ${
        d.charts
          ? html`<div class="charts">
              ${bars(
                'Hit@K',
                d.charts.hitAtK.map((h) => `Hit@${h.k}`),
                d.charts.hitAtK.map((h) => h.a),
                d.charts.hitAtK.map((h) => h.b),
                true,
              )}
              ${counts('First-search ground-truth rank (questions)', d.charts.rankDistribution)}
              ${counts('Iterations to success (questions)', d.charts.iterations)} ${scatter(d.charts.scatter, d.runs)}
            </div>`
          : html`<p class="meta">
              No per-question data (a DRAG summary file): no charts, intervals or question lists.
            </p>`
      }
      <div class="lists">${wins}${losses}${ties}</div>
      ${this.notice ? html`<p class="meta" role="status">${this.notice}</p>` : nothing}
    `;
  }
}

customElements.define('drag-compare-app', DragCompareApp);
