/**
 * Trajectory Inspector (webview). Everything shown is untrusted text (questions, reasoning, model
 * output, OCR) and goes through Lit bindings only, never innerHTML. Its keys, toolbar and help
 * come from INSPECTOR_ACTIONS (src/protocol/inspector.ts).
 */
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import { HostElement, pairMarks, panelStyles, vscodeApi } from '../shared/host';
import { largePage, type LargePage, pageKey } from '../shared/pages';
import { css, html, nothing, type TemplateResult } from 'lit';
import { ref } from 'lit/directives/ref.js';
import {
  actionKeys,
  HostToInspector,
  INSPECTOR_ACTIONS,
  type InspectorAction,
  type InspectorCuration,
  type InspectorStep,
  type InspectorToHost,
  type InspectorTrajectory,
  inspectorActionFor,
} from '../../src/protocol/inspector';

const send = (m: InspectorToHost) => vscodeApi.postMessage(m);

const OPERATORS = new Set(['AND', 'OR', 'NOT', 'ANDNOT', 'ANDMAYBE', 'REQUIRE']);

/** The query coloured by the query grammar (operators, phrases, fields, wildcards), as text nodes. */
function highlightQuery(q: string): TemplateResult[] {
  const out: TemplateResult[] = [];
  const re = /("[^"]*"(?:~\d+)?)|(\b(?:file|page_number|total_pages):)|(\S*[*?]\S*)|(\S+)|(\s+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(q)) !== null) {
    if (m[1]) out.push(html`<span class="q-phrase">${m[1]}</span>`);
    else if (m[2]) out.push(html`<span class="q-field">${m[2]}</span>`);
    else if (m[3]) out.push(html`<span class="q-wild">${m[3]}</span>`);
    else if (m[4]) out.push(OPERATORS.has(m[4]) ? html`<span class="q-op">${m[4]}</span>` : html`${m[4]}`);
    else out.push(html`${m[5]}`);
  }
  return out;
}

/**
 * Positions a highlight box through the CSSOM: the strict CSP forbids style attributes (which
 * Lit's styleMap writes on first render), but not element.style.
 */
function placeBox(el: Element | undefined, b: { left: number; top: number; width: number; height: number }): void {
  if (!(el instanceof HTMLElement)) return;
  el.style.left = `${(b.left * 100).toFixed(3)}%`;
  el.style.top = `${(b.top * 100).toFixed(3)}%`;
  el.style.width = `${(b.width * 100).toFixed(3)}%`;
  el.style.height = `${(b.height * 100).toFixed(3)}%`;
}

const OUTCOME: Record<InspectorTrajectory['outcome'], string> = {
  rank1: 'found at rank 1',
  lower: 'found lower',
  never: 'never found',
  errored: 'errored',
};

class DragInspectorApp extends HostElement {
  static override properties = {
    t: { state: true },
    curation: { state: true },
    selected: { state: true },
    thumbs: { state: true },
    large: { state: true },
    help: { state: true },
    notice: { state: true },
  };

  t: InspectorTrajectory | null = null;
  curation: InspectorCuration | null = null;
  selected = 0;
  thumbs: Record<string, string> = {};
  large: (LargePage & { boxes: Array<{ left: number; top: number; width: number; height: number }> }) | null = null;
  help = false;
  notice: { message: string; level: string } | null = null;
  private requestId = 0;

  static override styles = [
    panelStyles,
    pairMarks,
    css`
      :host {
        padding: 12px 16px 40px;
      }
      h1 {
        font-size: 1.15em;
        margin: 0 0 6px;
        line-height: 1.4;
        white-space: pre-wrap;
        word-break: break-word;
      }
      .meta,
      .gt {
        color: var(--vscode-descriptionForeground);
        display: flex;
        gap: 10px;
        flex-wrap: wrap;
        align-items: center;
        margin: 4px 0;
      }
      .badge {
        padding: 1px 8px;
        border-radius: 10px;
        font-size: 0.85em;
        border: 1px solid var(--vscode-panel-border);
      }
      .rank1 {
        color: var(--vscode-testing-iconPassed);
        border-color: var(--vscode-testing-iconPassed);
      }
      .lower {
        color: var(--vscode-charts-yellow);
        border-color: var(--vscode-charts-yellow);
      }
      .never,
      .errored {
        color: var(--vscode-testing-iconFailed);
        border-color: var(--vscode-testing-iconFailed);
      }
      .accepted {
        background: var(--vscode-testing-iconPassed);
        color: var(--vscode-editor-background);
      }
      .rejected {
        background: var(--vscode-testing-iconFailed);
        color: var(--vscode-editor-background);
      }
      .step {
        border: 1px solid var(--vscode-panel-border);
        border-radius: 4px;
        padding: 8px 10px;
        margin: 10px 0;
      }
      .step[aria-current='true'] {
        outline: 2px solid var(--vscode-focusBorder);
      }
      .step h2 {
        font-size: 1em;
        margin: 0;
        display: flex;
        gap: 8px;
        align-items: center;
        flex-wrap: wrap;
      }
      .query {
        font-family: var(--vscode-editor-font-family);
        background: var(--vscode-textCodeBlock-background);
        padding: 1px 6px;
        border-radius: 3px;
        white-space: pre-wrap;
        word-break: break-word;
      }
      .q-op {
        color: var(--vscode-debugTokenExpression-name, #c586c0);
        font-weight: 600;
      }
      .q-phrase {
        color: var(--vscode-debugTokenExpression-string, #ce9178);
      }
      .q-field {
        color: var(--vscode-debugTokenExpression-value, #4fc1ff);
      }
      .q-wild {
        color: var(--vscode-charts-orange);
      }
      details {
        margin: 6px 0;
        color: var(--vscode-descriptionForeground);
        white-space: pre-wrap;
        word-break: break-word;
      }
      .results {
        display: flex;
        gap: 10px;
        flex-wrap: wrap;
        margin-top: 6px;
      }
      figure {
        margin: 0;
        width: 110px;
        cursor: pointer;
        text-align: center;
        font-size: 0.8em;
        color: var(--vscode-descriptionForeground);
      }
      figure .img {
        width: 110px;
        height: 142px;
        display: flex;
        align-items: center;
        justify-content: center;
        background: var(--vscode-editorWidget-background);
        border: 2px solid transparent;
      }
      figure.gt .img {
        border-color: var(--vscode-testing-iconPassed);
      }
      figure img {
        max-width: 106px;
        max-height: 138px;
      }
      figcaption {
        margin-top: 2px;
        overflow-wrap: anywhere;
      }
      .answer {
        border-top: 1px solid var(--vscode-panel-border);
        margin-top: 14px;
        padding-top: 8px;
      }
      .answer li {
        white-space: pre-wrap;
        word-break: break-word;
      }
      .overlay {
        position: fixed;
        inset: 0;
        background: rgba(0, 0, 0, 0.6);
        display: flex;
        align-items: flex-start;
        justify-content: center;
        overflow: auto;
        padding: 20px;
        z-index: 10;
      }
      .page {
        position: relative;
        background: white;
      }
      .page img {
        display: block;
        max-width: 90vw;
        height: auto;
      }
      .box {
        position: absolute;
        background: rgba(255, 213, 0, 0.35);
        outline: 1px solid rgba(230, 160, 0, 0.9);
      }
      .overlay .bar {
        position: fixed;
        top: 8px;
        right: 24px;
        color: white;
      }
      .help {
        background: var(--vscode-editorWidget-background);
        color: var(--vscode-foreground);
        padding: 16px 24px;
        border: 1px solid var(--vscode-panel-border);
        margin-top: 10vh;
      }
      .help kbd {
        font-family: var(--vscode-editor-font-family);
        border: 1px solid var(--vscode-panel-border);
        padding: 0 5px;
        border-radius: 3px;
      }
      .notice {
        position: fixed;
        bottom: 8px;
        left: 16px;
        right: 16px;
        padding: 6px 10px;
        border-radius: 4px;
        background: var(--vscode-editorWidget-background);
        border: 1px solid var(--vscode-panel-border);
      }
      .notice.error {
        border-color: var(--vscode-errorForeground);
        color: var(--vscode-errorForeground);
      }
      .notice.warning {
        border-color: var(--vscode-charts-yellow);
      }
      .toolbar {
        display: flex;
        gap: 6px;
        flex-wrap: wrap;
        margin: 8px 0;
      }
    `,
  ];

  protected override onMessage = (event: MessageEvent): void => {
    const parsed = HostToInspector.safeParse(event.data);
    if (!parsed.success) return;
    const msg = parsed.data;
    switch (msg.type) {
      case 'trajectory':
        this.t = msg.trajectory;
        this.curation = msg.curation;
        this.selected = 0;
        this.thumbs = {};
        this.large = null;
        this.notice = null;
        for (const s of msg.trajectory.steps)
          for (const r of s.results)
            if (r.hasPdf)
              send({ type: 'thumbnail', requestId: ++this.requestId, page: { file: r.file, page: r.page } });
        break;
      case 'curation':
        if (this.t?.id === msg.trajectoryId) this.curation = msg.curation;
        break;
      case 'image': {
        if (msg.large) this.large = { ...largePage(msg), boxes: msg.boxes };
        else this.thumbs = { ...this.thumbs, [pageKey(msg.page)]: msg.uri };
        break;
      }
      case 'notice':
        this.notice = { message: msg.message, level: msg.level };
        setTimeout(() => {
          if (this.notice?.message === msg.message) this.notice = null;
        }, 6000);
        break;
      default: {
        const never: never = msg;
        void never;
      }
    }
  };

  private get step(): InspectorStep | undefined {
    return this.t?.steps[this.selected];
  }

  private select(i: number): void {
    if (!this.t) return;
    this.selected = Math.max(0, Math.min(this.t.steps.length - 1, i));
    void this.updateComplete.then(() =>
      this.renderRoot.querySelector(`[data-step-index="${this.selected}"]`)?.scrollIntoView({ block: 'nearest' }),
    );
  }

  private openPage(file: string, page: number, query: string | null): void {
    send({ type: 'openPage', requestId: ++this.requestId, page: { file, page }, query: query ?? '' });
  }

  protected override onKey = (e: KeyboardEvent): void => {
    // Keys typed into a field are text, not shortcuts.
    if (e.composedPath().some((el) => el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement)) return;
    const action = inspectorActionFor(e, this.settings);
    if (!action || (action.id !== 'close' && !this.t)) return;
    this.run(action.id);
    e.preventDefault();
  };

  /** Runs an action of INSPECTOR_ACTIONS, from its key or its button. */
  private run(id: InspectorAction['id']): void {
    const step = this.step;
    switch (id) {
      case 'next':
        this.select(this.selected + 1);
        return;
      case 'previous':
        this.select(this.selected - 1);
        return;
      case 'open': {
        const r = step?.results.find((x) => x.isGt) ?? step?.results[0];
        if (r?.hasPdf) this.openPage(r.file, r.page, step?.query ?? null);
        return;
      }
      case 'accept':
      case 'reject':
      case 'label-problem':
      case 'undo':
        send({ type: 'decide', decision: id });
        return;
      case 'chosen':
      case 'rejected':
        if (step?.query) send({ type: 'mark', step: step.step, as: id });
        return;
      case 'edit':
        if (step) send({ type: 'edit', step: step.step });
        return;
      case 'pairs':
        send({ type: 'pairs' });
        return;
      case 'help':
        this.help = !this.help;
        return;
      case 'close':
        this.large = null;
        this.help = false;
        return;
      default: {
        const never: never = id;
        void never;
      }
    }
  }

  private renderToolbar(): TemplateResult {
    const buttons = INSPECTOR_ACTIONS.filter((a) => a.button !== null);
    return html`<div class="toolbar">
      ${buttons.map((a, i) => {
        const key = actionKeys(a, this.settings)[0];
        return html`<vscode-button
          ?secondary=${i > 0}
          data-action=${a.id}
          title=${key ? `${a.help} (${key})` : a.help}
          @click=${() => this.run(a.id)}
          >${a.button}${key ? ` (${key})` : nothing}</vscode-button
        >`;
      })}
    </div>`;
  }

  private renderHelp(): TemplateResult {
    const groups = [...new Set(INSPECTOR_ACTIONS.map((a) => a.group))];
    return html`<div class="help">
      <h3>Keys</h3>
      ${groups.map(
        (g) =>
          html`<p>
            ${INSPECTOR_ACTIONS.filter((a) => a.group === g).map((a, i) => {
              const key = actionKeys(a, this.settings)[0];
              const kbd = key ? html`<kbd>${key}</kbd>` : html`<kbd>button</kbd>`;
              return html`${i > 0 ? ' · ' : nothing}${kbd} ${a.help}`;
            })}
          </p>`,
      )}
    </div>`;
  }

  private renderStep(s: InspectorStep, i: number): TemplateResult {
    const marks = this.curation?.marks;
    const rankClass = s.gtRank === 1 ? 'rank1' : s.gtRank ? 'lower' : 'never';
    const rankText = s.gtRank ? `GT rank ${s.gtRank} · score ${(s.rankScore ?? 0).toFixed(2)}` : 'GT not in results';
    const chosenText = marks?.chosenQuery ? `chosen: edited "${marks.chosenQuery}"` : 'chosen';
    return html`<section
      class="step"
      role="listitem"
      tabindex="0"
      aria-label=${`Step ${s.step}: ${s.action}${s.query !== null ? ` "${s.query}"` : ''}`}
      data-step-index=${i}
      aria-current=${i === this.selected ? 'true' : 'false'}
      @click=${() => this.select(i)}
      @focus=${() => this.select(i)}
    >
      <h2>
        <span>${s.step}. ${s.action}</span>
        ${s.query !== null ? html`<span class="query" title="query">${highlightQuery(s.query)}</span>` : nothing}
        ${s.action === 'search' ? html`<span class="badge ${rankClass}">${rankText}</span>` : nothing}
        ${marks?.chosen === s.step ? html`<span class="mark chosen">${chosenText}</span>` : nothing}
        ${marks?.rejected === s.step ? html`<span class="mark rejected">rejected</span>` : nothing}
      </h2>
      ${s.error ? html`<div class="error">⚠ ${s.error}</div>` : nothing}
      ${
        s.reasoning
          ? html`<details ?open=${i === this.selected}>
              <summary>Reasoning</summary>
              ${s.reasoning}
            </details>`
          : nothing
      }
      ${s.answer ? html`<div>Answer: ${s.answer.join(' · ')}</div>` : nothing}
      ${
        s.results.length
          ? html`<div class="results" role="list" aria-label=${`Results of step ${s.step}`}>
              ${s.results.map((r) => {
                const key = pageKey(r);
                const open = (e: Event) => {
                  e.stopPropagation();
                  if (r.hasPdf) this.openPage(r.file, r.page, s.query);
                };
                return html`<figure class=${r.isGt ? 'gt' : ''} role="listitem" @click=${open}>
                  <div
                    class="img"
                    role=${r.hasPdf ? 'button' : nothing}
                    tabindex=${r.hasPdf ? '0' : nothing}
                    aria-label=${r.hasPdf ? `Open ${r.file} page ${r.page}` : nothing}
                    @keydown=${(e: KeyboardEvent) => {
                      if (e.key === 'Enter' || e.key === ' ') open(e);
                    }}
                  >
                    ${
                      this.thumbs[key]
                        ? html`<img src=${this.thumbs[key]} alt="${r.file} page ${r.page}" />`
                        : r.hasPdf
                          ? '…'
                          : 'no PDF'
                    }
                  </div>
                  <figcaption>#${r.rank} ${r.file} p.${r.page}${r.isGt ? ' ✓ GT' : ''}</figcaption>
                </figure>`;
              })}
            </div>`
          : nothing
      }
    </section>`;
  }

  override render(): TemplateResult {
    const t = this.t;
    if (!t) return html`<p>Select a trajectory in the DRAG view.</p>`;
    const c = this.curation;
    const answers = t.answers.map((a) => a.join(' | ')).join(' / ');
    const pairs = c?.pairs.map(
      ({ chosen, rejected }) =>
        html`<span>pair: <span class="query">${chosen}</span> ≻ <span class="query">${rejected}</span></span>`,
    );
    const edits = c?.edits.map(
      ({ query, rank }) =>
        html`<span>edited: <span class="query">${query}</span> (${rank ? `rank ${rank}` : 'not found'})</span>`,
    );
    return html`
      <h1>${t.question}</h1>
      <div class="meta">
        <span class="badge ${t.outcome}">${OUTCOME[t.outcome]}</span>
        ${
          c?.status
            ? html`<span class="badge ${c.status}">${c.status}${c.reason ? `: ${c.reason}` : ''}</span>`
            : html`<span class="badge">not curated</span>`
        }
        ${c?.labelProblem ? html`<span class="badge never">label: ${c.labelProblem}</span>` : nothing}
        <span>${t.id}</span>${t.model ? html`<span>${t.model}</span>` : nothing}
        ${t.error ? html`<span class="badge errored">${t.error}</span>` : nothing}
      </div>
      <div class="gt">
        Ground truth: ${t.locations.map((l) => html`<span>${l.file} p.${l.page ?? '?'}</span>`)}
        ${t.answers.length ? html`<span>· answers: ${answers}</span>` : nothing}
      </div>
      ${this.renderToolbar()}
      ${c && (c.pairs.length || c.edits.length) ? html`<div class="meta">${pairs} ${edits}</div>` : nothing}
      <div role="list" aria-label="Steps">${t.steps.map((s, i) => this.renderStep(s, i))}</div>
      <div class="answer">
        <strong>Final answer</strong>
        ${
          t.finalAnswer?.length
            ? html`<ul>
                ${t.finalAnswer.map((a) => html`<li>${a}</li>`)}
              </ul>`
            : html`<p>(none)</p>`
        }
        <div class="meta">
          Citations:
          ${t.citations.length ? t.citations.map((x) => html`<span>${x.file} p.${x.page ?? '?'}</span>`) : '(none)'} ·
          ANLS* ${t.metrics.anls.toFixed(3)} · citation F1 page ${t.metrics.pageF1.toFixed(2)} / document
          ${t.metrics.docF1.toFixed(2)}
        </div>
      </div>
      ${
        this.large
          ? html`<div
              class="overlay"
              role="dialog"
              aria-label=${`${this.large.label} (Escape closes)`}
              @click=${() => {
                this.large = null;
              }}
            >
              <span class="bar">${this.large.label} · Esc closes</span>
              <div class="page" @click=${(e: Event) => e.stopPropagation()}>
                <img src=${this.large.uri} width=${this.large.width} alt=${this.large.label} />
                ${this.large.boxes.map((b) => html`<div class="box" ${ref((el) => placeBox(el, b))}></div>`)}
              </div>
            </div>`
          : nothing
      }
      ${
        this.help
          ? html`<div
              class="overlay"
              role="dialog"
              aria-label="Keys (Escape closes)"
              @click=${() => {
                this.help = false;
              }}
            >
              ${this.renderHelp()}
            </div>`
          : nothing
      }
      ${
        this.notice
          ? html`<div class="notice ${this.notice.level}" role="status">${this.notice.message}</div>`
          : nothing
      }
    `;
  }
}

customElements.define('drag-inspector-app', DragInspectorApp);
