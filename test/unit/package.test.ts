import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './helpers';

describe('the .vsix contents (vsce ls)', function () {
  this.timeout(60_000);
  const shipsTitle =
    'ships the bundles, the pdf worker, pdf.js, the native canvas and codicons, and no source maps or screenshots';
  it(shipsTitle, () => {
    const files = execFileSync(process.execPath, [path.join(ROOT, 'node_modules', '@vscode', 'vsce', 'vsce'), 'ls'], {
      cwd: ROOT,
      encoding: 'utf8',
    })
      .split('\n')
      .filter(Boolean);
    for (const f of [
      'package.json',
      'README.md',
      'LICENSE',
      'dist/extension.js',
      'dist/cli.js',
      'dist/cli-commands.js',
      'dist/cli-pipeline.js',
      'dist/pdfWorker.js',
      'dist/webview/inspector.js',
      'dist/webview/search.js',
      'dist/webview/pairs.js',
      'dist/webview/compare.js',
      'dist/schemas/drag.config.schema.json',
      'syntaxes/drag-query.tmLanguage.json',
      'node_modules/pdfjs-dist/legacy/build/pdf.mjs',
      'node_modules/pdfjs-dist/legacy/build/pdf.worker.mjs',
      'node_modules/@vscode/codicons/dist/codicon.css',
      'node_modules/@vscode/codicons/dist/codicon.ttf',
      'media/walkthrough/demo.md',
      'dist/webview/monitor.js',
      'trainer/pyproject.toml',
      'trainer/drag_trainer/__main__.py',
      'trainer/drag_trainer/train.py',
    ]) {
      assert.ok(files.includes(f), `${f} is not packaged`);
    }
    // Every file of the CLI, including the bundles it loads on demand (dist/cli-*.js).
    for (const f of readdirSync(path.join(ROOT, 'dist')).filter((n) => /^cli.*\.js$/.test(n)))
      assert.ok(files.includes(`dist/${f}`), `dist/${f} is not packaged`);
    assert.ok(
      files.some((f) => /^node_modules\/@napi-rs\/canvas-[\w-]+\/.*\.node$/.test(f)),
      'the native canvas binary is not packaged',
    );
    // Nothing that does not run: source maps (pdf.js ships .mjs.map), minified twins and the sandbox
    // of pdf.js, codicons' preview page and sprite, screenshots, sources, tests.
    const unshipped = new RegExp(
      String.raw`\.m?js\.map$|\.min\.mjs$|pdf\.sandbox|codicon\.(html|svg)$|^media\/screenshots\/|` +
        String.raw`^src\/|^test\/|__pycache__|^trainer\/tests\/`,
    );
    assert.deepEqual(
      files.filter((f) => unshipped.test(f)),
      [],
    );
  });
});

describe('the command tables', () => {
  // The integration suite checks the registered commands in VS Code; this catches a command
  // contributed but missing from every area's table (or the reverse) without starting VS Code.
  it('hold exactly the commands package.json contributes', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const contributed: string[] = pkg.contributes.commands.map((c: { command: string }) => c.command).sort();
    const dir = path.join(ROOT, 'src', 'extension', 'commands');
    const sources = [
      ...readdirSync(dir).map((f) => path.join(dir, f)),
      path.join(ROOT, 'src', 'extension', 'extension.ts'),
    ];
    const inTables = new Set<string>();
    for (const file of sources)
      for (const m of readFileSync(file, 'utf8').matchAll(/'(drag\.[\w.]+)': /g)) inTables.add(m[1]);
    assert.deepEqual([...inTables].sort(), contributed);
  });
});
