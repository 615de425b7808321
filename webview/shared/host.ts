/**
 * The webview side of the host connection, shared by every panel: the VS Code API (acquired once,
 * as VS Code requires), and the root element that subscribes to host messages and keys.
 */
import { css, LitElement, type PropertyDeclarations } from 'lit';
import { DEFAULT_PANEL_SETTINGS, HostToPanel, type PanelSettings, shortcutAllowed } from '../../src/protocol/panel';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

export const vscodeApi: VsCodeApi = acquireVsCodeApi();

/** The webview state: the panel's own UI keys beside the host's restore state (src/protocol/panel.ts). */
function webviewState(): Record<string, unknown> {
  const state = vscodeApi.getState();
  return state && typeof state === 'object' ? (state as Record<string, unknown>) : {};
}

/** A key of the webview state, kept across hiding and reloads. */
export function loadUiState(key: string): unknown {
  return webviewState()[key];
}

/** Sets a key of the webview state, keeping the others (the restore state among them). */
export function saveUiState(key: string, value: unknown): void {
  vscodeApi.setState({ ...webviewState(), [key]: value });
}

/**
 * A panel's root element. While it is in the page it listens to host messages (and keys, when the
 * panel has an `onKey`), and once listening it says `ready`, so the host sends its data only when the
 * webview can receive it. The messages every panel shares (settings, restore state) are handled
 * here; each panel validates its own protocol in `onMessage`.
 */
export abstract class HostElement extends LitElement {
  static override properties: PropertyDeclarations = { settings: { state: true } };
  private unsubscribe: (() => void) | undefined;
  protected abstract onMessage: (event: MessageEvent) => void;
  protected onKey: ((event: KeyboardEvent) => void) | undefined;
  /** The settings the host delivered after `ready`. */
  settings: PanelSettings = DEFAULT_PANEL_SETTINGS;

  /** Whether a key press may run a shortcut (single-character keys can be turned off). */
  protected shortcutAllowed(event: KeyboardEvent): boolean {
    return shortcutAllowed(event, this.settings);
  }

  override connectedCallback(): void {
    super.connectedCallback();
    const { onKey } = this;
    const onMessage = (event: MessageEvent) => {
      const shared = HostToPanel.safeParse(event.data);
      if (!shared.success) return this.onMessage(event);
      if (shared.data.type === 'panel.settings') this.settings = shared.data.settings;
      else saveUiState('restore', shared.data.state);
    };
    window.addEventListener('message', onMessage);
    if (onKey) window.addEventListener('keydown', onKey);
    vscodeApi.postMessage({ type: 'ready' });
    this.unsubscribe = () => {
      window.removeEventListener('message', onMessage);
      if (onKey) window.removeEventListener('keydown', onKey);
    };
  }

  override disconnectedCallback(): void {
    this.unsubscribe?.();
    super.disconnectedCallback();
  }
}

/** The focus ring every panel shows on what the keyboard reached (VS Code's own focus colour). */
export const focusVisible = css`
  :focus-visible {
    outline: 1px solid var(--vscode-focusBorder);
    outline-offset: 1px;
  }
`;

/**
 * The styles every panel starts from: the focus ring, the host box in VS Code's colours and font,
 * the title and the dimmed `.meta` text. A panel composes its own css after these, so its rules override them.
 */
export const panelStyles = css`
  ${focusVisible}
  :host {
    display: block;
    padding: 12px 16px;
    color: var(--vscode-foreground);
    font-family: var(--vscode-font-family);
    font-size: var(--vscode-font-size);
  }
  h1 {
    font-size: 1.2em;
    margin: 0 0 4px;
  }
  .meta {
    color: var(--vscode-descriptionForeground);
  }
`;

/** The chosen and rejected marks of a DPO pair's two queries (inspector steps, pair editor rows). */
export const pairMarks = css`
  .mark {
    font-size: 0.8em;
    padding: 0 6px;
    border-radius: 3px;
  }
  .mark.chosen {
    background: var(--vscode-testing-iconPassed);
    color: var(--vscode-editor-background);
  }
  .mark.rejected {
    background: var(--vscode-testing-iconFailed);
    color: var(--vscode-editor-background);
  }
`;
