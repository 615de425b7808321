import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { buildCorpus, ForeignOcrFileError, manifestPath } from '../../src/core/corpus/build';
import { PageImageCache } from '../../src/core/corpus/pageCache';
import { renderScale } from '../../src/core/corpus/pdf';
import { PdfWorkerPool } from '../../src/core/corpus/pool';
import { runCli } from '../../src/cli/main';
import { loadOrBuildIndex } from '../../src/core/search/index';
import { ROOT, SHARED_DATA, useTempDir } from './helpers';

/** A minimal valid PDF with one page and the given content stream (no text: an "image-only" page). */
export function minimalPdf(content: string): Buffer {
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>',
    `<< /Length ${content.length} >>\nstream\n${content}\nendstream`,
  ];
  let out = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((o, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = out.length;
  const entries = offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('');
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${entries}`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

describe('corpus: PDFs to DRAG OCR pages', function () {
  this.timeout(120_000);
  const tmp = useTempDir();
  const small = ['ULTABEAUTY_2023Q4_EARNINGS.pdf', 'MGMRESORTS_2022Q4_EARNINGS.pdf'];

  function setup(): string {
    const dir = path.join(tmp(), 'pdfs');
    mkdirSync(dir);
    for (const f of small) copyFileSync(path.join(SHARED_DATA, 'pdfs', f), path.join(dir, f));
    return dir;
  }

  beforeEach(function () {
    if (!existsSync(path.join(SHARED_DATA, 'pdfs'))) {
      console.log(`      skipped: ${SHARED_DATA}/pdfs is absent`);
      this.skip();
    }
  });

  it("extracts every page in DRAG's format, on worker threads, in file and page order", async () => {
    const dir = setup();
    const out = path.join(tmp(), 'ocr_output.jsonl');
    const events: string[] = [];
    const report = await buildCorpus(dir, out, {
      workers: 2,
      onEvent: (e) => {
        if (e.type === 'file') events.push(`${e.file}:${e.status}`);
      },
    });
    assert.equal(report.pages, 15 + 9);
    assert.deepEqual(report.failed, []);
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.slice(0, 2).map((l) => [l.file, l.page_number, l.total_pages]),
      [
        ['MGMRESORTS_2022Q4_EARNINGS.pdf', 1, 15],
        ['MGMRESORTS_2022Q4_EARNINGS.pdf', 2, 15],
      ],
    );
    const ulta1 = lines.find((l) => l.file.startsWith('ULTA') && l.page_number === 1);
    assert.match(ulta1.text, /Ulta Beauty Announces Fourth Quarter/);
    assert.match(ulta1.text, /Net Sales of \$3\.2 Billion/);
    assert.equal(events.length, 2);
  });

  const indexCacheTitle =
    'drag corpus build also caches the search index where drag serve looks (--cache-dir), unless --no-index';
  it(indexCacheTitle, async () => {
    const dir = setup();
    const out = path.join(tmp(), 'ocr_output.jsonl');
    const cacheDir = path.join(tmp(), 'cache');
    let stdout = '';
    const io = { stdout: (t: string) => (stdout += t), stderr: () => {} };
    const signal = new AbortController().signal;
    assert.equal(
      await runCli(['corpus', 'build', dir, '--out', out, '--cache-dir', cacheDir, '--json'], io, signal),
      0,
    );
    const events = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; source?: string; cacheFile?: string });
    assert.deepEqual(
      events.slice(-3).map((e) => e.type),
      ['done', 'indexing', 'index'],
    );
    const index = events.at(-1)!;
    assert.equal(index.source, 'built');
    assert.ok(index.cacheFile?.startsWith(path.join(cacheDir, 'search')), index.cacheFile);
    // What drag serve does next: it loads the cache instead of building.
    assert.equal((await loadOrBuildIndex(out, cacheDir)).source, 'cache');
    stdout = '';
    const other = path.join(tmp(), 'other-cache');
    assert.equal(
      await runCli(['corpus', 'build', dir, '--out', out, '--cache-dir', other, '--json', '--no-index'], io, signal),
      0,
    );
    assert.ok(!stdout.includes('"index"') && !existsSync(other), 'no index with --no-index');
  });

  it('re-reads only PDFs whose content changed', async () => {
    const dir = setup();
    const out = path.join(tmp(), 'ocr_output.jsonl');
    await buildCorpus(dir, out);
    const second = await buildCorpus(dir, out);
    assert.deepEqual(second.extracted, []);
    assert.deepEqual(second.reused.sort(), [...small].sort());
    copyFileSync(
      path.join(SHARED_DATA, 'pdfs', 'ULTABEAUTY_2023Q4_EARNINGS.pdf'),
      path.join(dir, 'MGMRESORTS_2022Q4_EARNINGS.pdf'),
    );
    const third = await buildCorpus(dir, out);
    assert.deepEqual(third.extracted, ['MGMRESORTS_2022Q4_EARNINGS.pdf']);
    assert.equal(third.pages, 9 + 9);
  });

  it('reports damaged, password-protected and image-only PDFs per file, and keeps the rest', async function () {
    const dir = setup();
    writeFileSync(path.join(dir, 'broken.pdf'), 'this is not a PDF at all');
    writeFileSync(path.join(dir, 'scanned.pdf'), minimalPdf('0 0 1 rg 20 20 100 100 re f'));
    const qpdf = spawnSync('qpdf', [
      '--encrypt',
      'secret',
      'secret',
      '256',
      '--',
      path.join(dir, small[0]),
      path.join(dir, 'locked.pdf'),
    ]);
    const haveQpdf = qpdf.status === 0;
    if (!haveQpdf)
      console.log(
        '      note: qpdf is not installed (apt-get install qpdf): the password-protected case is not checked',
      );
    const out = path.join(tmp(), 'ocr_output.jsonl');
    const report = await buildCorpus(dir, out);
    const failed = Object.fromEntries(report.failed.map((f) => [f.file, f.kind]));
    assert.equal(failed['broken.pdf'], 'damaged');
    if (haveQpdf) assert.equal(failed['locked.pdf'], 'password');
    assert.deepEqual(report.imageOnly, ['scanned.pdf']);
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.filter((l) => l.file === 'scanned.pdf'),
      [{ file: 'scanned.pdf', page_number: 1, total_pages: 1, text: '' }],
    );
    assert.equal(lines.filter((l) => l.file.startsWith('ULTA')).length, 9);
    const manifest = JSON.parse(readFileSync(manifestPath(out), 'utf8'));
    assert.equal(manifest.files['broken.pdf'].status, 'failed');
  });

  it('leaves an OCR file from another tool alone unless forced', async () => {
    const dir = setup();
    const out = path.join(tmp(), 'ocr_output.jsonl');
    writeFileSync(out, '{"file":"x.pdf","page_number":1,"total_pages":1,"text":"from another OCR tool"}\n');
    await assert.rejects(buildCorpus(dir, out), ForeignOcrFileError);
    assert.match(readFileSync(out, 'utf8'), /another OCR tool/);
    await buildCorpus(dir, out, { force: true });
    assert.doesNotMatch(readFileSync(out, 'utf8'), /another OCR tool/);
  });
});

describe('corpus: page images', function () {
  this.timeout(60_000);
  const tmp = useTempDir();

  it("leaves the thread's own Array.prototype.push and JSON functions once pdf.js is loaded", () => {
    // pdf.js's legacy build brings core-js, which swaps them for slower JavaScript versions thread-wide.
    // A process of its own, so that no earlier test has loaded pdf.js already.
    const file = path.join(tmp(), 'blank.pdf');
    writeFileSync(file, minimalPdf('0 0 m 100 100 l S'));
    const script = [
      'const own = { push: Array.prototype.push, stringify: JSON.stringify, parse: JSON.parse };',
      'const { extractPdfText } = require(process.argv[1]);',
      'extractPdfText(process.argv[2]).then((pages) => {',
      '  const now = { push: Array.prototype.push, stringify: JSON.stringify, parse: JSON.parse };',
      '  const replaced = Object.keys(own).filter((k) => now[k] !== own[k]);',
      '  process.stdout.write(JSON.stringify({ pages: pages.length, replaced }));',
      '});',
    ].join('\n');
    const pdfModule = path.join(ROOT, 'src', 'core', 'corpus', 'pdf.ts');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script, pdfModule, file], {
      encoding: 'utf8',
      cwd: ROOT,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { pages: 1, replaced: [] });
  });

  it('fits a pixel budget and otherwise uses the dpi', () => {
    assert.equal(renderScale(612, 792, { dpi: 144 }), 2);
    const s = renderScale(612, 792, { maxPixels: 1003520 });
    assert.ok(612 * s * 792 * s <= 1003520 + 1);
  });

  it('renders on a worker, within the budget, as PNG or JPEG, and caches by content hash', async function () {
    const pdf = path.join(SHARED_DATA, 'pdfs', 'ULTABEAUTY_2023Q4_EARNINGS.pdf');
    if (!existsSync(pdf)) {
      console.log(`      skipped: ${pdf} is absent`);
      this.skip();
    }
    const pool = new PdfWorkerPool(1);
    const cache = new PageImageCache(path.join(tmp(), 'pages'));
    try {
      let renders = 0;
      const opts = { maxPixels: 200_000, format: 'png' as const };
      const render = () => {
        renders++;
        return pool.render(pdf, 1, opts);
      };
      const a = await cache.get(pdf, 1, opts, render);
      assert.equal(a.cached, false);
      assert.ok(a.width * a.height <= 200_000 && a.width * a.height > 190_000, `${a.width}x${a.height}`);
      const png = readFileSync(a.file);
      assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
      const b = await cache.get(pdf, 1, opts, render);
      assert.equal(b.cached, true);
      assert.equal(renders, 1);
      const jpeg = await cache.get(pdf, 1, { ...opts, format: 'jpeg' }, () =>
        pool.render(pdf, 1, { ...opts, format: 'jpeg' }),
      );
      assert.deepEqual([...readFileSync(jpeg.file).subarray(0, 2)], [0xff, 0xd8]);
      await assert.rejects(pool.render(pdf, 99, opts), /page 99 does not exist \(the PDF has 9 pages\)/);
    } finally {
      await pool.close();
    }
  });

  it('evicts the least recently used images past its size cap', async () => {
    const dir = path.join(tmp(), 'pages');
    const cache = new PageImageCache(dir, 2500);
    const pdf = path.join(tmp(), 'x.pdf');
    writeFileSync(pdf, minimalPdf(''));
    const fake = (n: number) => async () => ({
      data: Buffer.alloc(1000, n),
      width: 1,
      height: 1,
      format: 'png' as const,
      pageCount: 3,
    });
    const first = await cache.get(pdf, 1, { dpi: 10 }, fake(1));
    await new Promise((r) => setTimeout(r, 20));
    await cache.get(pdf, 2, { dpi: 10 }, fake(2));
    await new Promise((r) => setTimeout(r, 20));
    await cache.get(pdf, 1, { dpi: 10 }, fake(9)); // touch page 1: page 2 is now the oldest
    await new Promise((r) => setTimeout(r, 20));
    await cache.get(pdf, 3, { dpi: 10 }, fake(3));
    assert.equal(existsSync(first.file), true);
    assert.equal((await cache.get(pdf, 2, { dpi: 10 }, fake(7))).cached, false, 'page 2 was evicted');
  });
});
