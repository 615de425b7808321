import * as vscode from 'vscode';
import type { z } from 'zod';
import {
  HostToPanel,
  PANEL_NAMES,
  PANEL_RESTORE_STATES,
  type PanelRestoreState,
  type PanelSettings,
  parseRestoreState,
  type RestorableViewType,
} from '../../protocol/panel';
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
  const restored = adopting.get(spec.viewType);
  if (restored) {
    adopting.delete(spec.viewType);
    restored.title = spec.title;
    return restored;
  }
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
  private queue: unknown[] = [];
  /** What a serializer restores this panel from (see `remember`). */
  private restoreState: Record<string, unknown> | null = null;
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
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('drag.keyboard')) this.sendShared({ type: 'panel.settings', settings: settings() });
      }),
    );
  }

  /** Whether the webview has said `ready` (posts before that wait in a queue). */
  isReady(): boolean {
    return this.ready;
  }

  /** Sends a message now, or once the webview is ready. */
  protected post(message: Out): void {
    this.send(this.spec.outgoing.parse(message));
  }

  private send(checked: unknown): void {
    if (this.ready) void this.panel.webview.postMessage(checked);
    else this.queue.push(checked);
  }

  private sendShared(message: HostToPanel): void {
    this.send(HostToPanel.parse(message));
  }

  /**
   * Keeps what restores this panel after "Reload Window" (references, never data): the webview
   * stores it with `setState`, and VS Code hands it to the serializer (`registerPanelSerializer`).
   */
  protected remember<V extends RestorableViewType>(state: PanelRestoreState<V>): void {
    const schema = PANEL_RESTORE_STATES[this.spec.viewType as V];
    this.restoreState = schema.parse(state) as Record<string, unknown>;
    this.sendShared({ type: 'panel.restoreState', state: this.restoreState });
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
        this.sendShared({ type: 'panel.settings', settings: settings() });
        if (this.restoreState) this.sendShared({ type: 'panel.restoreState', state: this.restoreState });
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

/** The settings every webview honours, read now. */
function settings(): PanelSettings {
  return {
    singleLetterShortcuts: vscode.workspace.getConfiguration('drag.keyboard').get('singleLetterShortcuts', true),
  };
}

/** Panels VS Code handed back after a reload, waiting for their host's `createPanel` to adopt them. */
const adopting = new Map<string, vscode.WebviewPanel>();

/**
 * Restores a kind of panel after "Reload Window". VS Code gives back the panel and the state its
 * webview kept (`remember`); the state is checked, then `reopen` opens the panel the way its command
 * does, and the `createPanel` inside adopts the panel VS Code gave back instead of creating one.
 * Restores of one kind run one after another, so each adopts its own panel. A state that does not
 * parse, data that is gone (`reopen` throws) or a `reopen` that opened nothing leaves a page in the
 * panel that says why, instead of a blank one.
 */
export function registerPanelSerializer<V extends RestorableViewType>(
  viewType: V,
  log: vscode.LogOutputChannel,
  reopen: (state: PanelRestoreState<V>) => Promise<unknown>,
): vscode.Disposable {
  let queue: Promise<void> = Promise.resolve();
  const restore = async (panel: vscode.WebviewPanel, raw: unknown): Promise<void> => {
    const parsed = parseRestoreState(viewType, raw);
    if (!parsed.ok) return showCannotRestore(panel, parsed.message, log);
    adopting.set(viewType, panel);
    try {
      await reopen(parsed.state);
      if (adopting.get(viewType) === panel)
        showCannotRestore(panel, `Cannot restore the ${PANEL_NAMES[viewType]} panel. Open it again.`, log);
    } catch (err) {
      showCannotRestore(panel, `Cannot restore the ${PANEL_NAMES[viewType]} panel: ${(err as Error).message}`, log);
    } finally {
      if (adopting.get(viewType) === panel) adopting.delete(viewType);
    }
  };
  return vscode.window.registerWebviewPanelSerializer(viewType, {
    deserializeWebviewPanel: (panel, raw) => (queue = queue.then(() => restore(panel, raw))),
  });
}

/** A page without scripts that says why a panel did not come back. */
function showCannotRestore(panel: vscode.WebviewPanel, message: string, log: vscode.LogOutputChannel): void {
  log.warn(message);
  const escaped = message.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  panel.webview.options = { enableScripts: false, localResourceRoots: [] };
  panel.webview.html = `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <meta http-equiv="Content-Security-Policy" content="default-src 'none'">
</head>
<body>
  <p role="alert" class="cannot-restore">${escaped}</p>
</body>
</html>`;
}
