import * as path from 'node:path';
import * as vscode from 'vscode';
import { HostToWebview, WebviewToHost } from '../../protocol/searchPanel';
import type { SearchService } from '../searchService';
import { createPanel, PanelRegistry, type PanelSpec, WebviewPanelHost } from './host';

const THUMB_PIXELS = 120_000;
const LARGE_PIXELS = 1_500_000;

const SPEC: PanelSpec<WebviewToHost, HostToWebview> = {
  viewType: 'drag.searchCorpus',
  bundle: 'search',
  title: 'DRAG: Search Corpus',
  incoming: WebviewToHost,
  outgoing: HostToWebview,
  notice: (message) => ({ type: 'error', requestId: null, message }),
};

/** "DRAG: Search Corpus": a playground over the workspace's BM25 index. One panel, reused. */
export class SearchPanel extends WebviewPanelHost<WebviewToHost, HostToWebview> {
  static readonly open = new PanelRegistry<SearchPanel>();
  private lastQuery = '';

  static get current(): SearchPanel | undefined {
    return SearchPanel.open.get();
  }

  static show(
    context: vscode.ExtensionContext,
    service: SearchService,
    log: vscode.LogOutputChannel,
    initialQuery?: string,
  ): SearchPanel {
    const current = SearchPanel.current;
    if (current && current.service === service) {
      current.panel.reveal();
      if (initialQuery !== undefined) current.remember({ query: initialQuery });
      if (initialQuery !== undefined)
        current.post({ type: 'init', corpus: current.corpusLabel(), pages: 0, topK: 10, query: initialQuery });
      return current;
    }
    current?.dispose();
    const panel = createPanel(SPEC, vscode.ViewColumn.Active);
    return SearchPanel.open.set(new SearchPanel(panel, context, service, log, initialQuery ?? ''));
  }

  /** Rendered page images live in the corpus cache. */
  private static roots(service: SearchService): vscode.Uri[] {
    return [vscode.Uri.file(path.join(service.paths.cacheDir, 'pages'))];
  }

  private constructor(
    panel: vscode.WebviewPanel,
    context: vscode.ExtensionContext,
    readonly service: SearchService,
    log: vscode.LogOutputChannel,
    initialQuery: string,
  ) {
    super(panel, context, SPEC, log, SearchPanel.roots(service));
    this.lastQuery = initialQuery;
    this.remember({ query: initialQuery });
  }

  private corpusLabel(): string {
    return vscode.workspace.asRelativePath(this.service.paths.ocrFile);
  }

  protected override async onReady(): Promise<void> {
    this.post({ type: 'status', text: 'Loading the index…', busy: true });
    try {
      const { pages } = await this.service.start();
      this.post({ type: 'init', corpus: this.corpusLabel(), pages, topK: 10, query: this.lastQuery });
      this.post({ type: 'status', text: `${pages} pages indexed`, busy: false });
    } catch (err) {
      this.post({ type: 'error', requestId: null, message: (err as Error).message });
    }
  }

  protected async onMessage(msg: Exclude<WebviewToHost, { type: 'ready' }>): Promise<void> {
    switch (msg.type) {
      case 'search': {
        this.lastQuery = msg.query;
        this.remember({ query: msg.query });
        try {
          const r = await this.service.search(msg.query, msg.topK);
          this.post({
            type: 'results',
            requestId: msg.requestId,
            query: r.query,
            parsed: r.parsed,
            terms: r.terms,
            ms: r.ms,
            hits: r.hits,
          });
        } catch (err) {
          this.post({ type: 'error', requestId: msg.requestId, message: (err as Error).message });
        }
        return;
      }
      case 'thumbnail':
      case 'openPage': {
        const large = msg.type === 'openPage';
        try {
          const img = await this.service.render(msg.page.file, msg.page.page, large ? LARGE_PIXELS : THUMB_PIXELS);
          const uri = this.panel.webview.asWebviewUri(vscode.Uri.file(img.path)).toString();
          this.post({
            type: 'image',
            requestId: msg.requestId,
            page: msg.page,
            uri,
            width: img.width,
            height: img.height,
            large,
          });
        } catch (err) {
          this.post({ type: 'error', requestId: msg.requestId, message: (err as Error).message });
        }
        return;
      }
      default: {
        const never: never = msg;
        void never;
      }
    }
  }
}
