#!/usr/bin/env node
// Ruff (lint and format check) for trainer/, through Ruff's WebAssembly build on Node: no Python
// package and no native binary are needed on the machine that runs `npm run check`.
//   node trainer/tests/ruff_check.mjs          report lint problems and files Ruff would reformat; exit 1 if any
//   node trainer/tests/ruff_check.mjs --write  apply Ruff's fixes and reformat the files in place first
// The settings are [tool.ruff] in trainer/pyproject.toml (one-line `key = value` entries only).
// The package resolves from the repository's node_modules; RUFF_WASM_PREFIX=<dir> points at an
// `npm i --prefix <dir> @astral-sh/ruff-wasm-nodejs` install elsewhere.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const trainer = join(dirname(fileURLToPath(import.meta.url)), '..');
const prefix = process.env.RUFF_WASM_PREFIX;
const require = createRequire(prefix ? join(prefix, 'x.js') : import.meta.url);
let ruff;
try {
  ruff = require('@astral-sh/ruff-wasm-nodejs');
} catch (err) {
  console.error(`ruff_check: @astral-sh/ruff-wasm-nodejs is not installed (${err.code ?? err.message})`);
  process.exit(2);
}

/** The [tool.ruff…] tables of pyproject.toml as Ruff's nested options. */
function ruffSettings(file) {
  const settings = {};
  let table = null;
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((raw, i) => {
      const line = raw.replace(/\s+#.*$/, '').trim();
      if (!line || line.startsWith('#')) return;
      const header = /^\[(.+)\]$/.exec(line);
      if (header) {
        const path = header[1].split('.');
        table = path[0] === 'tool' && path[1] === 'ruff' ? path.slice(2) : null;
        return;
      }
      if (!table) return;
      const entry = /^([\w-]+)\s*=\s*(.+)$/.exec(line);
      if (!entry) throw new Error(`${file}:${i + 1}: not a one-line key = value entry`);
      let target = settings;
      for (const key of table) target = target[key] ??= {};
      try {
        target[entry[1]] = JSON.parse(entry[2]);
      } catch {
        throw new Error(
          `${file}:${i + 1}: ${entry[1]}: the value must be a string, number, boolean or list on one line`,
        );
      }
    });
  return settings;
}

function pythonFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name.startsWith('.') || e.name === '__pycache__' || e.name.endsWith('.egg-info')) return [];
    const path = join(dir, e.name);
    return e.isDirectory() ? pythonFiles(path) : e.name.endsWith('.py') ? [path] : [];
  });
}

const write = process.argv.includes('--write');
const workspace = new ruff.Workspace(ruffSettings(join(trainer, 'pyproject.toml')), ruff.PositionEncoding.Utf16);
let problems = 0;
/** Applies Ruff's import-sorting fix (I001) until none is left; other problems are left to a person. */
function fixed(text) {
  for (let pass = 0; pass < 20; pass++) {
    const fix = workspace.check(text).find((d) => d.code === 'I001' && d.fix?.edits.length)?.fix;
    if (!fix) return text;
    const lines = text.split('\n');
    const offset = (loc) => lines.slice(0, loc.row - 1).reduce((n, l) => n + l.length + 1, 0) + loc.column - 1;
    for (const edit of [...fix.edits].sort((a, b) => offset(b.location) - offset(a.location)))
      text = text.slice(0, offset(edit.location)) + (edit.content ?? '') + text.slice(offset(edit.end_location));
  }
  return text;
}

for (const file of pythonFiles(trainer).sort()) {
  const name = relative(process.cwd(), file);
  let text = readFileSync(file, 'utf8');
  const formatted = workspace.format(write ? fixed(text) : text);
  if (formatted !== text) {
    if (write) {
      writeFileSync(file, formatted);
      text = formatted;
    } else {
      console.log(`${name}: would be reformatted (node trainer/tests/ruff_check.mjs --write)`);
      problems++;
    }
  }
  for (const d of workspace.check(text)) {
    console.log(`${name}:${d.start_location.row}:${d.start_location.column}: ${d.code ?? 'syntax'} ${d.message}`);
    problems++;
  }
}
console.log(`ruff ${ruff.Workspace.version()}: ${problems ? `${problems} problems` : 'trainer/ is clean'}`);
process.exit(problems ? 1 : 0);
