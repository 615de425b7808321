/**
 * DPO Pair Editor (webview). Queries are untrusted model output: rendered as text only.
 * Keys: j/k (or arrows) move, c chosen, x rejected, Enter saves the pair, t tries a query,
 * 1-3 accept a proposed pair.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import { HostElement, pairMarks, panelStyles, vscodeApi } from '../shared/host';
import { css, html, nothing, type TemplateResult } from 'lit';
import { HostToPairs, type PairCandidate, type PairsToHost } from '../../src/protocol/pairs';

const send = (m: PairsToHost) => vscodeApi.postMessage(m);

type Question = Extract<HostToPairs, { type: 'question' }>;

class DragPairsApp extends HostElement {
  static override properties = {
    q: { state: true },
    selected: { state: true },
    chosen: { state: true },
    rejected: { state: true },
    tried: { state: true },
    draft: { state: true },
    notice: { state: true },
  };
  q: Question | null = null;
  selected = 0;
  chosen: PairCandidate | null = null;
  rejected: PairCandidate | null = null;
  tried: PairCandidate[] = [];
  draft = '';
  notice = '';
  private requestId = 0;

  static override styles = [
    panelStyles,
    pairMarks,
    css`
      h1 {
        font-size: 1.1em;
        margin: 0 0 6px;
        white-space: pre-wrap;
        word-break: break-word;
      }
      .meta {
        margin-bottom: 8px;
      }
      table {
        border-collapse: collapse;
        width: 100%;
      }
      td,
      th {
        text-align: left;
        padding: 3px 8px;
        border-bottom: 1px solid var(--vscode-panel-border);
        vertical-align: top;
      }
      tr[aria-selected='true'] {
        background: var(--vscode-list-inactiveSelectionBackground);
        outline: 1px solid var(--vscode-focusBorder);
      }
      .q {
        font-family: var(--vscode-editor-font-family);
        white-space: pre-wrap;
        word-break: break-word;
      }
      .rank1 {
        color: var(--vscode-testing-iconPassed);
      }
      .miss {
        color: var(--vscode-testing-iconFailed);
      }
      .row {
        display: flex;
        gap: 8px;
        align-items: center;
        margin: 10px 0;
        flex-wrap: wrap;
      }
      vscode-textfield {
        flex: 1;
        min-width: 240px;
      }
      section {
        margin-top: 14px;
      }
      .notice {
        margin-top: 8px;
        color: var(--vscode-descriptionForeground);
      }
    `,
  ];

  private get rows(): PairCandidate[] {
    return [...this.tried, ...(this.q?.candidates ?? [])];
  }

  protected override onMessage = (event: MessageEvent): void => {
    const parsed = HostToPairs.safeParse(event.data);
    if (!parsed.success) return;
    const msg = parsed.data;
    switch (msg.type) {
      case 'question':
        if (this.q?.questionId !== msg.questionId) {
          this.selected = 0;
          this.chosen = null;
          this.rejected = null;
          this.tried = [];
        }
        this.q = msg;
        break;
      case 'tried':
        this.tried = [msg.candidate, ...this.tried.filter((t) => t.query !== msg.candidate.query)];
        this.selected = 0;
        this.notice =
          msg.candidate.rank === null
            ? `"${msg.candidate.query}" does not find the ground-truth page in the top ${this.q?.topK ?? 3}.`
            : `"${msg.candidate.query}" finds it at rank ${msg.candidate.rank}.`;
        break;
      case 'notice':
        this.notice = msg.message;
        if (msg.message.startsWith('Pair saved')) {
          this.chosen = null;
          this.rejected = null;
        }
        break;
      default: {
        const never: never = msg;
        void never;
      }
    }
  };

  protected override onKey = (e: KeyboardEvent): void => {
    if ((e.composedPath()[0] as HTMLElement | undefined)?.tagName === 'INPUT') {
      if (e.key === 'Enter') this.tryDraft();
      return;
    }
    const rows = this.rows;
    if (!this.shortcutAllowed(e)) return;
    switch (e.key) {
      case 'j':
      case 'ArrowDown':
        this.selected = Math.min(rows.length - 1, this.selected + 1);
        break;
      case 'k':
      case 'ArrowUp':
        this.selected = Math.max(0, this.selected - 1);
        break;
      case 'c':
        this.mark('chosen');
        break;
      case 'x':
        this.mark('rejected');
        break;
      case 'Enter':
        this.save();
        break;
      case 't':
        (this.renderRoot.querySelector('vscode-textfield') as HTMLElement | null)?.focus();
        break;
      case '1':
      case '2':
      case '3':
        this.acceptProposal(Number(e.key) - 1);
        break;
      default:
        return;
    }
    e.preventDefault();
  };

  /** Marks the selected row as the chosen or the rejected side (keys c and x, or the buttons). */
  private mark(as: 'chosen' | 'rejected'): void {
    const row = this.rows[this.selected] ?? null;
    if (as === 'chosen') this.chosen = row;
    else this.rejected = row;
  }

  private acceptProposal(i: number): void {
    const p = this.q?.proposals[i];
    if (!p || !this.q) return;
    send({ type: 'save', chosen: this.q.candidates[p.chosen], rejected: this.q.candidates[p.rejected] });
  }

  private save(): void {
    if (this.chosen && this.rejected) send({ type: 'save', chosen: this.chosen, rejected: this.rejected });
    else this.notice = 'Mark a chosen (c) and a rejected (x) query first.';
  }

  private tryDraft(): void {
    if (this.draft.trim()) send({ type: 'try', requestId: ++this.requestId, query: this.draft.trim() });
  }

  private rank(c: PairCandidate): TemplateResult {
    return c.rank === null
      ? html`<span class="miss">not found</span>`
      : html`<span class=${c.rank === 1 ? 'rank1' : ''}>rank ${c.rank} · ${c.rankScore.toFixed(2)}</span>`;
  }

  override render(): TemplateResult {
    const q = this.q;
    if (!q) return html`<p>Open a question's pairs from a trajectory ("Edit DPO Pairs").</p>`;
    const chosen = this.chosen ? html`<span class="q">${this.chosen.query}</span> (${this.rank(this.chosen)})` : '—';
    const rejected = this.rejected
      ? html`<span class="q">${this.rejected.query}</span> (${this.rank(this.rejected)})`
      : '—';
    return html`
      <h1>${q.question}</h1>
      <div class="meta">
        Ground truth: ${q.groundTruth.map((g) => `${g.file} p.${g.page ?? '?'}`).join(', ')} · ${q.candidates.length}
        ${q.candidates.length === 1 ? 'query' : 'queries'} from every run and sample · keys: j/k move, c chosen, x
        rejected, Enter save, t try, 1-3 proposals
      </div>
      <div class="row">
        <vscode-textfield
          placeholder="Try a query live against the index (Enter)"
          .value=${this.draft}
          @input=${(e: Event) => {
            this.draft = (e.target as HTMLInputElement).value;
          }}
        ></vscode-textfield>
        <vscode-button @click=${() => this.tryDraft()}>Try</vscode-button>
        <vscode-button @click=${() => this.save()} ?disabled=${!this.chosen || !this.rejected}
          >Save pair (Enter)</vscode-button
        >
      </div>
      <div class="row">Chosen: ${chosen} · Rejected: ${rejected}</div>
      <div class="row">
        <vscode-button secondary @click=${() => this.mark('chosen')}>Mark Chosen (c)</vscode-button>
        <vscode-button secondary @click=${() => this.mark('rejected')}>Mark Rejected (x)</vscode-button>
      </div>
      <table role="grid" aria-label="Queries">
        <thead>
          <tr>
            <th></th>
            <th>query</th>
            <th>ground truth</th>
            <th>from</th>
          </tr>
        </thead>
        <tbody>
          ${this.rows.map((c, i) => {
            const chosenMark = this.chosen === c ? html`<span class="mark chosen">chosen</span>` : nothing;
            const rejectedMark = this.rejected === c ? html`<span class="mark rejected">rejected</span>` : nothing;
            return html`<tr
              aria-selected=${i === this.selected ? 'true' : 'false'}
              tabindex="0"
              @click=${() => {
                this.selected = i;
              }}
              @focus=${() => {
                this.selected = i;
              }}
            >
              <td>${chosenMark}${rejectedMark}</td>
              <td class="q">${c.query}</td>
              <td>${this.rank(c)}</td>
              <td>${c.source}${c.step !== null ? ` · step ${c.step}` : ''}</td>
            </tr>`;
          })}
        </tbody>
      </table>
      ${
        q.proposals.length
          ? html`<section>
              <strong>Proposed pairs</strong> (press 1-3 to save)
              <ol>
                ${q.proposals.map(
                  (p, i) =>
                    html`<li>
                      <span class="q">${q.candidates[p.chosen].query}</span> ≻
                      <span class="q">${q.candidates[p.rejected].query}</span> (margin ${p.margin.toFixed(2)})
                      <vscode-button
                        secondary
                        aria-label=${`Save proposed pair ${i + 1}`}
                        @click=${() => this.acceptProposal(i)}
                        >Save</vscode-button
                      >
                    </li>`,
                )}
              </ol>
            </section>`
          : nothing
      }
      ${
        q.pairs.length
          ? html`<section>
              <strong>Saved pairs</strong>
              <ul>
                ${q.pairs.map(
                  ({ chosen, rejected, user }) =>
                    html`<li><span class="q">${chosen}</span> ≻ <span class="q">${rejected}</span> · ${user}</li>`,
                )}
              </ul>
            </section>`
          : nothing
      }
      ${this.notice ? html`<div class="notice" role="status">${this.notice}</div>` : nothing}
    `;
  }
}

customElements.define('drag-pairs-app', DragPairsApp);
