/**
 * The webview side of the host connection, shared by every panel: the VS Code API (acquired once,
 * as VS Code requires), and the root element that subscribes to host messages and keys.
 */
import { LitElement } from 'lit';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

export const vscodeApi: VsCodeApi = acquireVsCodeApi();

/**
 * A panel's root element. While it is in the page it listens to host messages (and keys, when the
 * panel has an `onKey`), and once listening it says `ready`, so the host sends its data only when the
 * webview can receive it. Each panel validates its own protocol in `onMessage`.
 */
export abstract class HostElement extends LitElement {
  private unsubscribe: (() => void) | undefined;
  protected abstract onMessage: (event: MessageEvent) => void;
  protected onKey: ((event: KeyboardEvent) => void) | undefined;

  override connectedCallback(): void {
    super.connectedCallback();
    const { onMessage, onKey } = this;
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
