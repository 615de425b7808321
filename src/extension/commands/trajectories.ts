import * as vscode from 'vscode';
import { InspectorPanel } from '../panels/inspectorPanel';
import { RecordDocumentProvider } from '../recordDocument';
import type { TrajectoryNode } from '../trajectories/tree';
import type { CommandDeps, Commands } from './registry';

/** Opens a trajectory of the tree in the inspector (reused, or a new one to the side). */
export async function inspectNode(
  { api, context, log }: CommandDeps,
  node: TrajectoryNode | undefined,
  toSide: boolean,
): Promise<InspectorPanel | undefined> {
  if (!node || node.kind !== 'trajectory') return undefined;
  const tracked = api.store.get(node.fileKey);
  if (!tracked || !api.curation) return undefined;
  const t = await api.store.readTrajectory(tracked, node.position);
  return InspectorPanel.show(
    context,
    { service: api.searchService, curation: api.curation, log },
    t,
    vscode.workspace.asRelativePath(tracked.uri),
    toSide,
  );
}

/** The Trajectories view: open files, filter, page, and show a trajectory (inspector, record, line). */
export function trajectoryCommands(deps: CommandDeps): Commands {
  const { trajectories, store } = deps.api;
  /** The file and line of a trajectory node, if it is one and its file is indexed. */
  const lineOf = (node: TrajectoryNode | undefined) => {
    if (!node || node.kind !== 'trajectory') return undefined;
    const tracked = store.get(node.fileKey);
    const line = tracked?.index?.lines[node.position];
    return tracked && line !== undefined ? { tracked, line, position: node.position } : undefined;
  };
  return {
    'drag.inspectTrajectory': (node?: TrajectoryNode) => inspectNode(deps, node, false),
    'drag.inspectTrajectoryToSide': (node?: TrajectoryNode) => inspectNode(deps, node, true),
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
      const at = lineOf(node);
      if (!at) return;
      const doc = await vscode.workspace.openTextDocument(
        RecordDocumentProvider.uriFor(at.tracked.uri, at.position, at.line),
      );
      await vscode.languages.setTextDocumentLanguage(doc, 'json');
      await vscode.window.showTextDocument(doc, { preview: true, preserveFocus: true });
    },
    'drag.revealTrajectoryLine': async (node?: TrajectoryNode) => {
      const at = lineOf(node);
      if (!at) return;
      const position = new vscode.Position(at.line - 1, 0);
      await vscode.window.showTextDocument(at.tracked.uri, { selection: new vscode.Range(position, position) });
    },
  };
}
