import path from 'node:path';
import * as vscode from 'vscode';
import { writeLaunchers } from './terminalLauncher';

/** The setting that puts `drag` on the PATH of VS Code's terminals (default on). */
export const ADD_CLI_TO_PATH = 'drag.terminal.addCliToPath';

/**
 * Puts `drag` on the PATH of the terminals VS Code opens from now on, through the extension's
 * environment variable collection, and follows `drag.terminal.addCliToPath` live (VS Code marks open
 * terminals as needing a relaunch when it changes).
 *
 * The launchers are written into global storage at activation, with the runtime and CLI paths in them,
 * rather than shipped in the package: a file's executable bit does not survive every way a .vsix is built
 * and unpacked, and the PATH entry stays the same folder across extension updates, so terminals opened
 * before an update run the new version as soon as it activates and rewrites the launcher.
 */
export function registerCliOnPath(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): vscode.Disposable {
  const collection = context.environmentVariableCollection;
  collection.description = 'Puts the DRAG Studio command line, `drag`, on PATH (setting `drag.terminal.addCliToPath`).';
  if (context.globalStorageUri.scheme !== 'file') {
    log.warn(
      `drag is not put on the terminal PATH: global storage is not a local folder (${context.globalStorageUri})`,
    );
    collection.clear();
    return new vscode.Disposable(() => undefined);
  }
  const dir = path.join(context.globalStorageUri.fsPath, 'bin');
  const target = { runtime: process.execPath, cli: context.asAbsolutePath(path.join('dist', 'cli.js')) };
  let written: Promise<void> | null = null;
  const apply = () => {
    if (!vscode.workspace.getConfiguration().get<boolean>(ADD_CLI_TO_PATH, true)) {
      collection.clear();
      return;
    }
    // Set before the files are written, so a terminal opened meanwhile gets it too: the few bytes are
    // written long before anyone types `drag` there.
    collection.prepend('PATH', dir + path.delimiter);
    written ??= writeLaunchers(dir, target).then(
      (files) => {
        for (const f of files) log.info(`wrote the drag launcher ${f}`);
      },
      (err: unknown) => {
        written = null;
        collection.clear();
        log.error(`drag is not put on the terminal PATH: writing its launcher in ${dir} failed: ${String(err)}`);
      },
    );
  };
  apply();
  return vscode.workspace.onDidChangeConfiguration((e) => {
    if (e.affectsConfiguration(ADD_CLI_TO_PATH)) apply();
  });
}
