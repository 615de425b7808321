/**
 * Search Corpus playground (webview). Talks to the host only through the zod-checked messages of
 * src/protocol/searchPanel. All corpus text is untrusted: it is rendered through Lit bindings
 * (escaped text), never as HTML.
 */
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import { HostElement, loadUiState, panelStyles, saveUiState, vscodeApi } from '../shared/host';
import { largePage, type LargePage, pageKey } from '../shared/pages';
import { css, html, nothing, type TemplateResult } from 'lit';
import { HostToWebview, type WebviewToHost } from '../../src/protocol/searchPanel';
import type { SearchHitResult } from '../../src/protocol/serve';

/** Only UI intent is persisted (GitLens' rule); results are re-fetched. */
interface UiState {
  query: string;
  topK: number;
}

function send(message: WebviewToHost): void {
  vscodeApi.postMessage(message);
}

/** Text with marked spans, as Lit templates (escaped), never innerHTML. */
function marked(text: string, spans: ReadonlyArray<readonly [number, number]>): TemplateResult[] {
  const out: TemplateResult[] = [];
  let at = 0;
  for (const [a, b] of spans) {
    if (a < at || b > text.length) continue;
    out.push(html`${text.slice(at, a)}<mark>${text.slice(a, b)}</mark>`);
    at = b;
  }
  out.push(html`${text.slice(at)}`);
  return out;
}

/** The query syntax and the keys, shown while there are no results. */
const SEARCH_HELP = html`<p class="help">
  Words are ANDed. Upper-case AND, OR, NOT, ANDNOT, ANDMAYBE; parentheses; "exact phrases" (and "phrase"~3); wildcards *
  and ?, prefix*; file:NAME.pdf and page_number:N. ↑/↓ or j/k move, Enter opens the page, Esc closes it.
</p>`;

class DragSearchApp extends HostElement {
  static override properties = {
    query: { state: true },
    topK: { state: true },
    corpus: { state: true },
    pages: { state: true },
    status: { state: true },
    busy: { state: true },
    error: { state: true },
    parsed: { state: true },
    ms: { state: true },
    hits: { state: true },
    thumbs: { state: true },
    large: { state: true },
    selected: { state: true },
  };

  query = '';
  topK = 10;
  corpus = '';
  pages = 0;
  status = 'Starting…';
  busy = true;
  error = '';
  parsed = '';
  ms = 0;
  hits: SearchHitResult[] = [];
  thumbs: Record<string, string> = {};
  large: LargePage | null = null;
  selected = 0;
  private requestId = 0;
  private latestSearch = 0;
  private debounce: ReturnType<typeof setTimeout> | undefined;

  static override styles = [
    panelStyles,
    css`
      header {
        display: flex;
        gap: 8px;
        align-items: center;
      }
      vscode-textfield {
        flex: 1;
      }
      .meta {
        margin: 8px 0;
        display: flex;
        gap: 12px;
        flex-wrap: wrap;
        align-items: center;
      }
      .parsed {
        font-family: var(--vscode-editor-font-family);
        color: var(--vscode-textPreformat-foreground);
      }
      .error {
        color: var(--vscode-errorForeground);
        margin: 8px 0;
      }
      .layout {
        display: flex;
        gap: 16px;
        align-items: flex-start;
      }
      ol {
        list-style: none;
        padding: 0;
        margin: 0;
        flex: 1 1 50%;
        min-width: 280px;
      }
      li {
        display: flex;
        gap: 12px;
        padding: 8px;
        border: 1px solid var(--vscode-panel-border);
        border-radius: 4px;
        margin-bottom: 8px;
        cursor: pointer;
      }
      li[aria-selected='true'] {
        outline: 1px solid var(--vscode-focusBorder);
        background: var(--vscode-list-inactiveSelectionBackground);
      }
      .thumb {
        width: 96px;
        min-height: 124px;
        flex: none;
        background: var(--vscode-editorWidget-background);
        display: flex;
        align-items: center;
        justify-content: center;
        color: var(--vscode-descriptionForeground);
        font-size: 11px;
        text-align: center;
      }
      .thumb img {
        width: 96px;
        display: block;
      }
      .body {
        min-width: 0;
      }
      .title {
        display: flex;
        gap: 4px 8px;
        align-items: center;
        font-weight: 600;
        flex-wrap: wrap;
        overflow-wrap: anywhere;
      }
      .score {
        color: var(--vscode-descriptionForeground);
        font-weight: normal;
      }
      .snippet {
        margin-top: 4px;
        line-height: 1.4;
        word-break: break-word;
      }
      mark {
        background: var(--vscode-editor-findMatchHighlightBackground);
        color: inherit;
        border-radius: 2px;
      }
      .large {
        flex: 1 1 50%;
        min-width: 0;
        position: sticky;
        top: 8px;
      }
      .large img {
        max-width: 100%;
        border: 1px solid var(--vscode-panel-border);
        background: white;
      }
      .large h3 {
        margin: 0 0 8px;
        font-size: 1em;
        display: flex;
        justify-content: space-between;
      }
      .help {
        color: var(--vscode-descriptionForeground);
        font-size: 0.9em;
      }
      button.link {
        background: none;
        border: none;
        color: var(--vscode-textLink-foreground);
        cursor: pointer;
        padding: 0;
        font: inherit;
      }
    `,
  ];

  override connectedCallback(): void {
    // The query and top-k typed before the panel was hidden come back before the host is told `ready`.
    const state = loadUiState('ui') as UiState | undefined;
    if (state && typeof state.query === 'string' && typeof state.topK === 'number') {
      this.query = state.query;
      this.topK = state.topK;
    }
    super.connectedCallback();
  }

  protected override onMessage = (event: MessageEvent): void => {
    const parsed = HostToWebview.safeParse(event.data);
    if (!parsed.success) return;
    const msg = parsed.data;
    switch (msg.type) {
      case 'init':
        this.corpus = msg.corpus;
        if (msg.pages) this.pages = msg.pages;
        if (msg.query) this.query = msg.query;
        if (this.query) this.search();
        break;
      case 'status':
        this.status = msg.text;
        this.busy = msg.busy;
        break;
      case 'results': {
        if (msg.requestId !== this.latestSearch) return; // a newer search is on its way
        this.busy = false;
        this.error = '';
        this.parsed = msg.parsed;
        this.ms = msg.ms;
        this.hits = msg.hits;
        this.selected = 0;
        this.status = `${msg.hits.length} result${msg.hits.length === 1 ? '' : 's'}`;
        for (const h of msg.hits) {
          const key = pageKey({ file: h.file, page: h.page_number });
          if (h.hasPdf && !this.thumbs[key])
            send({ type: 'thumbnail', requestId: ++this.requestId, page: { file: h.file, page: h.page_number } });
        }
        break;
      }
      case 'image': {
        if (msg.large) this.large = largePage(msg);
        else this.thumbs = { ...this.thumbs, [pageKey(msg.page)]: msg.uri };
        break;
      }
      case 'error':
        this.busy = false;
        this.error = msg.message;
        break;
      default: {
        const never: never = msg;
        void never;
      }
    }
  };

  protected override onKey = (e: KeyboardEvent): void => {
    const inField = (e.composedPath()[0] as HTMLElement | undefined)?.tagName === 'INPUT';
    if (e.key === 'Escape' && this.large) {
      this.large = null;
      return;
    }
    if (inField && e.key !== 'ArrowDown') return;
    if (!this.shortcutAllowed(e)) return;
    if (e.key === 'ArrowDown' || e.key === 'j') {
      this.selected = Math.min(this.hits.length - 1, this.selected + 1);
      e.preventDefault();
    } else if (e.key === 'ArrowUp' || e.key === 'k') {
      this.selected = Math.max(0, this.selected - 1);
      e.preventDefault();
    } else if (e.key === 'Enter' && this.hits[this.selected]) this.open(this.hits[this.selected]);
  };

  private save(): void {
    saveUiState('ui', { query: this.query, topK: this.topK } satisfies UiState);
  }

  private search(): void {
    clearTimeout(this.debounce);
    this.save();
    if (!this.query.trim()) {
      this.hits = [];
      this.parsed = '';
      this.status = 'Type a query';
      return;
    }
    this.busy = true;
    this.latestSearch = ++this.requestId;
    send({ type: 'search', requestId: this.latestSearch, query: this.query, topK: this.topK });
  }

  private onInput(e: Event): void {
    this.query = (e.target as HTMLInputElement).value;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.search(), 250);
  }

  private open(hit: SearchHitResult): void {
    if (!hit.hasPdf) {
      this.error = `The PDF ${hit.file} is not in the corpus folder, so there is no page image.`;
      return;
    }
    send({ type: 'openPage', requestId: ++this.requestId, page: { file: hit.file, page: hit.page_number }, terms: [] });
  }

  override render(): TemplateResult {
    return html`
      <header>
        <vscode-textfield
          id="query"
          placeholder='e.g. "net income" 2022 OR revenue* NOT lease'
          .value=${this.query}
          @input=${this.onInput}
          @keydown=${(e: KeyboardEvent) => {
            if (e.key === 'Enter') this.search();
          }}
          aria-label="Search query"
        ></vscode-textfield>
        <vscode-single-select
          aria-label="Results"
          .value=${String(this.topK)}
          @change=${(e: Event) => {
            this.topK = Number((e.target as HTMLSelectElement).value);
            this.search();
          }}
        >
          ${[3, 5, 10, 20].map(
            (k) => html`<vscode-option value=${String(k)} ?selected=${k === this.topK}>top ${k}</vscode-option>`,
          )}
        </vscode-single-select>
      </header>
      <div class="meta">
        ${this.busy ? html`<vscode-progress-ring></vscode-progress-ring>` : nothing}
        <span class="status">${this.status}</span>
        ${this.corpus ? html`<span>${this.corpus}${this.pages ? ` · ${this.pages} pages` : ''}</span>` : nothing}
        ${
          this.parsed
            ? html`<span>Parsed: <span class="parsed">${this.parsed}</span> · ${this.ms.toFixed(2)} ms</span>`
            : nothing
        }
      </div>
      ${this.error ? html`<div class="error" role="alert">${this.error}</div>` : nothing}
      <div class="layout">
        <ol role="listbox" aria-label="Results">
          ${this.hits.map((h, i) => {
            const key = pageKey({ file: h.file, page: h.page_number });
            return html`<li
              role="option"
              tabindex=${i === this.selected ? '0' : '-1'}
              aria-label=${`${h.rank}. ${h.file} page ${h.page_number}, score ${h.score.toFixed(3)}`}
              aria-selected=${i === this.selected ? 'true' : 'false'}
              data-rank=${h.rank}
              @focus=${() => {
                this.selected = i;
              }}
              @click=${() => {
                this.selected = i;
                this.open(h);
              }}
            >
              <div class="thumb">
                ${
                  this.thumbs[key]
                    ? html`<img src=${this.thumbs[key]} alt="Page ${h.page_number} of ${h.file}" />`
                    : h.hasPdf
                      ? 'rendering…'
                      : 'no PDF'
                }
              </div>
              <div class="body">
                <div class="title">
                  <vscode-badge>${h.rank}</vscode-badge><span>${h.file} p.${h.page_number}/${h.total_pages}</span
                  ><span class="score">score ${h.score.toFixed(3)}</span>
                </div>
                <div class="snippet">${marked(h.snippet.text, h.snippet.highlights)}</div>
              </div>
            </li>`;
          })}
        </ol>
        ${
          this.large
            ? html`<section class="large" aria-label="Page view">
                <h3>
                  <span>${this.large.label}</span
                  ><button
                    class="link"
                    @click=${() => {
                      this.large = null;
                    }}
                  >
                    Close (Esc)
                  </button>
                </h3>
                <img src=${this.large.uri} width=${this.large.width} alt=${this.large.label} />
              </section>`
            : nothing
        }
      </div>
      ${this.hits.length === 0 && !this.busy ? SEARCH_HELP : nothing}
    `;
  }
}

customElements.define('drag-search-app', DragSearchApp);
