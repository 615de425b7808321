import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { ROOT } from './helpers';

/** The entries of a zip file (a .vsix), by name, inflated on demand. */
function readZip(file: string): Map<string, () => Buffer> {
  const zip = readFileSync(file);
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  assert.ok(eocd >= 0, `${file}: no end of central directory`);
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const entries = new Map<string, () => Buffer>();
  for (let i = 0; i < count; i++) {
    assert.equal(zip.readUInt32LE(at), 0x02014b50, `${file}: bad central directory entry ${i}`);
    const method = zip.readUInt16LE(at + 10);
    const size = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extra = zip.readUInt16LE(at + 30);
    const comment = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.subarray(at + 46, at + 46 + nameLength).toString('utf8');
    entries.set(name, () => {
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const data = zip.subarray(start, start + size);
      return method === 0 ? data : inflateRawSync(data);
    });
    at += 46 + nameLength + extra + comment;
  }
  return entries;
}

/** The platform a native module was built for, read from its executable header. */
function binaryPlatform(bin: Buffer): string {
  if (bin.readUInt32BE(0) === 0x7f454c46) {
    const machine = bin.readUInt16LE(18);
    return `linux-${machine === 0x3e ? 'x64' : machine === 0xb7 ? 'arm64' : `machine ${machine}`}`;
  }
  if (bin.readUInt32LE(0) === 0xfeedfacf) {
    const cpu = bin.readUInt32LE(4);
    return `darwin-${cpu === 0x01000007 ? 'x64' : cpu === 0x0100000c ? 'arm64' : `cpu ${cpu}`}`;
  }
  if (bin.toString('latin1', 0, 2) === 'MZ') {
    const pe = bin.readUInt32LE(0x3c);
    assert.equal(bin.toString('latin1', pe, pe + 4), 'PE\0\0');
    const machine = bin.readUInt16LE(pe + 4);
    return `win32-${machine === 0x8664 ? 'x64' : machine === 0xaa64 ? 'arm64' : `machine ${machine}`}`;
  }
  return 'unknown';
}

// Written independently of scripts/package-targets.mjs: what each target must carry.
const EXPECTED: Record<string, string> = {
  'linux-x64': 'canvas-linux-x64-gnu',
  'linux-arm64': 'canvas-linux-arm64-gnu',
  'darwin-x64': 'canvas-darwin-x64',
  'darwin-arm64': 'canvas-darwin-arm64',
  'win32-x64': 'canvas-win32-x64-msvc',
};

describe('npm run package:targets (one .vsix per platform)', function () {
  // Five staged `npm ci --omit=dev` and `vsce package` runs, made once for every check below.
  this.timeout(15 * 60_000);
  let out = '';
  const packages = new Map<string, Map<string, () => Buffer>>();

  before(() => {
    if (!existsSync(path.join(ROOT, 'dist', 'extension.js'))) {
      throw new Error('dist/ is missing: run npm run build first (npm test does)');
    }
    out = mkdtempSync(path.join(tmpdir(), 'drag-targets-'));
    const lockBefore = readFileSync(path.join(ROOT, 'package-lock.json'));
    execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'package-targets.mjs'), '--no-build', '--out', out], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    assert.deepEqual(readFileSync(path.join(ROOT, 'package-lock.json')), lockBefore, 'the lockfile changed');
    for (const target of Object.keys(EXPECTED)) {
      packages.set(target, readZip(path.join(out, `drag-studio-${target}.vsix`)));
    }
  });
  after(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  for (const [target, canvas] of Object.entries(EXPECTED)) {
    it(`${target}: carries ${canvas} alone, a binary built for ${target}, and says its target`, () => {
      const entries = packages.get(target)!;
      const natives = [...entries.keys()].filter((f) => /^extension\/node_modules\/@napi-rs\/canvas-/.test(f));
      const packagesShipped = new Set(natives.map((f) => f.split('/')[3]));
      assert.deepEqual([...packagesShipped], [canvas]);
      const binaries = natives.filter((f) => f.endsWith('.node'));
      assert.equal(binaries.length, 1, `one native binary, found ${binaries.join(', ')}`);
      assert.equal(binaryPlatform(entries.get(binaries[0])!()), target);
      assert.match(entries.get('extension.vsixmanifest')!().toString('utf8'), new RegExp(`TargetPlatform="${target}"`));
      assert.ok(entries.has('extension/dist/cli.js') && entries.has('extension/node_modules/@napi-rs/canvas/index.js'));
    });
  }

  it('the host canvas package in the repository is untouched (only its own platform is installed)', () => {
    const installed = readdirSync(path.join(ROOT, 'node_modules', '@napi-rs')).filter((n) => n.startsWith('canvas-'));
    assert.equal(installed.length, 1, `node_modules/@napi-rs holds ${installed.join(', ')}`);
  });

  it('the details page: a PNG icon of at least 128×128, the changelog, and README images that load', () => {
    const entries = packages.get('linux-x64')!;
    const icon = entries.get('extension/media/icon.png')!();
    assert.equal(icon.toString('latin1', 1, 4), 'PNG');
    assert.ok(icon.readUInt32BE(16) >= 128 && icon.readUInt32BE(20) >= 128, 'icon under 128×128');
    assert.match(entries.get('extension/changelog.md')!().toString('utf8'), /^## 0\.1\.0/m);
    // Screenshots are not packaged: vsce rewrites relative links against the repository, so each
    // image must be an https URL to a file that the repository holds.
    const readme = entries.get('extension/readme.md')!().toString('utf8');
    const images = [...readme.matchAll(/!\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1]);
    assert.ok(images.length >= 3, `the README shows ${images.length} images`);
    const base = 'https://github.com/drag-studio/drag-studio/raw/HEAD/';
    for (const url of images) {
      assert.ok(url.startsWith(base), `${url} is not rewritten to the repository`);
      assert.ok(existsSync(path.join(ROOT, url.slice(base.length))), `${url}: no such file in the repository`);
    }
    const links = [...readme.matchAll(/(?<!!)\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1]);
    assert.deepEqual(
      links.filter((l) => !/^(https:|#)/.test(l)),
      [],
      'relative links left in the packaged README',
    );
  });
});
