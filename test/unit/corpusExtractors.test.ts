import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { buildCorpus } from '../../src/core/corpus/build';
import { WhooshCompatibleEngine } from '../../src/core/search/engine';
import { buildIndex } from '../../src/core/search/index';
import { makeQueries } from '../oracle/queries';
import { SHARED_DATA, useTempDir } from './helpers';

describe('corpus build: pdf.js and --extractor poppler (shared FinanceBench PDFs)', function () {
  this.timeout(600_000);
  const tmp = useTempDir();

  it('give the same top-3 search results for >= 95% of the parity queries', async function () {
    const pdfs = path.join(SHARED_DATA, 'pdfs');
    if (!existsSync(pdfs)) {
      console.log(`      skipped: ${pdfs} is absent`);
      this.skip();
    }
    if (spawnSync('pdftotext', ['-v']).error) {
      console.log('      skipped: pdftotext is not installed (Debian: poppler-utils)');
      this.skip();
    }
    const pdfjsOcr = path.join(tmp(), 'pdfjs.jsonl');
    const popplerOcr = path.join(tmp(), 'poppler.jsonl');
    const a = await buildCorpus(pdfs, pdfjsOcr, { workers: 2 });
    const b = await buildCorpus(pdfs, popplerOcr, { workers: 2, extractor: 'poppler' });
    assert.deepEqual(b.failed, []);
    assert.equal(b.pages, a.pages, 'both extractors see every page');
    assert.ok(a.pages >= 1000, `only ${a.pages} pages`);
    // The parity queries of test/unit/searchParity.test.ts (questions verbatim, keywords, phrases).
    const queries = makeQueries(path.join(SHARED_DATA, 'questions.jsonl'), path.join(SHARED_DATA, 'ocr_output.jsonl'));
    assert.ok(queries.length >= 300, `only ${queries.length} queries`);
    const pdfjs = new WhooshCompatibleEngine((await buildIndex(pdfjsOcr)).index);
    const poppler = new WhooshCompatibleEngine((await buildIndex(popplerOcr)).index);
    let same = 0;
    let withHits = 0;
    for (const q of queries) {
      const x = pdfjs.search(q, 3).map((h) => `${h.file}:${h.page_number}`);
      const y = poppler.search(q, 3).map((h) => `${h.file}:${h.page_number}`);
      if (x.length || y.length) withHits++;
      if (x.length === y.length && x.every((k) => y.includes(k))) same++;
    }
    console.log(
      `      ${queries.length} queries: identical top-3 set ${same}/${queries.length} ` +
        `(${((100 * same) / queries.length).toFixed(1)}%), ${withHits} with hits`,
    );
    assert.ok(withHits >= 300, `only ${withHits} queries find anything`);
    assert.ok(same / queries.length >= 0.95, `top-3 sets agree on ${same}/${queries.length}`);
  });

  it('re-extracts every PDF when the extractor changes, and reuses them when it does not', async function () {
    const pdfs = path.join(SHARED_DATA, 'pdfs');
    if (!existsSync(pdfs) || spawnSync('pdftotext', ['-v']).error) {
      console.log('      skipped: needs the shared PDFs and pdftotext (poppler-utils)');
      this.skip();
    }
    const out = path.join(tmp(), 'ocr.jsonl');
    const first = await buildCorpus(pdfs, out, { extractor: 'poppler' });
    assert.equal(first.reused.length, 0);
    const again = await buildCorpus(pdfs, out, { extractor: 'poppler' });
    assert.equal(again.extracted.length, 0);
    assert.equal(again.reused.length, first.files);
  });
});
