import * as vscode from 'vscode';
import type { FailedItem } from '../curation/views';
import { runCliJob } from '../jobs/cliJob';
import { askReason, type InspectorPanel } from '../panels/inspectorPanel';
import { PairEditorPanel } from '../panels/pairEditorPanel';
import type { TrajectoryNode } from '../trajectories/tree';
import { workspaceRoot } from '../workspace';
import type { CommandDeps, Commands } from './registry';
import { inspectNode } from './trajectories';

/** Curation: decisions from the inspector or the Failed Searches view, the pair editor, the export. */
export function curationCommands(deps: CommandDeps): Commands {
  const { api, context, log } = deps;
  const { store } = api;
  const inspectItem = (item: FailedItem) =>
    inspectNode(deps, { kind: 'trajectory', fileKey: item.fileKey, position: item.position }, false);
  const onInspector = async (fn: (p: InspectorPanel) => Promise<unknown>) => {
    const p = api.inspector();
    if (!p) {
      void vscode.window.showInformationMessage('DRAG: open a trajectory in the inspector first.');
      return undefined;
    }
    return fn(p);
  };
  return {
    'drag.inspectFailedSearch': (item?: FailedItem) => (item ? inspectItem(item) : undefined),
    'drag.acceptTrajectory': () => onInspector((p) => p.decide('accept')),
    'drag.rejectTrajectory': () => onInspector((p) => p.decide('reject')),
    'drag.undoCuration': () => onInspector((p) => p.decide('undo')),
    'drag.markLabelProblem': async (item?: FailedItem) => {
      if (item && api.curation) {
        const s = store.get(item.fileKey)?.index?.summaries[item.position];
        if (!s) return undefined;
        const reason = await askReason('label-problem', false);
        if (!reason) return undefined;
        return api.curation.decide({
          trajectory_id: s.id,
          question_id: s.questionId ?? s.id,
          decision: 'label-problem',
          reason,
        });
      }
      return onInspector((p) => p.decide('label-problem'));
    },
    'drag.writeBetterQuery': async (item?: FailedItem) => {
      if (item) await inspectItem(item);
      return onInspector(async (p) => p.edit(p.shown?.steps.filter((s) => s.query).pop()?.step ?? 1));
    },
    'drag.refreshFailedSearches': () => api.failedSearches?.refresh(),
    'drag.editPairs': async (arg?: TrajectoryNode | string) => {
      if (!api.curation) return undefined;
      let questionId = typeof arg === 'string' ? arg : undefined;
      if (arg && typeof arg === 'object' && arg.kind === 'trajectory') {
        const s = store.get(arg.fileKey)?.index?.summaries[arg.position];
        questionId = s ? (s.questionId ?? s.id) : undefined;
      }
      questionId ??= api.inspector()?.shown?.questionId;
      if (!questionId) {
        void vscode.window.showInformationMessage("DRAG: pick a trajectory first (its question's queries are edited).");
        return undefined;
      }
      return PairEditorPanel.show(
        context,
        { store, curation: api.curation, service: api.searchService, log },
        questionId,
      );
    },
    'drag.exportCuratedDataset': async (name?: unknown) => {
      const root = workspaceRoot();
      const dataset =
        typeof name === 'string'
          ? name
          : await vscode.window.showInputBox({
              title: 'Export curated dataset',
              prompt: 'Name of datasets/<name>/',
              ignoreFocusOut: true,
              value: `curated-${new Date().toISOString().slice(0, 10)}`,
              validateInput: (v) => (/^[\w.-]+$/.test(v) ? null : 'letters, digits, . _ - only'),
            });
      if (!dataset) return undefined;
      const result = await runCliJob(
        context.asAbsolutePath('dist/cli.js'),
        ['export-curated', '--workspace', root, '--name', dataset, '--json'],
        { title: `DRAG: exporting ${dataset}`, log },
      );
      api.datasets?.refresh();
      const done = result.events.find((e) => (e as { type?: string }).type === 'done') as
        { accepted: number; pairs: number; edits: number } | undefined;
      if (result.code === 0 && done)
        void vscode.window.showInformationMessage(
          `DRAG: exported ${dataset}: ${done.accepted} accepted, ${done.pairs} pairs, ${done.edits} edited queries.`,
        );
      else
        void vscode.window.showErrorMessage(
          `DRAG: export failed: ${result.stderrTail.at(-1) ?? 'see the DRAG Studio log'}`,
        );
      return done;
    },
  };
}
