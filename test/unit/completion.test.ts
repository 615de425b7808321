import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { commandWords } from '../../src/cli/commands/completion';
import { COMMANDS, runCli } from '../../src/cli/main';
import { ROOT, useTempDir } from './helpers';

async function script(shell: string): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(
    ['completion', shell],
    { stdout: (t) => (out += t), stderr: (t) => (err += t) },
    new AbortController().signal,
  );
  return { code, out, err };
}

describe('drag completion', function () {
  // Each case starts bash or the CLI: on a busy machine that takes seconds.
  this.timeout(120_000);
  const tmp = useTempDir();

  /** What the bash script offers for the words typed so far (the last one is being completed). */
  function bashComplete(file: string, words: string[]): string[] {
    const r = spawnSync(
      'bash',
      [
        '-c',
        'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _drag; printf "%s\\n" "${COMPREPLY[@]}"',
        'bash',
        file,
        ...words,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean);
  }

  it('completes command names, then the command options its --help lists, in bash', async () => {
    const { code, out } = await script('bash');
    assert.equal(code, 0);
    assert.match(out, /^complete -o default -F _drag drag$/m);
    const file = path.join(tmp(), 'drag.bash');
    writeFileSync(file, out);
    assert.deepEqual(bashComplete(file, ['drag', 'col']), ['collect']);
    assert.deepEqual(bashComplete(file, ['drag', 'collect', '--ques']), ['--questions']);
    assert.deepEqual(bashComplete(file, ['drag', 'collect', '--out', 'x', '--max-t']), ['--max-tokens']);
    assert.deepEqual(bashComplete(file, ['drag', 'jobs', 's']), ['status', 'submit']);
    assert.deepEqual(bashComplete(file, ['drag', 'hosts', 'check', 'gpu', '--t']), ['--timeout']);
    // Every command of the table is offered, and nothing after a word that is not an option.
    assert.deepEqual(
      bashComplete(file, ['drag', '']).sort(),
      [...COMMANDS.map((c) => c.name), '--help', '--version'].sort(),
    );
    assert.deepEqual(bashComplete(file, ['drag', 'collect', '--out', 'ru']), []);
  });

  it('takes the options from the usage texts, including "every drag collect option"', async () => {
    const words = commandWords(await Promise.all(COMMANDS.map((c) => c.load())));
    const of = (name: string) => words.find((w) => w.name === name)!;
    assert.ok(of('collect').options.includes('--sampling-config'));
    assert.ok(of('eval').options.includes('--sampling-config'), 'eval takes every collect option');
    assert.deepEqual(of('hosts'), {
      name: 'hosts',
      summary: of('hosts').summary,
      subcommands: ['check'],
      options: ['--help', '--json', '--timeout', '--workspace'],
    });
    assert.deepEqual(of('completion').subcommands, []);
  });

  it('prints a zsh script that zsh parses', async function () {
    const { code, out } = await script('zsh');
    assert.equal(code, 0);
    assert.match(out, /^#compdef drag\n/);
    assert.match(out, /compdef _drag drag/);
    assert.match(out, /^ {4}'collect:.+'$/m);
    const zsh = spawnSync('zsh', ['--version']);
    if (zsh.error) {
      console.log('      skipped zsh -n: zsh is not installed (apt-get install zsh)');
      return this.skip();
    }
    const file = path.join(tmp(), '_drag');
    writeFileSync(file, out);
    const r = spawnSync('zsh', ['-n', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  it('refuses a shell it does not know, with usage', async () => {
    const { code, err } = await script('fish');
    assert.equal(code, 2);
    assert.match(err, /bash or zsh, not "fish"/);
  });

  it('the built dist/cli.js prints the same bash script as the source', async function () {
    const cli = path.join(ROOT, 'dist', 'cli.js');
    if (!existsSync(cli)) {
      console.log('      skipped: no dist/cli.js (run npm run build)');
      return this.skip();
    }
    const built = spawnSync(process.execPath, [cli, 'completion', 'bash'], { encoding: 'utf8' });
    assert.equal(built.status, 0, built.stderr);
    assert.equal(built.stdout, (await script('bash')).out);
  });
});
