import * as path from 'node:path';
import * as vscode from 'vscode';
import { HostToWebview, WebviewToHost } from '../../protocol/searchPanel';
import type { SearchService } from '../searchService';
import { webviewHtml } from './webviewHtml';

const THUMB_PIXELS = 120_000;
const LARGE_PIXELS = 1_500_000;

/** "DRAG: Search Corpus": a playground over the workspace's BM25 index. One panel, reused. */
export class SearchPanel implements vscode.Disposable {
  static current: SearchPanel | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private ready = false;
  private lastQuery = '';

  static show(
    context: vscode.ExtensionContext,
    service: SearchService,
    log: vscode.LogOutputChannel,
    initialQuery?: string,
  ): SearchPanel {
    if (SearchPanel.current && SearchPanel.current.service === service) {
      SearchPanel.current.panel.reveal();
      if (initialQuery !== undefined)
        SearchPanel.current.post({
          type: 'init',
          corpus: SearchPanel.current.corpusLabel(),
          pages: 0,
          topK: 10,
          query: initialQuery,
        });
      return SearchPanel.current;
    }
    SearchPanel.current?.dispose();
    const panel = vscode.window.createWebviewPanel(
      'drag.searchCorpus',
      'DRAG: Search Corpus',
      vscode.ViewColumn.Active,
      {
        enableScripts: true,
        retainContextWhenHidden: false,
        localResourceRoots: [
          vscode.Uri.joinPath(context.extensionUri, 'dist', 'webview'),
          vscode.Uri.joinPath(context.extensionUri, 'node_modules', '@vscode', 'codicons', 'dist'),
          vscode.Uri.file(path.join(service.paths.cacheDir, 'pages')),
        ],
      },
    );
    SearchPanel.current = new SearchPanel(panel, context, service, log, initialQuery ?? '');
    return SearchPanel.current;
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    context: vscode.ExtensionContext,
    readonly service: SearchService,
    private readonly log: vscode.LogOutputChannel,
    initialQuery: string,
  ) {
    this.lastQuery = initialQuery;
    panel.iconPath = vscode.Uri.joinPath(context.extensionUri, 'media', 'drag.svg');
    panel.webview.html = webviewHtml(panel.webview, context.extensionUri, 'search', 'DRAG: Search Corpus');
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((raw) => void this.receive(raw)),
    );
  }

  private corpusLabel(): string {
    return vscode.workspace.asRelativePath(this.service.paths.ocrFile);
  }

  private post(message: HostToWebview): void {
    // Validate our own messages too: a bug here should fail loudly, not render garbage.
    void this.panel.webview.postMessage(HostToWebview.parse(message));
  }

  private async receive(raw: unknown): Promise<void> {
    const parsed = WebviewToHost.safeParse(raw);
    if (!parsed.success) {
      this.log.warn(`search panel: rejected message ${JSON.stringify(raw).slice(0, 200)}`);
      return;
    }
    const msg = parsed.data;
    switch (msg.type) {
      case 'ready': {
        this.ready = true;
        this.post({ type: 'status', text: 'Loading the index…', busy: true });
        try {
          const { pages } = await this.service.start();
          this.post({ type: 'init', corpus: this.corpusLabel(), pages, topK: 10, query: this.lastQuery });
          this.post({ type: 'status', text: `${pages} pages indexed`, busy: false });
        } catch (err) {
          this.post({ type: 'error', requestId: null, message: (err as Error).message });
        }
        return;
      }
      case 'search': {
        this.lastQuery = msg.query;
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

  isReady(): boolean {
    return this.ready;
  }

  dispose(): void {
    if (SearchPanel.current === this) SearchPanel.current = undefined;
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }
}
