import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { jobDir } from '../../core/jobs/engine';
import type { CommandDeps } from '../commands/registry';
import { workspaceRoot } from '../workspace';
import { registerPanelSerializer } from './host';
import { InspectorPanel } from './inspectorPanel';
import { TrainingMonitorPanel } from './monitorPanel';
import { PairEditorPanel } from './pairEditorPanel';
import { SearchPanel } from './searchPanel';

/** A workspace path as the panels keep it: relative inside the workspace folder, absolute outside. */
function resolve(root: string, kept: string): string {
  return path.isAbsolute(kept) ? kept : path.join(root, kept);
}

/**
 * The serializers that bring the DRAG panels back after "Reload Window". Each reopens its panel
 * from the references it kept, reading the data from the files again; where the data is gone, it
 * throws a sentence that the panel then shows.
 */
export function registerPanelSerializers({ api, context, log }: CommandDeps): vscode.Disposable[] {
  const curation = () => {
    if (!api.curation) throw new Error('no workspace folder is open');
    return api.curation;
  };
  return [
    registerPanelSerializer('drag.searchCorpus', log, async ({ query }) => {
      const service = await api.searchService();
      if (!existsSync(service.paths.ocrFile))
        throw new Error(`the corpus ${vscode.workspace.asRelativePath(service.paths.ocrFile)} is gone.`);
      return SearchPanel.show(context, service, log, query);
    }),
    registerPanelSerializer('drag.inspector', log, async ({ trajectoryId, source }) => {
      const deps = { service: api.searchService, curation: curation(), log };
      await api.store.ready();
      const file = resolve(workspaceRoot(), source);
      let tracked = api.store.list().find((f) => f.uri.fsPath === file);
      if (!tracked && existsSync(file)) {
        // A file opened with "Open Trajectories File…" is not found by the scan: open it again.
        await api.store.add(vscode.Uri.file(file));
        tracked = api.store.list().find((f) => f.uri.fsPath === file);
      }
      if (!tracked) throw new Error(`the trajectories file ${source} is gone.`);
      const position = tracked.index?.summaries.findIndex((s) => s.id === trajectoryId) ?? -1;
      if (position < 0) throw new Error(`trajectory ${trajectoryId} is no longer in ${source}.`);
      const t = await api.store.readTrajectory(tracked, position);
      // The first inspector restored is the reused one; others were opened to the side.
      return InspectorPanel.show(context, deps, t, source, InspectorPanel.current !== undefined);
    }),
    registerPanelSerializer('drag.pairEditor', log, async ({ questionId }) => {
      const deps = { store: api.store, curation: curation(), service: api.searchService, log };
      await api.store.ready();
      const known = api.store.list().some((f) => f.index?.summaries.some((s) => (s.questionId ?? s.id) === questionId));
      if (!known) throw new Error(`no trajectory of question ${questionId} is left in the workspace.`);
      return PairEditorPanel.show(context, deps, questionId);
    }),
    registerPanelSerializer('drag.compare', log, async ({ runs }) => {
      const root = workspaceRoot();
      const targets = runs.map((r) => ({ target: path.join(root, r.target), label: r.label }));
      for (const t of targets)
        if (!existsSync(t.target)) throw new Error(`the evaluation folder ${path.relative(root, t.target)} is gone.`);
      // The command opens it with the inspector wiring ("open both trajectories") of a fresh comparison.
      return vscode.commands.executeCommand('drag.compareEvaluations', targets);
    }),
    registerPanelSerializer('drag.trainingMonitor', log, async ({ jobId }) => {
      const root = workspaceRoot();
      if (!existsSync(path.join(jobDir(root, jobId), 'job.json')))
        throw new Error(`job ${jobId} is gone (no jobs/${jobId}/job.json).`);
      const panel = TrainingMonitorPanel.show(context, log, root, jobId, () => api.jobs?.refresh());
      void panel.refresh();
      return panel;
    }),
  ];
}
