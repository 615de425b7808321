import * as vscode from 'vscode';

/**
 * A flat tree view over workspace files: it refreshes whenever a file matching `glob` (relative to
 * the workspace) is created, changed or deleted, and on `refresh()`.
 */
export abstract class WatchedTreeProvider<T> implements vscode.TreeDataProvider<T>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly watcher: vscode.FileSystemWatcher;

  constructor(
    protected readonly workspace: string,
    glob: string,
  ) {
    this.watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(workspace, glob));
    for (const e of [this.watcher.onDidCreate, this.watcher.onDidChange, this.watcher.onDidDelete])
      e(() => this.changed.fire());
  }

  abstract getChildren(item?: T): vscode.ProviderResult<T[]>;
  abstract getTreeItem(item: T): vscode.TreeItem;

  refresh(): void {
    this.changed.fire();
  }

  dispose(): void {
    this.watcher.dispose();
    this.changed.dispose();
  }
}
