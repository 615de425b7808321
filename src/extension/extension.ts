import { existsSync } from 'node:fs';
import * as vscode from 'vscode';
import { corpusPaths, loadConfig } from '../core/workspace/layout';
import { collectTrajectories, type CollectArgs, setApiKey } from './commands/collect';
import { buildCorpusCommand, buildTrainingData, type PipelineArgs } from './commands/pipeline';
import { createDemoWorkspace, trainLocalWriter } from './commands/demo';
import { CurationStore } from './curation/store';
import { DatasetsProvider, type FailedItem, FailedSearchesProvider } from './curation/views';
import { runCliJob } from './jobs/cliJob';
import { JobsProvider } from './jobs/jobsView';
import { TrainingMonitorPanel } from './jobs/monitorPanel';
import { evaluateAdapter, startTraining, type TrainArgs } from './commands/training';
import { cancelJob, cleanJob, fetchAdapter, type JobRecord, listJobs, readJob } from '../core/jobs/engine';
import { InspectorPanel } from './panels/inspectorPanel';
import { PairEditorPanel } from './panels/pairEditorPanel';
import { ComparePanel } from './panels/comparePanel';
import { EvaluationsProvider } from './evaluations';
import { type EvaluationEntry, listEvaluations, setEvaluationLabel } from '../core/eval/discover';
import type { Trajectory } from '../core/schema/trajectory';
import { SearchPanel } from './panels/searchPanel';
import { RECORD_SCHEME, RecordDocumentProvider } from './recordDocument';
import { SearchService } from './searchService';
import { TrajectoryStore } from './trajectories/store';
import { type TrajectoryNode, TrajectoriesTreeProvider } from './trajectories/tree';

/** What the extension hands to its integration tests (and to other extensions). */
export interface DragStudioApi {
  trajectories: TrajectoriesTreeProvider;
  store: TrajectoryStore;
  /** The `drag serve` child of the first workspace folder (started on first search). */
  searchService(): Promise<SearchService>;
  curation: CurationStore | null;
  failedSearches: FailedSearchesProvider | null;
  datasets: DatasetsProvider | null;
  /** The inspector panel on screen, if any. */
  inspector(): InspectorPanel | undefined;
  pairEditor(): PairEditorPanel | undefined;
  evaluations: EvaluationsProvider | null;
  compare(): ComparePanel | undefined;
  jobs: JobsProvider | null;
  /** The Training Monitor of a job, if open. */
  monitor(id: string): TrainingMonitorPanel | undefined;
}

type CommandHandler = (...args: never[]) => unknown;

/**
 * Every command in one table, registered before anything can fail (rust-analyzer's habit), so
 * no contributed command is ever "not found". scripts/check-commands.mjs checks this table
 * against package.json.
 */
interface Views {
  evaluations: vscode.TreeView<EvaluationEntry> | null;
}

function workspaceRoot(): string {
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (!root) throw new Error('open a workspace folder first');
  return root;
}

function commandTable(
  api: DragStudioApi,
  context: vscode.ExtensionContext,
  log: vscode.LogOutputChannel,
  views: Views,
): Record<string, CommandHandler> {
  const { trajectories, store } = api;
  const openSearch = async (query?: string) => {
    const service = await api.searchService();
    if (!existsSync(service.paths.ocrFile)) {
      const choice = await vscode.window.showErrorMessage(
        `DRAG: no corpus at ${vscode.workspace.asRelativePath(service.paths.ocrFile)}. Build it from PDFs with "drag corpus build", or set corpus.ocrFile in drag.config.json.`,
        'Open drag.config.json',
      );
      if (choice)
        await vscode.commands.executeCommand(
          'vscode.open',
          vscode.Uri.joinPath(vscode.workspace.workspaceFolders![0].uri, 'drag.config.json'),
        );
      return undefined;
    }
    return SearchPanel.show(context, service, log, query);
  };
  /** Both trajectories of a question, side by side (baseline left, compared right). */
  const openBoth = async (a: Trajectory | null, b: Trajectory | null) => {
    if (!api.curation) return;
    const deps = { service: api.searchService, curation: api.curation, log };
    InspectorPanel.current?.dispose();
    if (a) InspectorPanel.show(context, deps, a, 'baseline', false);
    if (b) InspectorPanel.show(context, deps, b, 'compared', !!a);
  };
  const inspect = async (node: TrajectoryNode | undefined, toSide: boolean) => {
    if (!node || node.kind !== 'trajectory') return undefined;
    const tracked = store.get(node.fileKey);
    if (!tracked || !api.curation) return undefined;
    const t = await store.readTrajectory(tracked, node.position);
    return InspectorPanel.show(
      context,
      { service: api.searchService, curation: api.curation, log },
      t,
      vscode.workspace.asRelativePath(tracked.uri),
      toSide,
    );
  };
  const onInspector = async (fn: (p: InspectorPanel) => Promise<unknown>) => {
    const p = InspectorPanel.current;
    if (!p) {
      void vscode.window.showInformationMessage('DRAG: open a trajectory in the inspector first.');
      return undefined;
    }
    return fn(p);
  };
  return {
    'drag.inspectTrajectory': (node?: TrajectoryNode) => inspect(node, false),
    'drag.inspectTrajectoryToSide': (node?: TrajectoryNode) => inspect(node, true),
    'drag.inspectFailedSearch': (item?: FailedItem) =>
      item ? inspect({ kind: 'trajectory', fileKey: item.fileKey, position: item.position }, false) : undefined,
    'drag.acceptTrajectory': () => onInspector((p) => p.decide('accept')),
    'drag.rejectTrajectory': () => onInspector((p) => p.decide('reject')),
    'drag.undoCuration': () => onInspector((p) => p.decide('undo')),
    'drag.markLabelProblem': async (item?: FailedItem) => {
      if (item && api.curation) {
        const tracked = store.get(item.fileKey);
        const s = tracked?.index?.summaries[item.position];
        if (!s) return undefined;
        const reason = await vscode.window.showQuickPick(['wrong page', 'wrong document', 'answer not on the page'], {
          title: 'What is wrong with the label?',
        });
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
      if (item) await inspect({ kind: 'trajectory', fileKey: item.fileKey, position: item.position }, false);
      return onInspector(async (p) => p.edit(p.shown?.steps.filter((s) => s.query).pop()?.step ?? 1));
    },
    'drag.refreshFailedSearches': () => api.failedSearches?.refresh(),
    'drag.buildCorpus': () => buildCorpusCommand(context, log),
    'drag.createDemoWorkspace': async (dir?: unknown) => {
      const result = await createDemoWorkspace(context, log, typeof dir === 'string' ? dir : undefined);
      if (result) {
        await store.rescan();
        api.datasets?.refresh();
        api.evaluations?.refresh();
      }
      return result;
    },
    'drag.trainWriter': (dataset?: unknown) =>
      trainLocalWriter(context, log, typeof dataset === 'string' ? dataset : undefined),
    'drag.buildTrainingData': async (args?: PipelineArgs) => {
      const result = await buildTrainingData(context, log, args && typeof args === 'object' ? args : {});
      api.datasets?.refresh();
      return result;
    },
    'drag.evaluateModel': async (args?: CollectArgs) => {
      const result = await collectTrajectories(context, log, args && typeof args === 'object' ? args : {}, 'eval');
      api.evaluations?.refresh();
      return result;
    },
    'drag.compareEvaluations': async (first?: unknown, selected?: unknown) => {
      const folder = vscode.workspace.workspaceFolders?.[0];
      if (!folder) throw new Error('open a workspace folder first');
      const all = await listEvaluations(folder.uri.fsPath);
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
      const sorted = [...chosen].sort((x, y) =>
        ((x as EvaluationEntry).date ?? '').localeCompare((y as EvaluationEntry).date ?? ''),
      );
      return ComparePanel.show(context, log, [sorted[0], sorted[sorted.length - 1]], openBoth);
    },
    'drag.compareWithPrevious': async (item?: EvaluationEntry) => {
      const folder = vscode.workspace.workspaceFolders?.[0];
      if (!folder || !item) return undefined;
      const all = await listEvaluations(folder.uri.fsPath);
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
      const folder = vscode.workspace.workspaceFolders?.[0];
      if (!folder) throw new Error('open a workspace folder first');
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
        ['export-curated', '--workspace', folder.uri.fsPath, '--name', dataset, '--json'],
        { title: `DRAG: exporting ${dataset}`, log },
      );
      api.datasets?.refresh();
      const done = result.events.find((e) => (e as { type?: string }).type === 'done') as
        { accepted: number; pairs: number; edits: number } | undefined;
      if (result.code === 0 && done)
        void vscode.window.showInformationMessage(
          `DRAG: exported ${dataset}: ${done.accepted} accepted, ${done.pairs} pairs, ${done.edits} edited queries.`,
        );
      else void vscode.window.showErrorMessage(`DRAG: export failed; see the DRAG Studio log.`);
      return done;
    },
    'drag.collectTrajectories': async (args?: CollectArgs) => {
      const result = await collectTrajectories(context, log, args && typeof args === 'object' ? args : {});
      if (result) await store.rescan();
      return result;
    },
    'drag.setApiKey': () => setApiKey(context),
    'drag.searchCorpus': (query?: unknown) => openSearch(typeof query === 'string' ? query : undefined),
    'drag.searchStepQuery': async (node?: TrajectoryNode) => {
      if (!node || node.kind !== 'step') return undefined;
      const tracked = store.get(node.fileKey);
      if (!tracked) return undefined;
      const step = (await trajectories.steps(tracked, node.position)).find((s) => s.step === node.step);
      return openSearch(step?.query ?? '');
    },
    'drag.openTrajectoriesFile': async () => {
      const picked = await vscode.window.showOpenDialog({
        canSelectMany: true,
        openLabel: 'Open Trajectories',
        filters: { 'DRAG trajectories': ['jsonl'], 'All files': ['*'] },
      });
      for (const uri of picked ?? []) await store.add(uri);
      if (picked?.length) await vscode.commands.executeCommand('drag.trajectories.focus');
    },
    'drag.refreshTrajectories': () => store.rescan(),
    'drag.filterTrajectories': async () => {
      const value = await vscode.window.showInputBox({
        title: 'Filter Trajectories',
        prompt: 'Show trajectories whose question or any query contains this text (empty clears the filter)',
        value: trajectories.filter,
        placeHolder: 'e.g. capital expenditure',
      });
      if (value !== undefined) trajectories.setFilter(value);
    },
    'drag.clearTrajectoriesFilter': () => trajectories.setFilter(''),
    'drag.loadMore': (parentKey: string) => trajectories.loadMore(parentKey),
    'drag.showTrajectoryRecord': async (node?: TrajectoryNode) => {
      if (!node || node.kind !== 'trajectory') return;
      const tracked = store.get(node.fileKey);
      const line = tracked?.index?.lines[node.position];
      if (!tracked || line === undefined) return;
      const doc = await vscode.workspace.openTextDocument(
        RecordDocumentProvider.uriFor(tracked.uri, node.position, line),
      );
      await vscode.languages.setTextDocumentLanguage(doc, 'json');
      await vscode.window.showTextDocument(doc, { preview: true, preserveFocus: true });
    },
    'drag.revealTrajectoryLine': async (node?: TrajectoryNode) => {
      if (!node || node.kind !== 'trajectory') return;
      const tracked = store.get(node.fileKey);
      const line = tracked?.index?.lines[node.position];
      if (!tracked || line === undefined) return;
      const position = new vscode.Position(line - 1, 0);
      await vscode.window.showTextDocument(tracked.uri, { selection: new vscode.Range(position, position) });
    },
    'drag.showLog': () => log.show(),
    'drag.startTraining': (args?: TrainArgs) =>
      startTraining(context, log, args && typeof args === 'object' ? args : {}),
    'drag.refreshJobs': async () => {
      await api.jobs?.poll();
      api.jobs?.refresh();
    },
    'drag.openTrainingMonitor': async (job?: JobRecord | string) => {
      const root = workspaceRoot();
      let id = typeof job === 'string' ? job : job?.id;
      if (!id) {
        const { jobs } = await listJobs(root);
        if (jobs.length === 0)
          throw new Error('no jobs yet: start one with "DRAG: Start Training…" or drag jobs submit');
        id = (
          await vscode.window.showQuickPick(
            jobs.map((j) => ({
              label: j.name,
              description: `${j.last?.state ?? '?'} · ${j.host}`,
              detail: j.id,
              id: j.id,
            })),
            { placeHolder: 'Job to monitor' },
          )
        )?.id;
        if (!id) return undefined;
      }
      const panel = TrainingMonitorPanel.show(context, log, root, id, () => api.jobs?.refresh());
      void panel.refresh();
      return panel;
    },
    'drag.cancelJob': async (job?: JobRecord) => {
      if (!job?.id) return vscode.commands.executeCommand('drag.openTrainingMonitor');
      const ok = await vscode.window.showWarningMessage(
        `Cancel job ${job.name} (${job.id})?`,
        { modal: true },
        'Cancel Job',
      );
      if (ok !== 'Cancel Job') return undefined;
      const s = await cancelJob(workspaceRoot(), job.id);
      api.jobs?.refresh();
      void vscode.window.showInformationMessage(`DRAG: job ${job.name} ${s.state}.`);
      return s;
    },
    'drag.evaluateAdapter': async (
      job?: JobRecord | string,
      options?: { base?: string | null; questions?: string; vllm?: string },
    ) => {
      const id = typeof job === 'string' ? job : job?.id;
      if (!id) throw new Error('choose a finished training job in the Jobs view');
      const out = await evaluateAdapter(context, log, id, options && typeof options === 'object' ? options : {});
      api.evaluations?.refresh();
      return out;
    },
    'drag.continueWithDpo': async (job?: JobRecord | string, args?: TrainArgs) => {
      const record = typeof job === 'string' ? await readJob(workspaceRoot(), job) : job;
      if (!record?.id) throw new Error('choose a finished SFT job in the Jobs view');
      return startTraining(context, log, {
        ...(args && typeof args === 'object' ? args : {}),
        task: 'dpo',
        host: record.host,
        fromJob: record.id,
      });
    },
    'drag.cleanJob': async (job?: JobRecord) => {
      if (!job?.id) throw new Error('choose a finished job in the Jobs view');
      const ok = await vscode.window.showWarningMessage(
        `Delete the files of ${job.name} on ${job.host} (${job.remoteDir})? Checkpoints and an adapter not fetched yet are lost; the job stays listed.`,
        { modal: true },
        'Delete Remote Files',
      );
      if (ok !== 'Delete Remote Files') return undefined;
      const record = await cleanJob(workspaceRoot(), job.id);
      api.jobs?.refresh();
      return record;
    },
    'drag.fetchAdapter': async (job?: JobRecord | string) => {
      const id = typeof job === 'string' ? job : job?.id;
      if (!id) throw new Error('choose a finished training job in the Jobs view');
      const target = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `DRAG: fetching the adapter of ${id}` },
        () => fetchAdapter(workspaceRoot(), id),
      );
      api.jobs?.refresh();
      void vscode.window
        .showInformationMessage(`DRAG: adapter in ${vscode.workspace.asRelativePath(target)}.`, 'Reveal')
        .then((c) => c && vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(target)));
      return target;
    },
  };
}

export function activate(context: vscode.ExtensionContext): DragStudioApi {
  const log = vscode.window.createOutputChannel('DRAG Studio', { log: true });
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
    monitor: (id) => TrainingMonitorPanel.panels.get(id),
    searchService: () => {
      service ??= (async () => {
        const folder = vscode.workspace.workspaceFolders?.[0];
        if (!folder) throw new Error('open a folder first: the corpus lives in the workspace');
        const { config } = await loadConfig(folder.uri.fsPath);
        const s = new SearchService(context.asAbsolutePath('dist/cli.js'), corpusPaths(folder.uri.fsPath, config), log);
        context.subscriptions.push(s);
        return s;
      })();
      return service;
    },
  };
  const views: Views = { evaluations: null };
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (folder) {
    api.curation = new CurationStore(folder.uri.fsPath, log);
    api.failedSearches = new FailedSearchesProvider(store, api.curation, api.searchService);
    api.datasets = new DatasetsProvider(folder.uri.fsPath);
    trajectories.setCuration((id) => api.curation?.current().byTrajectory.get(id)?.status ?? null);
    context.subscriptions.push(
      api.curation,
      api.failedSearches,
      api.datasets,
      api.curation.onDidChange(() => trajectories.refresh()),
    );
    context.subscriptions.push(
      vscode.window.createTreeView('drag.failedSearches', { treeDataProvider: api.failedSearches }),
    );
    context.subscriptions.push(vscode.window.createTreeView('drag.datasets', { treeDataProvider: api.datasets }));
    api.evaluations = new EvaluationsProvider(folder.uri.fsPath);
    views.evaluations = vscode.window.createTreeView('drag.evaluations', {
      treeDataProvider: api.evaluations,
      canSelectMany: true,
    });
    context.subscriptions.push(api.evaluations, views.evaluations);
    const jobs = new JobsProvider(folder.uri.fsPath, log);
    api.jobs = jobs;
    const jobsView = vscode.window.createTreeView('drag.jobs', { treeDataProvider: jobs });
    jobs.setVisible(jobsView.visible);
    context.subscriptions.push(
      jobs,
      jobsView,
      jobsView.onDidChangeVisibility((e) => jobs.setVisible(e.visible)),
    );
  }
  context.subscriptions.push(
    log,
    store,
    trajectories,
    { dispose: () => SearchPanel.current?.dispose() },
    { dispose: () => InspectorPanel.current?.dispose() },
    { dispose: () => PairEditorPanel.current?.dispose() },
    { dispose: () => ComparePanel.current?.dispose() },
    {
      dispose: () => {
        for (const p of [...TrainingMonitorPanel.panels.values()]) p.dispose();
      },
    },
  );

  for (const [id, handler] of Object.entries(commandTable(api, context, log, views))) {
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async (...args: never[]) => {
        try {
          return await handler(...args);
        } catch (err) {
          log.error(`${id}: ${(err as Error).stack ?? err}`);
          void vscode.window.showErrorMessage(`DRAG: ${(err as Error).message}`, 'Show Log').then((choice) => {
            if (choice) log.show();
          });
          return undefined;
        }
      }),
    );
  }

  const view = vscode.window.createTreeView('drag.trajectories', {
    treeDataProvider: trajectories,
    showCollapseAll: true,
  });
  context.subscriptions.push(view);
  context.subscriptions.push(
    trajectories.onDidChangeFilter((filter) => {
      view.message = filter ? `Filter: "${filter}"` : undefined;
    }),
  );
  context.subscriptions.push(
    vscode.workspace.registerTextDocumentContentProvider(RECORD_SCHEME, new RecordDocumentProvider(store)),
  );
  void vscode.commands.executeCommand('setContext', 'drag:trajectoriesFiltered', false);

  // Scanning does I/O, so it starts after activation returns.
  setTimeout(() => void store.ready(), 0);
  log.info('DRAG Studio activated');
  return api;
}

export function deactivate(): void {
  // Everything is disposed through context.subscriptions.
}
