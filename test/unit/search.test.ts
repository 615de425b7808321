import * as assert from 'node:assert/strict';
import { readdirSync, writeFileSync, appendFileSync } from 'node:fs';
import * as path from 'node:path';
import { analyze } from '../../src/core/search/analyzer';
import { B, K1, WhooshCompatibleEngine, snippet } from '../../src/core/search/engine';
import { buildIndex, deserializeIndex, loadOrBuildIndex, serializeIndex } from '../../src/core/search/index';
import { byteToLength, lengthToByte } from '../../src/core/search/lengths';
import { formatQuery, parseQuery } from '../../src/core/search/query';
import { useTempDir } from './helpers';

describe('search: analyzer (Whoosh StandardAnalyzer)', () => {
  it("keeps inner dots, splits on - ' /, lower-cases, drops short tokens and stop words", () => {
    assert.deepEqual(analyze("The U.S. AH-64 Apache, F-16's and/or 3.5% of a Boeing-737"), [
      'u.s',
      'ah',
      '64',
      'apache',
      '16',
      '3.5',
      'boeing',
      '737',
    ]);
    assert.deepEqual(analyze('Zürich ÉTÉ naïve_word x y'), ['zürich', 'été', 'naïve_word']);
    assert.deepEqual(analyze('this is the end of it'), ['end']);
  });
});

describe('search: Whoosh length encoding', () => {
  it('is exact up to 10 and rounds up to a bucket above', () => {
    for (let n = 0; n <= 10; n++) assert.equal(byteToLength(lengthToByte(n)), n);
    assert.equal(byteToLength(lengthToByte(11)), 12);
    assert.equal(byteToLength(lengthToByte(500)), 508);
    assert.equal(lengthToByte(10_000_000), 255);
  });
});

describe('search: query parser (Whoosh QueryParser, AND group)', () => {
  // Expected trees are what Whoosh 2.7 itself printed for these inputs.
  const cases: Array<[string, string]> = [
    ['AH-64 speed?', 'AND(ah, 64, WILDCARD(speed?))'],
    ['a or b', '<null>'],
    ['foo AND bar OR baz', 'OR(AND(foo, bar), baz)'],
    ['foo OR bar AND baz', 'OR(foo, AND(bar, baz))'],
    ['foo OR bar baz', 'AND(OR(foo, bar), baz)'],
    ['NOT foo bar', 'AND(NOT(foo), bar)'],
    ['foo ANDNOT bar OR baz', 'ANDNOT(foo, OR(bar, baz))'],
    ['foo OR bar ANDMAYBE baz', 'ANDMAYBE(OR(foo, bar), baz)'],
    ['foo REQUIRE bar', 'REQUIRE(foo, bar)'],
    ['"net income" 2018', 'AND(PHRASE("net income"), 2018)'],
    ['"net income"~3', 'PHRASE("net income"~3)'],
    ['"the income"', 'income'],
    ["'3.5 million'", 'AND(3.5, million)'],
    ['file:3M_2018_10K.pdf revenue', 'AND(file:3M_2018_10K.pdf, revenue)'],
    ['page_number:12 revenue', 'AND(page_number:12, revenue)'],
    ['x:revenue', 'revenue'],
    ['http://www.sec.gov revenue', 'AND(http, www.sec.gov, revenue)'],
    ['Revenue*', 'PREFIX(revenue*)'],
    ['ah-64*', 'PREFIX(ah-64*)'],
    ['rev?nue', 'WILDCARD(rev?nue)'],
    ['fo*o', 'WILDCARD(fo*o)'],
    ['cash^2 flow', 'AND(cash^2, flow)'],
    ['cost^ sales', 'AND(cost, sales)'],
    ['(cash flow) OR (net income)', 'OR(AND(cash, flow), AND(net, income))'],
    ['((revenue)', 'revenue'],
    ['foo OR', 'foo'],
    ['AND foo', 'foo'],
    ['cash cash flow', 'AND(cash, flow)'],
    ['*:*', 'EVERY(*)'],
    ['what is the 3.5% rate?', 'AND(what, 3.5, WILDCARD(rate?))'],
  ];
  for (const [input, expected] of cases) {
    it(`parses ${JSON.stringify(input)}`, () => assert.equal(formatQuery(parseQuery(input)), expected));
  }
});

describe('search: engine', () => {
  const tmp = useTempDir();
  const pages = [
    { file: 'a.pdf', page_number: 1, total_pages: 3, text: 'Net income rose. Net income was strong in 2018.' },
    {
      file: 'a.pdf',
      page_number: 2,
      total_pages: 3,
      text: 'Income from operations; net of taxes. Revenue revenue revenue.',
    },
    { file: 'a.pdf', page_number: 3, total_pages: 3, text: 'Capital expenditures and revenues grew.' },
    { file: 'b.pdf', page_number: 1, total_pages: 2, text: 'Net income rose. Net income was strong in 2018.' },
    { file: 'b.pdf', page_number: 2, total_pages: 2, text: '' },
  ];
  async function engine(): Promise<WhooshCompatibleEngine> {
    const file = path.join(tmp(), 'ocr.jsonl');
    writeFileSync(file, pages.map((p) => JSON.stringify(p)).join('\n') + '\n');
    return new WhooshCompatibleEngine((await buildIndex(file)).index);
  }

  it('scores a term with BM25F (B 0.75, K1 1.2, idf ln(N/(df+1))+1, avgdl over all pages)', async () => {
    const e = await engine();
    const lengths = pages.map((p) => analyze(p.text).length);
    const avg = lengths.reduce((a, b) => a + b) / lengths.length;
    // "revenue" is on page 2 only ("revenues" is another term): df = 1.
    const idf = Math.log(pages.length / (1 + 1)) + 1;
    const tf = 3;
    const expected = idf * ((tf * (K1 + 1)) / (tf + K1 * (1 - B + (B * lengths[1]) / avg)));
    const [hit] = e.search('revenue', 5);
    assert.equal(hit.page_number, 2);
    assert.equal(hit.score, expected);
  });

  it('breaks score ties by document order and ranks from 1', async () => {
    const hits = (await engine()).search('"net income" 2018', 5);
    assert.deepEqual(
      hits.map((h) => [h.file, h.page_number, h.rank]),
      [
        ['a.pdf', 1, 1],
        ['b.pdf', 1, 2],
      ],
    );
    assert.equal(hits[0].score, hits[1].score);
  });

  it('matches phrases only when adjacent (after stop-word removal), and honours slop', async () => {
    const e = await engine();
    assert.deepEqual(
      e.search('"income net"').map((h) => h.page_number),
      [],
    );
    assert.deepEqual(
      e.search('"net taxes"').map((h) => [h.file, h.page_number]),
      [['a.pdf', 2]],
    ); // "net of taxes"
    assert.deepEqual(
      e.search('"income operations"').map((h) => h.page_number),
      [2],
    );
    assert.deepEqual(
      e.search('"income taxes"~3').map((h) => h.page_number),
      [2],
    );
    assert.deepEqual(
      e.search('"income taxes"').map((h) => h.page_number),
      [],
    );
  });

  it('supports NOT, OR, file: and page_number:, and wildcards', async () => {
    const e = await engine();
    assert.deepEqual(
      e.search('income NOT revenue', 5).map((h) => `${h.file}:${h.page_number}`),
      ['a.pdf:1', 'b.pdf:1'],
    );
    assert.deepEqual(
      e.search('file:b.pdf income').map((h) => `${h.file}:${h.page_number}`),
      ['b.pdf:1'],
    );
    assert.deepEqual(
      e.search('page_number:3 revenues').map((h) => h.page_number),
      [3],
    );
    assert.deepEqual(
      e
        .search('revenue*', 5)
        .map((h) => h.page_number)
        .sort(),
      [2, 3],
    );
    assert.deepEqual(
      e.search('revenue?', 5).map((h) => h.page_number),
      [3],
    );
    assert.equal(e.search('capital OR taxes', 5).length, 2);
    assert.deepEqual(e.search('the of'), []);
  });

  it('gives several expanded terms a constant score, as Whoosh does on corpora up to 5,000 pages', async () => {
    const e = await engine();
    const hits = e.search('r*', 5); // revenue, revenues, rose: 3 terms
    assert.equal(hits.length, 4);
    // With 2 expanded terms Whoosh still sums BM25 scores.
    assert.notEqual(e.search('revenue*', 5)[0].score, 1);
    for (const h of hits) assert.equal(h.score, 1);
  });

  it('marks query terms in a snippet without HTML', () => {
    const s = snippet('Net income <b>rose</b> sharply. Net income fell.', ['income']);
    assert.equal(s.text.includes('<b>'), true, 'text stays text');
    assert.deepEqual(
      s.highlights.map(([a, b]) => s.text.slice(a, b)),
      ['income', 'income'],
    );
  });

  it('persists: loads an unchanged corpus from cache, rebuilds a changed one, survives a corrupt cache', async () => {
    const file = path.join(tmp(), 'ocr.jsonl');
    writeFileSync(file, pages.map((p) => JSON.stringify(p)).join('\n') + '\n');
    const cache = path.join(tmp(), 'cache');
    const first = await loadOrBuildIndex(file, cache);
    assert.equal(first.source, 'built');
    const second = await loadOrBuildIndex(file, cache);
    assert.equal(second.source, 'cache');
    assert.deepEqual(
      new WhooshCompatibleEngine(second.index).search('net income', 5),
      new WhooshCompatibleEngine(first.index).search('net income', 5),
    );
    appendFileSync(
      file,
      JSON.stringify({ file: 'c.pdf', page_number: 1, total_pages: 1, text: 'net income again' }) + '\n',
    );
    const third = await loadOrBuildIndex(file, cache);
    assert.equal(third.source, 'built');
    assert.equal(third.index.docCount, 6);
    writeFileSync(third.cacheFile, 'garbage');
    assert.equal((await loadOrBuildIndex(file, cache)).source, 'built');
    assert.equal(readdirSync(path.join(cache, 'search')).length, 2, 'one cache entry per corpus version');
  });

  it('round-trips the binary format', async () => {
    const file = path.join(tmp(), 'ocr.jsonl');
    writeFileSync(file, pages.map((p) => JSON.stringify(p)).join('\n') + '\n');
    const { index } = await buildIndex(file);
    const back = deserializeIndex(serializeIndex(index));
    assert.deepEqual(back.terms, index.terms);
    assert.deepEqual(Array.from(back.positions), Array.from(index.positions));
    assert.equal(back.totalLength, index.totalLength);
  });

  it('reports bad OCR lines with line and field, and indexes the rest', async () => {
    const file = path.join(tmp(), 'ocr.jsonl');
    writeFileSync(
      file,
      `${JSON.stringify(pages[0])}\n{"file":"x.pdf","page_number":"two","total_pages":2}\nnot json\n` +
        `${JSON.stringify(pages[2])}\n`,
    );
    const { index, errors } = await buildIndex(file);
    assert.equal(index.docCount, 2);
    assert.deepEqual(
      errors.map((e) => [e.line, e.fieldPath]),
      [
        [2, 'page_number'],
        [3, ''],
      ],
    );
  });
});
