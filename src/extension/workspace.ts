import * as vscode from 'vscode';

/** The first workspace folder's path: every command that needs the workspace reads it here. */
export function workspaceRoot(): string {
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (!root) throw new Error('open a workspace folder first');
  return root;
}
