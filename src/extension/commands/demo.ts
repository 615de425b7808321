import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { isDemoWorkspace } from '../../core/workspace/layout';
import { runCliJob } from '../jobs/cliJob';
import { workspaceRoot } from '../workspace';
import type { CommandDeps, Commands } from './registry';

/** "DRAG: Create Demo Workspace": the whole loop offline into an empty folder (drag demo). */
export async function createDemoWorkspace(
  context: vscode.ExtensionContext,
  log: vscode.LogOutputChannel,
  target?: string,
): Promise<string | undefined> {
  let dir = target;
  if (!dir) {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const empty = folder && readdirSync(folder).filter((f) => !f.startsWith('.')).length === 0;
    if (folder && empty) dir = folder;
    else {
      const picked = await vscode.window.showOpenDialog({
        canSelectFolders: true,
        canSelectFiles: false,
        title: 'An empty folder for the demo workspace',
        openLabel: 'Create Demo Here',
      });
      dir = picked?.[0]?.fsPath;
    }
  }
  if (!dir) return undefined;
  if (existsSync(path.join(dir, 'drag.config.json'))) {
    throw new Error(
      `${dir} already holds a DRAG workspace: choose an empty folder` +
        `${isDemoWorkspace(dir) ? ' (to rebuild this demo: drag demo <folder> --force)' : ''}`,
    );
  }
  const result = await runCliJob(context.asAbsolutePath('dist/cli.js'), ['demo', dir], {
    title: 'DRAG: creating the demo workspace',
    log,
    onEvent: () => undefined,
  });
  if (result.code !== 0) throw new Error('the demo failed; see the DRAG Studio log');
  const here = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath === dir;
  if (here) {
    await vscode.commands.executeCommand('drag.refreshTrajectories');
    void vscode.window
      .showInformationMessage(
        'DRAG: demo workspace ready: a run, a dataset, a trained writer and two evaluations to compare.',
        'Compare Evaluations',
      )
      .then((c) => c && vscode.commands.executeCommand('drag.compareEvaluations'));
  } else {
    // Not awaited: the command is done; the person may open the folder whenever they like.
    void vscode.window
      .showInformationMessage(`DRAG: demo workspace ready in ${dir}.`, 'Open Folder')
      .then((open) => open && vscode.commands.executeCommand('vscode.openFolder', vscode.Uri.file(dir)));
  }
  return dir;
}

/** "DRAG: Train Local Query Writer…": drag writer train on a dataset's sft_query data, into models/. */
export async function trainLocalWriter(
  context: vscode.ExtensionContext,
  log: vscode.LogOutputChannel,
  dataset?: string,
): Promise<string | undefined> {
  const root = workspaceRoot();
  const datasets = path.join(root, 'datasets');
  const available = existsSync(datasets)
    ? readdirSync(datasets)
        .filter((d) => existsSync(path.join(datasets, d, 'sft_query_train.jsonl')))
        .sort()
    : [];
  if (available.length === 0) throw new Error('no datasets/*/sft_query_train.jsonl: build training data first');
  const name =
    dataset ??
    (await vscode.window.showQuickPick(available, { title: 'Train the local query writer on which dataset?' }));
  if (!name) return undefined;
  const out = path.join(root, 'models', `writer-${name}.json`);
  const ocr = path.join(root, 'corpus', 'ocr_output.jsonl');
  const result = await runCliJob(
    context.asAbsolutePath('dist/cli.js'),
    ['writer', 'train', '--data', path.join(datasets, name, 'sft_query_train.jsonl'), '--ocr', ocr, '--out', out],
    { title: 'DRAG: training the local query writer', log },
  );
  if (result.code !== 0) throw new Error('training failed; see the DRAG Studio log');
  void vscode.window.showInformationMessage(
    `DRAG: writer trained: ${vscode.workspace.asRelativePath(out)}. Evaluate it with "DRAG: Evaluate Model…".`,
  );
  return out;
}

/** The offline demo: a whole workspace in one go, and the local query writer it trains. */
export function demoCommands({ api, context, log }: CommandDeps): Commands {
  return {
    'drag.createDemoWorkspace': async (dir?: unknown) => {
      const result = await createDemoWorkspace(context, log, typeof dir === 'string' ? dir : undefined);
      if (result) {
        await api.store.rescan();
        api.datasets?.refresh();
        api.evaluations?.refresh();
      }
      return result;
    },
    'drag.trainWriter': (dataset?: unknown) =>
      trainLocalWriter(context, log, typeof dataset === 'string' ? dataset : undefined),
  };
}
