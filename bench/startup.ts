/**
 * Start-up benchmark: `drag --version` and `drag <command> --help` (the built dist/cli.js) against
 * `node -e 0` in the same run, median of N alternating rounds; target <= 1.5 x bare node. Also the
 * extension's own activation: a child process loads dist/extension.js with a stub `vscode` module
 * and calls activate() with no workspace folder, timing require and activate separately. The stub
 * answers every API call at once, so this is the extension's own cost, not VS Code's; VS Code adds
 * its extension host on top.
 *
 * Usage: npm run bench -- startup [--rounds 10]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '10' } } });
const ROUNDS = Number(values.rounds);
const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const EXTENSION = path.join(ROOT, 'dist', 'extension.js');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Loads the extension against a `vscode` that is a bottomless stub: every property is a function
 * that returns another stub (so createOutputChannel(...).info(...), registerCommand(...) and
 * `new EventEmitter()` all work), workspaceFolders is undefined, and thenables never resolve. The
 * extension context is a plain object with file URIs (global storage in a temporary folder, where
 * activation writes the terminal's `drag` launchers): activate() runs to its end, and an error
 * there is printed, since a stub that lets it stop early would time only part of it.
 */
const ACTIVATE =
  `
const Module = require('node:module');
const stub = () => new Proxy(function () {}, {
  get: (t, k) => (k === 'then' || k === 'workspaceFolders' || k === Symbol.toPrimitive ? undefined : ` +
  `k === Symbol.iterator ? [][Symbol.iterator] : stub()),
  apply: () => stub(),
  construct: () => stub(),
});
const vscode = stub();
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) { ` +
  `return request === 'vscode' ? 'vscode' : resolve.call(this, request, ...rest); };
require.cache.vscode = { id: 'vscode', filename: 'vscode', loaded: true, exports: Object.create(vscode) };
const t0 = performance.now();
const ext = require(process.argv[2]);
const t1 = performance.now();
const fileUri = (p) => ({ scheme: 'file', fsPath: p, path: p, toString: () => 'file://' + p });
const storage = require('node:fs').mkdtempSync(` +
  `require('node:path').join(require('node:os').tmpdir(), 'drag-bench-activate-'));
const context = { subscriptions: [], extensionPath: ${JSON.stringify(ROOT)}, ` +
  `asAbsolutePath: (p) => require('node:path').join(${JSON.stringify(ROOT)}, p),
  globalState: stub(), workspaceState: stub(), secrets: stub(), extensionUri: fileUri(${JSON.stringify(ROOT)}),
  globalStorageUri: fileUri(storage), storageUri: undefined, logUri: fileUri(storage), ` +
  `environmentVariableCollection: stub() };
let error = null;
try { ext.activate(context); } catch (e) { error = String(e && e.message || e); }
const t2 = performance.now();
process.stdout.write(JSON.stringify({ require_ms: t1 - t0, activate_ms: t2 - t1, error }));
require('node:fs').rmSync(storage, { recursive: true, force: true });
process.exit(0);
`;

function wall(argv: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, argv, { encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`node ${argv.join(' ')} failed: ${r.stderr}`);
  return ms;
}

function main(): void {
  if (!existsSync(CLI) || !existsSync(EXTENSION)) {
    console.log(`skipped: ${CLI} or ${EXTENSION} is not built (npm run build)`);
    console.log(JSON.stringify({ bench: 'startup', ratio: null, skipped: 'not built' }));
    return;
  }
  const cases: Record<string, string[]> = {
    'node -e 0': ['-e', '0'],
    'drag --version': [CLI, '--version'],
    'drag process --help': [CLI, 'process', '--help'],
    'drag corpus --help': [CLI, 'corpus', '--help'],
    'drag collect --help': [CLI, 'collect', '--help'],
  };
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  const work = mkdtempSync(path.join(tmpdir(), 'drag-bench-startup-'));
  const activateScript = path.join(work, 'activate.js');
  writeFileSync(activateScript, ACTIVATE);
  const activation: Array<{ require_ms: number; activate_ms: number; error: string | null }> = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const order = Object.keys(cases);
      if (round % 2) order.reverse();
      for (const k of order) times[k].push(wall(cases[k]));
      const r = spawnSync(process.execPath, [activateScript, EXTENSION], { encoding: 'utf8' });
      activation.push(JSON.parse(r.stdout));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const base = median(times['node -e 0']);
  const rows = Object.keys(cases).map((k) => ({
    case: k,
    ms: Math.round(median(times[k])),
    ratio: Number((median(times[k]) / base).toFixed(3)),
  }));
  for (const r of rows)
    console.log(`${r.case.padEnd(22)} ${String(r.ms).padStart(5)} ms  ${r.ratio.toFixed(2)} x node -e 0`);
  const requireMs = median(activation.map((a) => a.require_ms));
  const activateMs = median(activation.map((a) => a.activate_ms));
  const error = activation.find((a) => a.error)?.error ?? null;
  console.log(
    `extension: require dist/extension.js ${requireMs.toFixed(1)} ms, activate() ${activateMs.toFixed(1)} ms ` +
      `(stub vscode, no folder, median of ${ROUNDS})${error ? `; activate threw with the stub: ${error}` : ''}`,
  );
  const worst = Math.max(...rows.slice(1).map((r) => r.ratio));
  console.log(
    JSON.stringify({
      bench: 'startup',
      ratio: worst,
      target: 1.5,
      node_ms: Math.round(base),
      cases: rows,
      extension_require_ms: Number(requireMs.toFixed(1)),
      extension_activate_ms: Number(activateMs.toFixed(1)),
      extension_activate_error: error,
    }),
  );
}

main();
