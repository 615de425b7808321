import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { cmdQuote, posixLauncher, windowsLauncher, writeLaunchers } from '../../src/extension/terminalLauncher';
import { ROOT, useTempDir } from './helpers';

// Folder names a user's home or VS Code's install can have: spaces, quotes, `$`, backticks, parentheses.
const AWKWARD = `it's "my" $HOME \`x\` (1)`;
// Arguments that a shell in between would split, glob or expand.
const ARGS = ['search', '', 'net income', `"q"`, `it's`, '$HOME', '*', '--k=v w', 'line\nbreak', '\\'];

/** A fake runtime: records ELECTRON_RUN_AS_NODE and its argv, NUL-separated, and exits 42. */
function fakeRuntime(dir: string, record: string): string {
  const file = path.join(dir, 'run time');
  writeFileSync(
    file,
    `#!/bin/sh\nprintf '%s\\0' "$ELECTRON_RUN_AS_NODE" "$@" > '${record.replace(/'/g, `'\\''`)}'\nexit 42\n`,
    { mode: 0o755 },
  );
  return file;
}

describe('the drag launchers for VS Code terminals', function () {
  // Each case starts a shell or node: on a busy machine that takes seconds.
  this.timeout(60_000);
  const tmp = useTempDir();

  const shLauncherTitle =
    'the sh launcher, found on PATH, runs the runtime with the CLI and the arguments unchanged and forwards the exit ' +
    'code';
  it(shLauncherTitle, async function () {
    if (process.platform === 'win32') this.skip(); // sh launchers are tested where sh runs them
    const root = path.join(tmp(), AWKWARD);
    mkdirSync(root);
    const record = path.join(tmp(), 'argv');
    const cli = path.join(root, 'dist', 'cli.js');
    mkdirSync(path.dirname(cli));
    writeFileSync(cli, '// the bundled CLI\n');
    const bin = path.join(root, 'bin');
    await writeLaunchers(bin, { runtime: fakeRuntime(root, record), cli });
    const r = spawnSync('drag', ARGS, { env: { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH}` } });
    assert.equal(r.status, 42, `exit code; stderr: ${r.stderr}`);
    const seen = readFileSync(record, 'utf8').split('\0').slice(0, -1);
    assert.deepEqual(seen, ['1', cli, ...ARGS]);
  });

  it('runs a real script with the real node runtime: stdout, arguments and exit code come through', async function () {
    if (process.platform === 'win32') this.skip();
    const root = path.join(tmp(), AWKWARD);
    mkdirSync(root, { recursive: true });
    const cli = path.join(root, 'cli.js');
    writeFileSync(cli, 'process.stdout.write(JSON.stringify(process.argv.slice(2))); process.exitCode = 3;\n');
    await writeLaunchers(root, { runtime: process.execPath, cli });
    const r = spawnSync(path.join(root, 'drag'), ARGS, { encoding: 'utf8' });
    assert.equal(r.status, 3, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), ARGS);
  });

  it('the built CLI prints the package version through the launcher', async function () {
    const built = path.join(ROOT, 'dist', 'cli.js');
    if (process.platform === 'win32' || !existsSync(built)) {
      console.log('      (skipped: dist/cli.js is not built, run npm run build)');
      this.skip();
    }
    await writeLaunchers(tmp(), { runtime: process.execPath, cli: built });
    const r = spawnSync(path.join(tmp(), 'drag'), ['--version'], { encoding: 'utf8' });
    const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), version);
  });

  it('says the extension moved, with exit code 127, when the CLI it points at is gone', async function () {
    if (process.platform === 'win32') this.skip();
    const record = path.join(tmp(), 'argv');
    await writeLaunchers(tmp(), {
      runtime: fakeRuntime(tmp(), record),
      cli: path.join(tmp(), 'old-version', 'cli.js'),
    });
    const r = spawnSync(path.join(tmp(), 'drag'), ['--version'], { encoding: 'utf8' });
    assert.equal(r.status, 127);
    assert.match(r.stderr, /DRAG Studio extension has moved.*reload the VS Code window/);
    assert.ok(!existsSync(record), 'the runtime must not run');
  });

  it('writes executable launchers, rewrites only what changed, and adds drag.cmd on Windows', async () => {
    const target = { runtime: '/opt/VS Code/code', cli: '/ext/drag-studio-0.1.0/dist/cli.js' };
    const file = path.join(tmp(), 'bin', 'drag');
    assert.deepEqual(await writeLaunchers(path.join(tmp(), 'bin'), target, 'linux'), [file]);
    assert.equal(statSync(file).mode & 0o111, 0o111, 'executable');
    assert.equal(readFileSync(file, 'utf8'), posixLauncher(target));
    assert.deepEqual(await writeLaunchers(path.join(tmp(), 'bin'), target, 'linux'), [], 'unchanged: not rewritten');
    // An update moves the extension folder: the same PATH folder now points at the new CLI.
    const updated = { ...target, cli: '/ext/drag-studio-0.2.0/dist/cli.js' };
    assert.deepEqual(await writeLaunchers(path.join(tmp(), 'bin'), updated, 'win32'), [file, `${file}.cmd`]);
    assert.match(readFileSync(file, 'utf8'), /drag-studio-0\.2\.0/);
    assert.equal(readFileSync(`${file}.cmd`, 'utf8'), windowsLauncher(updated));
    rmSync(`${file}.cmd`);
    assert.deepEqual(await writeLaunchers(path.join(tmp(), 'bin'), updated, 'linux'), [], 'no drag.cmd off Windows');
  });

  it('the cmd launcher quotes both paths, keeps % literal, passes %* and returns the exit code', () => {
    const text = windowsLauncher({
      runtime: 'C:\\Program Files\\Microsoft VS Code\\Code.exe',
      cli: 'C:\\Users\\A & B 100%\\.vscode\\extensions\\drag-studio-0.1.0\\dist\\cli.js',
    });
    const lines = text.split('\r\n');
    assert.equal(lines.at(-1), '', 'CRLF line ends, ending in one');
    assert.ok(!text.replace(/\r\n/g, '').includes('\n'), 'no bare LF');
    const cli = '"C:\\Users\\A & B 100%%\\.vscode\\extensions\\drag-studio-0.1.0\\dist\\cli.js"';
    assert.ok(lines.includes('setlocal DisableDelayedExpansion'));
    assert.ok(lines.includes('set "ELECTRON_RUN_AS_NODE=1"'));
    assert.ok(lines.includes(`"C:\\Program Files\\Microsoft VS Code\\Code.exe" ${cli} %*`));
    assert.ok(lines.includes(`if not exist ${cli} goto moved`));
    const run = lines.findIndex((l) => l.endsWith(' %*'));
    assert.equal(lines[run + 1], 'exit /b %ERRORLEVEL%', 'the exit code is read right after the run');
    assert.throws(() => cmdQuote('C:\\a"b'), /quote or line break/);
  });
});
