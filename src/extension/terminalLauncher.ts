import { chmod, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../core/io/write';
import { shQuote } from '../core/jobs/quote';

/**
 * The `drag` launchers that put the bundled CLI on the PATH of VS Code's terminals: text generation and
 * writing, without `vscode`, so plain-Node tests run them (terminalPath.ts contributes the folder to PATH).
 * They run the CLI with VS Code's own runtime and ELECTRON_RUN_AS_NODE=1, the way VS Code's own `code`
 * launcher runs its cli.js, so a user needs no Node install.
 */

/** What a launcher runs: `runtime` (the extension host's `process.execPath`) with `cli` (dist/cli.js). */
export interface LauncherTarget {
  runtime: string;
  cli: string;
}

const HEADER = 'Written by the DRAG Studio extension on activation; rewritten when VS Code or the extension moves.';
const STALE = 'drag: the DRAG Studio extension has moved (updated or uninstalled); reload the VS Code window.';

/**
 * A POSIX sh launcher: `exec` keeps the exit code and signals the CLI's own, and `"$@"` passes every
 * argument unchanged. Paths are single-quoted by the one shell quoting function, so spaces, quotes and
 * `$` in them stay literal.
 */
export function posixLauncher(target: LauncherTarget): string {
  return [
    '#!/bin/sh',
    `# ${HEADER}`,
    `cli=${shQuote(target.cli)}`,
    // An update deletes the old extension folder; until the new version rewrites this file, say so.
    `if [ ! -f "$cli" ]; then echo ${shQuote(STALE)} >&2; exit 127; fi`,
    `ELECTRON_RUN_AS_NODE=1 exec ${shQuote(target.runtime)} "$cli" "$@"`,
    '',
  ].join('\n');
}

/**
 * Quotes a path for a cmd.exe batch file: inside double quotes only `%` still expands (as `%%` it stays
 * one `%`; delayed expansion, which would give `!` a meaning, is turned off by the launcher). Windows paths
 * cannot hold `"` or line breaks, so such a path is refused rather than half-quoted.
 */
export function cmdQuote(file: string): string {
  if (/["\r\n\0]/.test(file))
    throw new Error(`cannot write a cmd.exe launcher for a path with a quote or line break: ${file}`);
  return `"${file.replace(/%/g, '%%')}"`;
}

/** A Windows launcher: `%*` passes the arguments as typed; `exit /b` hands back the CLI's exit code. */
export function windowsLauncher(target: LauncherTarget): string {
  return [
    '@echo off',
    `rem ${HEADER}`,
    'setlocal DisableDelayedExpansion',
    `if not exist ${cmdQuote(target.cli)} goto moved`,
    'set "ELECTRON_RUN_AS_NODE=1"',
    `${cmdQuote(target.runtime)} ${cmdQuote(target.cli)} %*`,
    'exit /b %ERRORLEVEL%',
    // Outside a parenthesised block, so the message's own parentheses need no escaping.
    ':moved',
    `echo ${STALE} 1>&2`,
    'exit /b 127',
    '',
  ].join('\r\n');
}

/**
 * Writes `drag` (sh: Linux, macOS, Git Bash on Windows) and, on Windows, `drag.cmd` (cmd, PowerShell) into
 * `dir`. A launcher that already holds the same text is left alone: cmd.exe reads a running batch file as
 * it goes, and a rewrite under it would break that run. Returns the files it (re)wrote.
 */
export async function writeLaunchers(
  dir: string,
  target: LauncherTarget,
  platform: NodeJS.Platform = process.platform,
): Promise<string[]> {
  const launchers: [string, string][] = [['drag', posixLauncher(target)]];
  if (platform === 'win32') launchers.push(['drag.cmd', windowsLauncher(target)]);
  const written: string[] = [];
  for (const [name, text] of launchers) {
    const file = path.join(dir, name);
    const current = await readFile(file, 'utf8').catch(() => null);
    if (current !== text) {
      await writeFileAtomic(file, text);
      written.push(file);
    }
    // Also when unchanged: a copy restored from a backup or synced without its mode would not run.
    await chmod(file, 0o755);
  }
  return written;
}
