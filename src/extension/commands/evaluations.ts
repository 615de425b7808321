import * as vscode from 'vscode';
import { type EvaluationEntry, listEvaluations, setEvaluationLabel } from '../../core/eval/discover';
import type { Trajectory } from '../../core/schema/trajectory';
import { ComparePanel } from '../panels/comparePanel';
import { InspectorPanel } from '../panels/inspectorPanel';
import { workspaceRoot } from '../workspace';
import { type CollectArgs, collectTrajectories } from './collect';
import { type CommandDeps, type Commands, objectArg } from './registry';

/** Evaluations: run one, compare two (the older is the baseline), rename one. */
export function evaluationCommands({ api, context, log, views }: CommandDeps): Commands {
  /** Both trajectories of a question, side by side (baseline left, compared right). */
  const openBoth = async (a: Trajectory | null, b: Trajectory | null) => {
    if (!api.curation) return;
    const deps = { service: api.searchService, curation: api.curation, log };
    InspectorPanel.current?.dispose();
    if (a) InspectorPanel.show(context, deps, a, 'baseline', false);
    if (b) InspectorPanel.show(context, deps, b, 'compared', !!a);
  };
  return {
    'drag.evaluateModel': async (args?: CollectArgs) => {
      const result = await collectTrajectories(context, log, objectArg(args), 'eval');
      api.evaluations?.refresh();
      return result;
    },
    'drag.compareEvaluations': async (first?: unknown, selected?: unknown) => {
      const all = await listEvaluations(workspaceRoot());
      let chosen: Array<{ target: string; label: string; date?: string }> | undefined;
      if (Array.isArray(first) && first.length >= 2 && typeof first[0] === 'object' && 'target' in first[0])
        chosen = first as EvaluationEntry[];
      else if (Array.isArray(selected) && selected.length >= 2) chosen = selected as EvaluationEntry[];
      else if (views.evaluations && views.evaluations.selection.length >= 2) chosen = [...views.evaluations.selection];
      if (!chosen) {
        if (all.length < 2)
          throw new Error(
            'compare needs two evaluations in evals/ (run "DRAG: Evaluate Model…" or drag eval / drag score)',
          );
        // The two newest are preselected, so Enter alone compares them.
        const items = all.map((e, i) => ({
          label: e.label,
          description: `${e.model ?? ''} · ${e.date.slice(0, 16).replace('T', ' ')}`,
          picked: i < 2,
          entry: e,
        }));
        const picks = await vscode.window.showQuickPick(items, {
          canPickMany: true,
          title: 'Compare evaluations (the older one is the baseline)',
        });
        if (!picks || picks.length < 2) return undefined;
        chosen = picks.map((p) => p.entry);
      }
      // Baseline = older, compared = newer (order of the list otherwise).
      const sorted = [...chosen].sort((x, y) => (x.date ?? '').localeCompare(y.date ?? ''));
      return ComparePanel.show(context, log, [sorted[0], sorted[sorted.length - 1]], openBoth);
    },
    'drag.compareWithPrevious': async (item?: EvaluationEntry) => {
      if (!vscode.workspace.workspaceFolders?.length || !item) return undefined;
      const all = await listEvaluations(workspaceRoot());
      const i = all.findIndex((e) => e.target === item.target);
      const previous = all[i + 1];
      if (!previous) {
        void vscode.window.showInformationMessage(`DRAG: ${item.label} is the oldest evaluation.`);
        return undefined;
      }
      return ComparePanel.show(context, log, [previous, item], openBoth);
    },
    'drag.renameEvaluation': async (item?: EvaluationEntry) => {
      if (!item || !item.target.endsWith(item.name)) return undefined;
      const label = await vscode.window.showInputBox({ title: 'Label of this evaluation', value: item.label });
      if (!label) return undefined;
      await setEvaluationLabel(item.target, label);
      api.evaluations?.refresh();
      return label;
    },
  };
}
