import { fork } from 'node:child_process';
import { createInterface } from 'node:readline';
import * as vscode from 'vscode';

export interface CliJobResult {
  code: number | null;
  cancelled: boolean;
  events: unknown[];
  /** The last lines the CLI wrote to stderr (its error message, when it failed). */
  stderrTail: string[];
}

/**
 * Runs a `drag` command as a child process (VS Code's own runtime, so users need no Node) under a
 * cancellable progress notification: `--json` events on stdout drive the progress, stderr goes to
 * the log. Cancel sends SIGINT (the CLI stops cleanly, keeping what it wrote), then SIGKILL.
 */
export function runCliJob(
  cliPath: string,
  args: string[],
  options: {
    title: string;
    log: vscode.LogOutputChannel;
    env?: Record<string, string>;
    cwd?: string;
    onEvent?: (
      event: Record<string, unknown>,
      progress: vscode.Progress<{ message?: string; increment?: number }>,
    ) => void;
  },
): Thenable<CliJobResult> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: options.title, cancellable: true },
    (progress, token) =>
      new Promise<CliJobResult>((resolve) => {
        options.log.info(`drag ${args.join(' ')}`);
        const child = fork(cliPath, args, {
          cwd: options.cwd,
          stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
          env: { ...process.env, ELECTRON_RUN_AS_NODE: '1', ...options.env },
        });
        const events: unknown[] = [];
        let cancelled = false;
        createInterface({ input: child.stdout! }).on('line', (line) => {
          let event: Record<string, unknown>;
          try {
            event = JSON.parse(line) as Record<string, unknown>;
          } catch {
            options.log.info(line);
            return;
          }
          events.push(event);
          options.onEvent?.(event, progress);
        });
        const stderrTail: string[] = [];
        createInterface({ input: child.stderr! }).on('line', (line) => {
          options.log.info(line);
          stderrTail.push(line);
          if (stderrTail.length > 20) stderrTail.shift();
        });
        const sub = token.onCancellationRequested(() => {
          cancelled = true;
          child.kill('SIGINT');
          setTimeout(() => {
            if (child.exitCode === null) child.kill('SIGKILL');
          }, 3000).unref();
        });
        child.on('exit', (code) => {
          sub.dispose();
          resolve({ code, cancelled, events, stderrTail });
        });
      }),
  );
}
