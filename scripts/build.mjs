// One esbuild config for every output: the extension (cjs, `vscode` external), the `drag` CLI,
// one browser bundle per webview panel, and the integration test suite that runs inside VS Code.
// Also writes the JSON Schema of drag.config.json, generated from the zod schema.
import { build, context } from 'esbuild';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

const common = {
  bundle: true,
  sourcemap: production ? false : 'linked',
  minify: production,
  logLevel: 'warning',
  absWorkingDir: root,
};

// `drag --version` and the extension report the package's version.
const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const node = {
  ...common,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  define: { __DRAG_VERSION__: JSON.stringify(version) },
};

const webviewDir = path.join(root, 'webview');
const panels = existsSync(webviewDir)
  ? readdirSync(webviewDir, { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(path.join(webviewDir, d.name, 'main.ts')))
      .map((d) => d.name)
  : [];

const configs = [
  {
    ...node,
    entryPoints: { extension: 'src/extension/extension.ts' },
    outdir: 'dist',
    external: ['vscode', 'pdfjs-dist', '@napi-rs/canvas'],
  },
  // pdf.js and the native canvas stay in node_modules (loaded at run time by the worker only).
  {
    ...node,
    entryPoints: { cli: 'src/cli/cli.ts', pdfWorker: 'src/core/corpus/worker.ts' },
    outdir: 'dist',
    external: ['pdfjs-dist', '@napi-rs/canvas'],
  },
  ...panels.map((panel) => ({
    ...common,
    platform: 'browser',
    target: 'es2022',
    format: 'iife',
    entryPoints: { [panel]: `webview/${panel}/main.ts` },
    outdir: 'dist/webview',
  })),
  {
    ...node,
    entryPoints: { index: 'test/integration/suite/index.ts', tests: 'test/integration/suite/tests.ts' },
    outdir: 'dist/test/integration',
    external: ['vscode', 'mocha'],
  },
];

async function writeConfigSchema() {
  // Bundle the schema module to a temp cjs file and call it, so the JSON Schema comes from zod itself.
  const out = path.join(root, 'dist', '.schema-gen.cjs');
  await build({
    ...node,
    entryPoints: ['src/core/schema/config.ts'],
    outfile: out,
    sourcemap: false,
    logLevel: 'error',
  });
  const require = createRequire(import.meta.url);
  const { dragConfigJsonSchema } = require(out);
  rmSync(out, { force: true });
  rmSync(`${out}.map`, { force: true });
  mkdirSync(path.join(root, 'dist', 'schemas'), { recursive: true });
  writeFileSync(
    path.join(root, 'dist', 'schemas', 'drag.config.schema.json'),
    `${JSON.stringify(dragConfigJsonSchema(), null, 2)}\n`,
  );
}

if (watch) {
  for (const config of configs) await (await context(config)).watch();
  console.log('[build] watching');
} else {
  const started = Date.now();
  await Promise.all([...configs.map((c) => build(c)), writeConfigSchema()]);
  console.log(`[build] ${configs.length} bundles + config schema in ${Date.now() - started} ms`);
}
