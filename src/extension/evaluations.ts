import * as vscode from 'vscode';
import { type EvaluationEntry, listEvaluations } from '../core/eval/discover';

/** The Evaluations view: every evals/<name>/ (and DRAG *_summary.json), newest first; multi-select to compare. */
export class EvaluationsProvider implements vscode.TreeDataProvider<EvaluationEntry>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly watcher: vscode.FileSystemWatcher;

  constructor(private readonly workspace: string) {
    this.watcher = vscode.workspace.createFileSystemWatcher(
      new vscode.RelativePattern(workspace, 'evals/**/*.{json,txt}'),
    );
    for (const e of [this.watcher.onDidCreate, this.watcher.onDidChange, this.watcher.onDidDelete])
      e(() => this.changed.fire());
  }

  getChildren(item?: EvaluationEntry): Promise<EvaluationEntry[]> | EvaluationEntry[] {
    return item ? [] : listEvaluations(this.workspace);
  }

  getTreeItem(e: EvaluationEntry): vscode.TreeItem {
    const t = new vscode.TreeItem(e.label, vscode.TreeItemCollapsibleState.None);
    const pct = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)}%`);
    t.description = `${e.model ?? 'model?'} · ${e.date.slice(0, 16).replace('T', ' ')} · Hit@1 ${pct(e.hit1)} · MRR ${e.mrr === null ? '–' : e.mrr.toFixed(3)} · success ${pct(e.success)}`;
    t.tooltip = `${e.target}\n${e.questions ?? '?'} questions${e.perQuestion ? '' : '\n(summary only: no per-question statistics)'}`;
    t.iconPath = new vscode.ThemeIcon(e.perQuestion ? 'graph' : 'file');
    t.contextValue = 'drag.evaluation';
    t.id = `eval:${e.target}`;
    return t;
  }

  refresh(): void {
    this.changed.fire();
  }

  dispose(): void {
    this.watcher.dispose();
    this.changed.dispose();
  }
}
