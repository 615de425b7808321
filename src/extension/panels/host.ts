import * as vscode from 'vscode';
import type { z } from 'zod';
import { webviewHtml } from './webviewHtml';

/** What tells one panel from another: its view type, bundle, title, protocol and resources. */
export interface PanelSpec<In, Out> {
  /** The `viewType` of the panel (and of a serializer that restores it). */
  viewType: string;
  /** The webview bundle: dist/webview/<bundle>.js, which defines <drag-<bundle>-app>. */
  bundle: string;
  title: string;
  /** Messages from the webview, checked before a handler sees them. */
  incoming: z.ZodType<In>;
  /** Messages to the webview, checked too: a bug here fails loudly instead of rendering garbage. */
  outgoing: z.ZodType<Out>;
  /** The message that shows an error of a handler in the webview. */
  notice(message: string): Out;
}

/**
 * The folders a panel's webview may load from: its bundle, the codicons, and the panel's own
 * (rendered page images, media).
 */
function resourceRoots(context: vscode.ExtensionContext, extra: vscode.Uri[]): vscode.Uri[] {
  return [
    vscode.Uri.joinPath(context.extensionUri, 'dist', 'webview'),
    vscode.Uri.joinPath(context.extensionUri, 'node_modules', '@vscode', 'codicons', 'dist'),
    ...extra,
  ];
}

/**
 * A new webview panel for `spec`, scripts on; the host's constructor then adopts it and sets what
 * it may load.
 */
export function createPanel(
  spec: Pick<PanelSpec<unknown, unknown>, 'viewType' | 'title'>,
  column: vscode.ViewColumn | { viewColumn: vscode.ViewColumn; preserveFocus?: boolean },
): vscode.WebviewPanel {
  return vscode.window.createWebviewPanel(spec.viewType, spec.title, column, {
    enableScripts: true,
    retainContextWhenHidden: false,
    localResourceRoots: [],
  });
}

/**
 * The host side of a webview panel, shared by every panel (the webview side is
 * webview/shared/host.ts): the HTML shell, zod-checked messages both ways, posts held until the
 * webview says `ready`, a handler's error shown in the webview as a notice, and dispose.
 *
 * The constructor adopts a panel it is given, so a panel created by `createPanel` and one handed
 * back by a `WebviewPanelSerializer` go through the same path. A webview whose context is not
 * retained is reloaded when it is shown again and says `ready` again: `onReady` then sends the
 * panel's state again.
 */
export abstract class WebviewPanelHost<In extends { type: string }, Out> implements vscode.Disposable {
  protected readonly disposables: vscode.Disposable[] = [];
  private ready = false;
  private queue: Out[] = [];
  private disposed = false;
  private readonly disposeListeners: Array<() => void> = [];

  protected constructor(
    readonly panel: vscode.WebviewPanel,
    context: vscode.ExtensionContext,
    private readonly spec: PanelSpec<In, Out>,
    protected readonly log: vscode.LogOutputChannel,
    roots: vscode.Uri[] = [],
  ) {
    panel.webview.options = { enableScripts: true, localResourceRoots: resourceRoots(context, roots) };
    panel.iconPath = vscode.Uri.joinPath(context.extensionUri, 'media', 'drag.svg');
    panel.webview.html = webviewHtml(panel.webview, context.extensionUri, spec.bundle, spec.title);
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((raw) => void this.receive(raw)),
    );
  }

  /** Whether the webview has said `ready` (posts before that wait in a queue). */
  isReady(): boolean {
    return this.ready;
  }

  /** Sends a message now, or once the webview is ready. */
  protected post(message: Out): void {
    const checked = this.spec.outgoing.parse(message);
    if (this.ready) void this.panel.webview.postMessage(checked);
    else this.queue.push(checked);
  }

  /** Sends a message that carries the panel's state, only if the webview listens: `onReady` sends it otherwise. */
  protected postState(message: Out): void {
    if (this.ready) this.post(message);
  }

  /** Shows an error in the webview. */
  protected notice(message: string): void {
    this.post(this.spec.notice(message));
  }

  /** The webview is listening (first load, or reloaded): send the state. */
  protected onReady(): void | Promise<void> {}

  /** A checked message other than `ready`. */
  protected abstract onMessage(message: Exclude<In, { type: 'ready' }>): Promise<void>;

  private async receive(raw: unknown): Promise<void> {
    const parsed = this.spec.incoming.safeParse(raw);
    if (!parsed.success) {
      this.log.warn(`${this.spec.viewType}: rejected message ${JSON.stringify(raw).slice(0, 200)}`);
      return;
    }
    const message = parsed.data;
    try {
      if (message.type === 'ready') {
        this.ready = true;
        for (const m of this.queue.splice(0)) void this.panel.webview.postMessage(m);
        await this.onReady();
      } else await this.onMessage(message as Exclude<In, { type: 'ready' }>);
    } catch (err) {
      this.notice((err as Error).message);
    }
  }

  /** Called once, when the panel is disposed (closed by the person or by code). */
  onDidDispose(listener: () => void): void {
    this.disposeListeners.push(listener);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const listener of this.disposeListeners) listener();
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }
}

/**
 * The open panels of one kind, by key: one entry ('' ) for a single reused panel, one per job for
 * the monitors. A panel leaves when it is disposed; disposing the registry closes them all.
 */
export class PanelRegistry<P extends WebviewPanelHost<{ type: string }, unknown>> implements vscode.Disposable {
  private readonly panels = new Map<string, P>();

  get(key = ''): P | undefined {
    return this.panels.get(key);
  }

  set(panel: P, key = ''): P {
    this.panels.set(key, panel);
    panel.onDidDispose(() => {
      if (this.panels.get(key) === panel) this.panels.delete(key);
    });
    return panel;
  }

  dispose(): void {
    for (const p of [...this.panels.values()]) p.dispose();
  }
}
