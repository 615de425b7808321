import * as assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './helpers';

describe('generated files (scripts/generate.mjs)', function () {
  this.timeout(300_000);
  let generated: Record<string, string> = {};
  before(async () => {
    const { generatedFiles } = (await import(path.join(ROOT, 'scripts', 'generate.mjs'))) as {
      generatedFiles: () => Promise<Record<string, string>>;
    };
    generated = await generatedFiles();
  });

  it('the two references and the trajectory check match their sources (else run npm run generate)', () => {
    assert.deepEqual(Object.keys(generated).sort(), [
      'docs/cli.md',
      'docs/configuration.md',
      'src/core/schema/trajectoryCheck.generated.ts',
    ]);
    for (const [file, text] of Object.entries(generated)) {
      assert.ok(text === readFileSync(path.join(ROOT, file), 'utf8'), `${file} is stale: run npm run generate`);
    }
  });

  it('the CLI reference has every command with its usage, the configuration reference every key', () => {
    const cli = generated['docs/cli.md'];
    for (const name of ['validate', 'corpus', 'collect', 'jobs', 'train', 'eval-adapter']) {
      assert.match(cli, new RegExp(`^## drag ${name}$`, 'm'));
    }
    assert.match(cli, /^drag collect --questions/m);
    const config = generated['docs/configuration.md'];
    for (const key of ['corpus.ocrFile', 'endpoints.<name>.baseUrl', 'hosts.<name>.slurm.partition']) {
      assert.ok(config.includes(`| \`${key}\` |`), `no row for ${key}`);
    }
    assert.match(config, /\| `drag\.collect\.concurrency` \| `8` \|/);
  });

  // The hand-written pages (the generated ones come from --help texts, checked above for staleness).
  const handWritten = () =>
    [
      'README.md',
      'CONTRIBUTING.md',
      'CHANGELOG.md',
      ...readdirSync(path.join(ROOT, 'docs'))
        .filter((f) => f.endsWith('.md') && !(`docs/${f}` in generated))
        .map((f) => `docs/${f}`),
    ].filter((f) => existsSync(path.join(ROOT, f)));

  it('the README stays a front page: at most 20 KB, with the tour and links to every guide', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'));
    assert.ok(readme.length <= 20 * 1024, `README.md is ${readme.length} bytes`);
    for (const guide of ['corpus-and-search', 'collecting', 'curation', 'evaluation', 'cli', 'configuration']) {
      assert.ok(readme.includes(`(docs/${guide}.md)`), `README does not link docs/${guide}.md`);
    }
  });

  it('no page points outside the repository or at the internal DRAG spec', () => {
    for (const file of handWritten()) {
      const text = readFileSync(path.join(ROOT, file), 'utf8');
      assert.doesNotMatch(text, /DRAG-SPEC|\.\.\/shared|\/work\/|\/root\//, `${file} points outside the repository`);
    }
  });

  it('relative links and images in the docs point at files that exist', () => {
    for (const file of handWritten()) {
      const text = readFileSync(path.join(ROOT, file), 'utf8');
      for (const m of text.matchAll(/\]\(([^)\s#]+)(#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(m[1])) continue;
        const target = path.join(ROOT, path.dirname(file), m[1]);
        assert.ok(existsSync(target), `${file}: ${m[1]} does not exist`);
      }
    }
  });
});
