import * as vscode from 'vscode';
import { type EvaluationEntry, listEvaluations } from '../core/eval/discover';
import { WatchedTreeProvider } from './watchedTree';

/** The Evaluations view: every evals/<name>/ (and DRAG *_summary.json), newest first; multi-select to compare. */
export class EvaluationsProvider extends WatchedTreeProvider<EvaluationEntry> {
  constructor(workspace: string) {
    super(workspace, 'evals/**/*.{json,txt}');
  }

  getChildren(item?: EvaluationEntry): Promise<EvaluationEntry[]> | EvaluationEntry[] {
    return item ? [] : listEvaluations(this.workspace);
  }

  getTreeItem(e: EvaluationEntry): vscode.TreeItem {
    const t = new vscode.TreeItem(e.label, vscode.TreeItemCollapsibleState.None);
    const pct = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)}%`);
    t.description =
      `${e.model ?? 'model?'} · ${e.date.slice(0, 16).replace('T', ' ')} · Hit@1 ${pct(e.hit1)} · ` +
      `MRR ${e.mrr === null ? '–' : e.mrr.toFixed(3)} · success ${pct(e.success)}`;
    t.tooltip =
      `${e.target}\n${e.questions ?? '?'} questions` +
      `${e.perQuestion ? '' : '\n(summary only: no per-question statistics)'}`;
    t.iconPath = new vscode.ThemeIcon(e.perQuestion ? 'graph' : 'file');
    t.contextValue = 'drag.evaluation';
    t.id = `eval:${e.target}`;
    return t;
  }
}
