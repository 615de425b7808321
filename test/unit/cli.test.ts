import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { COMMANDS, runCli } from '../../src/cli/main';
import { BROKEN_RUN, ROOT, useTempDir } from './helpers';

/** Runs the CLI from source and collects its output. */
async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(
    argv,
    { stdout: (t) => (out += t), stderr: (t) => (err += t) },
    new AbortController().signal,
  );
  return { code, out, err };
}

describe('drag command table (commands load only when they run)', () => {
  const tmp = useTempDir();
  it('every entry loads the command of its name, and the names are unique', async () => {
    assert.equal(new Set(COMMANDS.map((c) => c.name)).size, COMMANDS.length);
    for (const entry of COMMANDS) {
      const command = await entry.load();
      assert.equal(command.name, entry.name);
      assert.equal(typeof command.run, 'function');
      assert.ok(
        command.usage.startsWith(`drag ${entry.name}`),
        `${entry.name}: usage starts "${command.usage.slice(0, 30)}"`,
      );
    }
  });

  const builtHelpTitle =
    'the built dist/cli.js prints the same help as the source, and runs a command from dist/cli-commands.js';
  it(builtHelpTitle, async function () {
    // Twenty-odd CLI starts: on a busy machine each can take a second or more.
    this.timeout(300_000);
    const cli = path.join(ROOT, 'dist', 'cli.js');
    if (!existsSync(cli)) {
      console.log('      skipped: dist/cli.js is not built (npm run build)');
      this.skip();
    }
    const built = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
    assert.equal(built(['--help']).stdout, (await run(['--help'])).out);
    for (const entry of COMMANDS)
      assert.equal(built([entry.name, '--help']).stdout, (await run([entry.name, '--help'])).out);
    const version = built(['--version']);
    assert.equal(version.status, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
    // A real command, so the lazy load of dist/cli-commands.js is exercised.
    const validate = built([
      'validate',
      path.join(ROOT, 'test', 'fixtures', 'workspace', 'runs', 'qwen-base', 'trajectories.jsonl'),
    ]);
    assert.equal(validate.status, 0, validate.stderr);
    assert.match(validate.stdout + validate.stderr, /8 valid records/);
  });

  it('the built drag process loads zod only for a line that fails the generated check', function () {
    this.timeout(120_000);
    const cli = path.join(ROOT, 'dist', 'cli.js');
    if (!existsSync(cli)) {
      console.log('      skipped: dist/cli.js is not built (npm run build)');
      this.skip();
    }
    // Compiling zod was most of the command's start-up: its bundle holds none, and loads it on demand.
    const bundle = readFileSync(path.join(ROOT, 'dist', 'cli-pipeline.js'), 'utf8');
    assert.doesNotMatch(bundle, /\$ZodType|ZodError/);
    assert.match(bundle, /require\("\.\/cli-schema-trajectory\.js"\)/);
    const out = path.join(tmp(), 'processed.jsonl');
    const r = spawnSync(process.execPath, [cli, 'process', '-i', BROKEN_RUN, '-o', out], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    // zod's own messages, with the field paths, from the bundle loaded on demand.
    assert.match(r.stderr, /:3: question: Invalid input: expected string, received number/);
    assert.match(r.stderr, /:6: iterations\[1\]\.results\[0\]\.page_number: Invalid input: expected number/);
    assert.match(r.stderr, /^2 trajectories: /m);
  });

  it('leaves --help after -- to the remote command', async () => {
    // Without the rule, drag printed its own usage and submitted nothing.
    const r = await run(['jobs', 'submit', '--host', 'no-such-host', '--', 'python', 'x.py', '--help']);
    assert.doesNotMatch(r.out, /^drag jobs/);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /no-such-host/);
    assert.match((await run(['jobs', '--help', '--', 'x'])).out, /^drag jobs/);
  });

  it('an unknown command lists every command with its summary', async () => {
    const r = await run(['nope']);
    assert.equal(r.code, 2);
    for (const entry of COMMANDS) assert.match(r.err, new RegExp(`\\n  ${entry.name} +\\S`));
  });
});
