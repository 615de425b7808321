/**
 * The webview side of the host connection, shared by every panel: the VS Code API (acquired once,
 * as VS Code requires), and one subscription to host messages and keys.
 */
interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

export const vscodeApi: VsCodeApi = acquireVsCodeApi();

/**
 * Listens to host messages (and keys, if given), then says `ready` so the host sends its data only
 * once the webview can receive it. Returns the unsubscribe function for disconnectedCallback.
 */
export function connect(onMessage: (event: MessageEvent) => void, onKey?: (event: KeyboardEvent) => void): () => void {
  window.addEventListener('message', onMessage);
  if (onKey) window.addEventListener('keydown', onKey);
  vscodeApi.postMessage({ type: 'ready' });
  return () => {
    window.removeEventListener('message', onMessage);
    if (onKey) window.removeEventListener('keydown', onKey);
  };
}
