// npm run package:targets: one .vsix per platform, drag-studio-<target>.vsix, each carrying only
// that platform's @napi-rs/canvas binary. npm installs the optional package of one platform only
// (the one it runs on), so each target is staged in a temporary folder: the files that ship (what
// `vsce ls` lists outside node_modules, so .vscodeignore stays the one list), then
// `npm ci --omit=dev --os --cpu` there, then `vsce package --target`. The repository's own
// node_modules is never touched.
//
//   node scripts/package-targets.mjs [--no-build] [--out DIR] [--targets linux-x64,win32-x64]
//
// Without --no-build it first makes the production build (minified, no source maps).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The platforms we publish, with what npm must pretend to be and the canvas package it then installs. */
export const TARGETS = {
  'linux-x64': { os: 'linux', cpu: 'x64', libc: 'glibc', canvas: 'canvas-linux-x64-gnu' },
  'linux-arm64': { os: 'linux', cpu: 'arm64', libc: 'glibc', canvas: 'canvas-linux-arm64-gnu' },
  'darwin-x64': { os: 'darwin', cpu: 'x64', canvas: 'canvas-darwin-x64' },
  'darwin-arm64': { os: 'darwin', cpu: 'arm64', canvas: 'canvas-darwin-arm64' },
  'win32-x64': { os: 'win32', cpu: 'x64', canvas: 'canvas-win32-x64-msvc' },
};

const vsce = path.join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** The files of the package outside node_modules, as vsce selects them from .vscodeignore. */
function shippedFiles() {
  return execFileSync(process.execPath, [vsce, 'ls'], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 })
    .split('\n')
    .map((f) => f.trim())
    .filter((f) => f && !f.startsWith('node_modules/'));
}

/** Builds drag-studio-<target>.vsix for each target into outDir; returns their paths by target. */
export function packageTargets({ targets = Object.keys(TARGETS), outDir = root, log = console.log } = {}) {
  for (const t of targets) {
    if (!TARGETS[t]) throw new Error(`unknown target ${t}; known: ${Object.keys(TARGETS).join(', ')}`);
  }
  const files = [...shippedFiles(), 'package-lock.json', '.vscodeignore'];
  mkdirSync(outDir, { recursive: true });
  const written = {};
  for (const target of targets) {
    const { os, cpu, libc } = TARGETS[target];
    const stage = mkdtempSync(path.join(tmpdir(), `drag-package-${target}-`));
    try {
      for (const f of files) {
        mkdirSync(path.dirname(path.join(stage, f)), { recursive: true });
        copyFileSync(path.join(root, f), path.join(stage, f));
      }
      log(`[package] ${target}: npm ci --omit=dev --os=${os} --cpu=${cpu}`);
      const platformArgs = [`--os=${os}`, `--cpu=${cpu}`, ...(libc ? [`--libc=${libc}`] : [])];
      execFileSync(npm, ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', ...platformArgs], {
        cwd: stage,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      const out = path.join(outDir, `drag-studio-${target}.vsix`);
      execFileSync(process.execPath, [vsce, 'package', '--target', target, '--out', out], {
        cwd: stage,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      log(`[package] ${target}: ${path.relative(process.cwd(), out) || out}`);
      written[target] = out;
    } finally {
      rmSync(stage, { recursive: true, force: true });
    }
  }
  return written;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const value = (name) => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    if (i + 1 >= args.length) throw new Error(`${name} needs a value`);
    return args[i + 1];
  };
  if (!args.includes('--no-build')) {
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs'), '--production'], { stdio: 'inherit' });
  }
  const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const outDir = path.resolve(value('--out') ?? root);
  const targets = value('--targets')?.split(',') ?? Object.keys(TARGETS);
  packageTargets({ targets, outDir });
  console.log(`[package] drag-studio ${version}: ${targets.length} platform packages in ${outDir}`);
}
