import * as vscode from 'vscode';
import type { EvaluationEntry } from '../../core/eval/discover';
import type { DragStudioApi } from '../api';
import { gate } from '../trust';

/** A command's handler: the arguments come from menus, keybindings, other commands or tests (untyped). */
export type CommandHandler = (...args: never[]) => unknown;

/** One area's commands, by id; each area module (commands/<area>.ts) exports a function returning them. */
export type Commands = Record<string, CommandHandler>;

/** What every area's commands are built from. */
export interface CommandDeps {
  api: DragStudioApi;
  context: vscode.ExtensionContext;
  log: vscode.LogOutputChannel;
  /** Tree views a command reads (the selection); filled in once the views exist. */
  views: { evaluations: vscode.TreeView<EvaluationEntry> | null };
}

/**
 * Registers every area's commands. This loop is the one place every handler passes through: in
 * Restricted Mode a command that needs trust starts nothing and says why (../trust.ts); an error
 * becomes a notice with the log one click away, never an unhandled rejection.
 */
export function registerCommands(areas: Commands[], log: vscode.LogOutputChannel): vscode.Disposable[] {
  const disposables: vscode.Disposable[] = [];
  for (const area of areas)
    for (const [id, ungated] of Object.entries(area)) {
      const handler = gate(id, ungated, log);
      disposables.push(
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
  return disposables;
}

/** Arguments a command was given as an object (from a test or another command), else none. */
export function objectArg<T extends object>(value: T | undefined): Partial<T> {
  return value && typeof value === 'object' ? value : {};
}
