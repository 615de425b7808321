// One esbuild config for every output: the extension (cjs, `vscode` external), the `drag` CLI (a few files),
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
  // The pdf.js worker; pdf.js and the native canvas stay in node_modules (loaded at run time by the worker only).
  {
    ...node,
    entryPoints: { pdfWorker: 'src/core/corpus/worker.ts' },
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

// The `drag` CLI is a few files, so that `drag --version` and `drag <command> --help` compile a few
// kilobytes instead of every command: dist/cli-commands.js holds the commands (src/cli/commands/*.ts),
// each evaluated only when loaded, and dist/cli.js the entry, the command table and each command's
// name, summary and usage, read from the built commands. The commands of OWN_BUNDLE are bundles of
// their own, dist/cli-<file>.js, so that running one compiles only its code, not all 2.5 MB of the
// others (`drag process` and `drag format` run once per data set, twice in a row, on big files).
// src/cli/main.ts imports './commands/<file>.js' only lazily; here such an import becomes
// require('./cli-<file>.js') for those, else require('./cli-commands.js').load(file).
const OWN_BUNDLE = ['pipeline'];
const commandFiles = readdirSync(path.join(root, 'src/cli/commands'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3))
  .sort();
const ownBundle = (f) => `./cli-${f}.js`;
// Modules that those own bundles load only when needed, from a file of their own (dist/cli-<name>.js):
// the trajectory schema, i.e. zod, runs only for a line that fails the generated check
// (src/core/schema/trajectoryProblems.ts), and compiling zod was most of `drag process`'s start-up.
// Only a require() call is split off; a static import of the module is bundled as usual.
const LAZY_MODULES = { 'schema/trajectory': 'schema-trajectory' };
const lazyModules = {
  name: 'lazy-modules',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      if (args.kind !== 'require-call') return undefined;
      const module = path.relative(path.join(root, 'src/core'), path.resolve(args.resolveDir, args.path));
      const name = LAZY_MODULES[module.split(path.sep).join('/')];
      return name ? { path: `./cli-${name}.js`, external: true } : undefined;
    });
  },
};
const cliLazyModules = Object.entries(LAZY_MODULES).map(([module, name]) => ({
  ...node,
  entryPoints: { [`cli-${name}`]: `src/core/${module}.ts` },
  outdir: 'dist',
}));
const cliOwnCommands = OWN_BUNDLE.map((f) => ({
  ...node,
  entryPoints: { [`cli-${f}`]: `src/cli/commands/${f}.ts` },
  outdir: 'dist',
  external: ['pdfjs-dist', '@napi-rs/canvas'],
  plugins: [lazyModules],
}));
const cliCommands = {
  ...node,
  stdin: {
    contents: [
      'const loaders = {',
      ...commandFiles.map((f) => {
        const from = OWN_BUNDLE.includes(f) ? ownBundle(f) : `./src/cli/commands/${f}`;
        return `  ${JSON.stringify(f)}: () => require(${JSON.stringify(from)}),`;
      }),
      '};',
      'exports.files = Object.keys(loaders);',
      'exports.load = (file) => loaders[file]();',
    ].join('\n'),
    resolveDir: root,
    sourcefile: 'cli-commands.js',
  },
  outfile: 'dist/cli-commands.js',
  external: ['pdfjs-dist', '@napi-rs/canvas', ...OWN_BUNDLE.map(ownBundle)],
};
const lazyCommands = {
  name: 'lazy-cli-commands',
  setup(b) {
    b.onResolve({ filter: /^\.\/commands\/\w+\.js$/ }, (args) =>
      args.importer.endsWith(path.join('src', 'cli', 'main.ts'))
        ? { path: path.basename(args.path, '.js'), namespace: 'lazy-cli-commands' }
        : undefined,
    );
    b.onResolve({ filter: /^\.\/cli-\w+\.js$/ }, (args) => ({ path: args.path, external: true }));
    b.onLoad({ filter: /.*/, namespace: 'lazy-cli-commands' }, (args) => ({
      contents: OWN_BUNDLE.includes(args.path)
        ? `module.exports = require(${JSON.stringify(ownBundle(args.path))});`
        : `module.exports = require('./cli-commands.js').load(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};
function cliEntry(help) {
  return {
    ...node,
    entryPoints: { cli: 'src/cli/cli.ts' },
    outdir: 'dist',
    define: { ...node.define, __DRAG_COMMAND_HELP__: help ? JSON.stringify(help) : 'undefined' },
    plugins: [lazyCommands],
  };
}
/** Every command's name, summary and usage, from the built commands bundle. */
function commandHelp() {
  const file = path.join(root, 'dist', 'cli-commands.js');
  const require = createRequire(import.meta.url);
  for (const built of [file, ...OWN_BUNDLE.map((f) => path.join(root, 'dist', ownBundle(f)))])
    delete require.cache[built];
  const commands = require(file);
  const help = {};
  for (const f of commands.files)
    for (const c of Object.values(commands.load(f)))
      if (c && typeof c === 'object' && typeof c.name === 'string' && typeof c.run === 'function')
        help[c.name] = { summary: c.summary, usage: c.usage };
  return help;
}
async function buildCli() {
  await Promise.all([cliCommands, ...cliOwnCommands, ...cliLazyModules].map((c) => build(c)));
  await build(cliEntry(commandHelp()));
}

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
  // Watching, the entry reads usage from the commands themselves (it loads them for --help).
  for (const config of [...configs, cliCommands, ...cliOwnCommands, ...cliLazyModules, cliEntry(null)])
    await (await context(config)).watch();
  console.log('[build] watching');
} else {
  const started = Date.now();
  await Promise.all([...configs.map((c) => build(c)), buildCli(), writeConfigSchema()]);
  const bundles = configs.length + 2 + cliOwnCommands.length + cliLazyModules.length;
  console.log(`[build] ${bundles} bundles + config schema in ${Date.now() - started} ms`);
}
