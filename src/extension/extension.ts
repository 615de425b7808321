import * as vscode from 'vscode';
import { changedStatuses, curationStatuses } from '../core/curation/decisions';
import { corpusPaths, loadConfig } from '../core/workspace/layout';
import type { DragStudioApi } from './api';
import { collectionCommands } from './commands/collect';
import { corpusCommands } from './commands/corpus';
import { curationCommands } from './commands/curation';
import { demoCommands } from './commands/demo';
import { evaluationCommands } from './commands/evaluations';
import { jobCommands } from './commands/jobs';
import { type CommandDeps, registerCommands } from './commands/registry';
import { trajectoryCommands } from './commands/trajectories';
import { CurationStore } from './curation/store';
import { DatasetsProvider, FailedSearchesProvider } from './curation/views';
import { EvaluationsProvider } from './evaluations';
import { JobsProvider } from './jobs/jobsView';
import { ComparePanel } from './panels/comparePanel';
import { InspectorPanel } from './panels/inspectorPanel';
import { TrainingMonitorPanel } from './panels/monitorPanel';
import { PairEditorPanel } from './panels/pairEditorPanel';
import { registerPanelSerializers } from './panels/restore';
import { SearchPanel } from './panels/searchPanel';
import { RECORD_SCHEME, RecordDocumentProvider } from './recordDocument';
import { SearchService } from './searchService';
import { TrajectoryStore } from './trajectories/store';
import { TrajectoriesTreeProvider } from './trajectories/tree';
import { workspaceRoot } from './workspace';
import { registerCliOnPath } from './terminalPath';

export type { DragStudioApi } from './api';

export function activate(context: vscode.ExtensionContext): DragStudioApi {
  const log = vscode.window.createOutputChannel('DRAG Studio', { log: true });
  context.subscriptions.push(registerCliOnPath(context, log));
  const store = new TrajectoryStore(log);
  const trajectories = new TrajectoriesTreeProvider(store);
  let service: Promise<SearchService> | null = null;
  const api: DragStudioApi = {
    trajectories,
    store,
    curation: null,
    failedSearches: null,
    datasets: null,
    inspector: () => InspectorPanel.current,
    pairEditor: () => PairEditorPanel.current,
    evaluations: null,
    compare: () => ComparePanel.current,
    jobs: null,
    monitor: (id) => TrainingMonitorPanel.open.get(id),
    searchService: () => {
      service ??= (async () => {
        const root = workspaceRoot();
        const { config } = await loadConfig(root);
        const s = new SearchService(context.asAbsolutePath('dist/cli.js'), corpusPaths(root, config), log);
        context.subscriptions.push(s);
        return s;
      })();
      return service;
    },
  };
  context.subscriptions.push(log, store, trajectories);

  // Every command is registered before anything can fail (rust-analyzer's habit), so no
  // contributed command is ever "not found"; the integration suite checks each command that
  // package.json contributes is registered.
  const deps: CommandDeps = { api, context, log, views: { evaluations: null } };
  context.subscriptions.push(
    ...registerCommands(
      [
        trajectoryCommands(deps),
        curationCommands(deps),
        corpusCommands(deps),
        collectionCommands(deps),
        evaluationCommands(deps),
        jobCommands(deps),
        demoCommands(deps),
        { 'drag.showLog': () => log.show() },
      ],
      log,
    ),
  );

  const folder = vscode.workspace.workspaceFolders?.[0];
  if (folder) createWorkspaceViews(folder.uri.fsPath, deps);
  context.subscriptions.push(
    SearchPanel.open,
    InspectorPanel.open,
    PairEditorPanel.open,
    ComparePanel.open,
    TrainingMonitorPanel.open,
    // Registered during activation, as VS Code requires, so panels come back after "Reload Window".
    ...registerPanelSerializers(deps),
  );

  const view = vscode.window.createTreeView('drag.trajectories', {
    treeDataProvider: trajectories,
    showCollapseAll: true,
  });
  context.subscriptions.push(
    view,
    trajectories.onDidChangeFilter((filter) => {
      view.message = filter ? `Filter: "${filter}"` : undefined;
    }),
    vscode.workspace.registerTextDocumentContentProvider(RECORD_SCHEME, new RecordDocumentProvider(store)),
  );
  void vscode.commands.executeCommand('setContext', 'drag:trajectoriesFiltered', false);

  // Scanning does I/O, so it starts after activation returns.
  setTimeout(() => void store.ready(), 0);
  log.info('DRAG Studio activated');
  return api;
}

/** The views that need a workspace folder: curation, datasets, evaluations and jobs. */
function createWorkspaceViews(root: string, { api, context, log, views }: CommandDeps): void {
  const { store, trajectories } = api;
  const curation = new CurationStore(root, log);
  api.curation = curation;
  api.failedSearches = new FailedSearchesProvider(store, curation, api.searchService);
  const failedView = vscode.window.createTreeView('drag.failedSearches', { treeDataProvider: api.failedSearches });
  api.failedSearches.attachView(failedView);
  api.datasets = new DatasetsProvider(root);
  trajectories.setCuration((id) => curation.current().byTrajectory.get(id)?.status ?? null);
  // Only the rows whose accept/reject status changed are re-rendered on a curation change.
  let statuses = curationStatuses(curation.current());
  context.subscriptions.push(
    curation,
    api.failedSearches,
    api.datasets,
    curation.onDidChange(() => {
      const next = curationStatuses(curation.current());
      trajectories.refreshTrajectories(changedStatuses(statuses, next));
      statuses = next;
    }),
    failedView,
    vscode.window.createTreeView('drag.datasets', { treeDataProvider: api.datasets }),
  );
  api.evaluations = new EvaluationsProvider(root);
  views.evaluations = vscode.window.createTreeView('drag.evaluations', {
    treeDataProvider: api.evaluations,
    canSelectMany: true,
  });
  context.subscriptions.push(api.evaluations, views.evaluations);
  const jobs = new JobsProvider(root, log);
  api.jobs = jobs;
  const jobsView = vscode.window.createTreeView('drag.jobs', { treeDataProvider: jobs });
  jobs.setVisible(jobsView.visible);
  context.subscriptions.push(
    jobs,
    jobsView,
    jobsView.onDidChangeVisibility((e) => jobs.setVisible(e.visible)),
  );
}

export function deactivate(): void {
  // Everything is disposed through context.subscriptions.
}
