import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { SearchPanel } from '../panels/searchPanel';
import type { TrajectoryNode } from '../trajectories/tree';
import { workspaceRoot } from '../workspace';
import { buildCorpusCommand } from './pipeline';
import type { CommandDeps, Commands } from './registry';

/** The corpus and its search: build it from PDFs, search it, search a step's query. */
export function corpusCommands({ api, context, log }: CommandDeps): Commands {
  const openSearch = async (query?: string) => {
    const service = await api.searchService();
    if (!existsSync(service.paths.ocrFile)) {
      const choice = await vscode.window.showErrorMessage(
        `DRAG: no corpus at ${vscode.workspace.asRelativePath(service.paths.ocrFile)}. ` +
          'Build it from PDFs with "drag corpus build", or set corpus.ocrFile in drag.config.json.',
        'Open drag.config.json',
      );
      if (choice)
        await vscode.commands.executeCommand(
          'vscode.open',
          vscode.Uri.file(path.join(workspaceRoot(), 'drag.config.json')),
        );
      return undefined;
    }
    return SearchPanel.show(context, service, log, query);
  };
  return {
    'drag.buildCorpus': async () => {
      const result = await buildCorpusCommand(context, log);
      // A search service waiting out its back-off on a missing corpus starts again now.
      (await api.searchService()).restart();
      return result;
    },
    'drag.searchCorpus': (query?: unknown) => openSearch(typeof query === 'string' ? query : undefined),
    'drag.searchStepQuery': async (node?: TrajectoryNode) => {
      if (!node || node.kind !== 'step') return undefined;
      const tracked = api.store.get(node.fileKey);
      if (!tracked) return undefined;
      const step = (await api.trajectories.steps(tracked, node.position)).find((s) => s.step === node.step);
      return openSearch(step?.query ?? '');
    },
  };
}
