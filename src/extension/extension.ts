import { existsSync } from 'node:fs';
import * as vscode from 'vscode';
import { corpusPaths, loadConfig } from '../core/workspace/layout';
import { collectTrajectories, type CollectArgs, setApiKey } from './commands/collect';
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
}

type CommandHandler = (...args: never[]) => unknown;

/**
 * Every command in one table, registered before anything can fail (rust-analyzer's habit), so
 * no contributed command is ever "not found". scripts/check-commands.mjs checks this table
 * against package.json.
 */
function commandTable(api: DragStudioApi, context: vscode.ExtensionContext, log: vscode.LogOutputChannel): Record<string, CommandHandler> {
  const { trajectories, store } = api;
  const openSearch = async (query?: string) => {
    const service = await api.searchService();
    if (!existsSync(service.paths.ocrFile)) {
      const choice = await vscode.window.showErrorMessage(
        `DRAG: no corpus at ${vscode.workspace.asRelativePath(service.paths.ocrFile)}. Build it from PDFs with "drag corpus build", or set corpus.ocrFile in drag.config.json.`,
        'Open drag.config.json',
      );
      if (choice) await vscode.commands.executeCommand('vscode.open', vscode.Uri.joinPath(vscode.workspace.workspaceFolders![0].uri, 'drag.config.json'));
      return undefined;
    }
    return SearchPanel.show(context, service, log, query);
  };
  return {
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
      const doc = await vscode.workspace.openTextDocument(RecordDocumentProvider.uriFor(tracked.uri, node.position, line));
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
  context.subscriptions.push(log, store, trajectories, { dispose: () => SearchPanel.current?.dispose() });

  for (const [id, handler] of Object.entries(commandTable(api, context, log))) {
    context.subscriptions.push(vscode.commands.registerCommand(id, async (...args: never[]) => {
      try {
        return await handler(...args);
      } catch (err) {
        log.error(`${id}: ${(err as Error).stack ?? err}`);
        void vscode.window.showErrorMessage(`DRAG: ${(err as Error).message}`, 'Show Log').then((choice) => {
          if (choice) log.show();
        });
        return undefined;
      }
    }));
  }

  const view = vscode.window.createTreeView('drag.trajectories', { treeDataProvider: trajectories, showCollapseAll: true });
  context.subscriptions.push(view);
  context.subscriptions.push(trajectories.onDidChangeFilter((filter) => {
    view.message = filter ? `Filter: "${filter}"` : undefined;
  }));
  context.subscriptions.push(vscode.workspace.registerTextDocumentContentProvider(RECORD_SCHEME, new RecordDocumentProvider(store)));
  void vscode.commands.executeCommand('setContext', 'drag:trajectoriesFiltered', false);

  // Scanning does I/O, so it starts after activation returns.
  setTimeout(() => void store.ready(), 0);
  log.info('DRAG Studio activated');
  return api;
}

export function deactivate(): void {
  // Everything is disposed through context.subscriptions.
}
