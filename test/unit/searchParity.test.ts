import * as assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { WhooshCompatibleEngine } from '../../src/core/search/engine';
import { buildIndex } from '../../src/core/search/index';
import { formatQuery, parseQuery } from '../../src/core/search/query';
import { makeQueries } from '../oracle/queries';
import { runWhoosh, whooshUnavailable } from '../oracle/whoosh';
import { SHARED_DATA, useTempDir } from './helpers';

describe('search parity with Whoosh itself (shared FinanceBench corpus)', function () {
  this.timeout(180_000);
  const tmp = useTempDir();

  it('gives the same top-3 for >= 95% of >= 300 queries and the same rank 1 for >= 97%', async function () {
    const ocr = path.join(SHARED_DATA, 'ocr_output.jsonl');
    if (!existsSync(ocr)) {
      console.log(`      skipped: ${ocr} is absent`);
      this.skip();
    }
    const why = whooshUnavailable();
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
    const queries = makeQueries(path.join(SHARED_DATA, 'questions.jsonl'), ocr);
    assert.ok(queries.length >= 300, `only ${queries.length} queries`);
    const queriesFile = path.join(tmp(), 'queries.txt');
    writeFileSync(queriesFile, `${queries.join('\n')}\n`);
    const { results } = runWhoosh(
      ocr,
      path.join(tmp(), 'whoosh-index'),
      queriesFile,
      path.join(tmp(), 'whoosh.jsonl'),
      3,
      true,
    );
    assert.equal(results.length, queries.length);
    const engine = new WhooshCompatibleEngine((await buildIndex(ocr)).index);
    let sameSet = 0;
    let sameFirst = 0;
    let withHits = 0;
    let sameSetWithHits = 0;
    for (const ref of results) {
      const ours = engine.search(ref.query, 3).map((h) => `${h.file}:${h.page_number}`);
      const theirs = ref.results.map((h) => `${h.file}:${h.page_number}`);
      if (theirs.length) withHits++;
      const set = ours.length === theirs.length && ours.every((x) => theirs.includes(x));
      const first = ours[0] === theirs[0];
      if (set) sameSet++;
      if (set && theirs.length) sameSetWithHits++;
      if (first) sameFirst++;
      if (!set || !first) {
        console.log(
          `      mismatch: ${JSON.stringify(ref.query)}\n` +
            `        whoosh ${ref.parsed} -> ${theirs.join(', ') || '(none)'}\n` +
            `        ours   ${formatQuery(parseQuery(ref.query))} -> ${ours.join(', ') || '(none)'}`,
        );
      }
    }
    const n = results.length;
    console.log(
      `      ${n} queries: identical top-3 set ${sameSet}/${n} (${((100 * sameSet) / n).toFixed(1)}%), ` +
        `identical rank 1 ${sameFirst}/${n} (${((100 * sameFirst) / n).toFixed(1)}%); ` +
        `on the ${withHits} queries where Whoosh finds something: ${sameSetWithHits}/${withHits} identical top-3`,
    );
    // Empty results agree trivially: most queries must find something, and those must agree too.
    assert.ok(withHits >= 300, `only ${withHits} queries have hits`);
    assert.ok(
      sameSetWithHits / withHits >= 0.95,
      `top-3 sets agree on ${sameSetWithHits}/${withHits} queries with hits`,
    );
    assert.ok(sameSet / n >= 0.95, `top-3 sets agree on ${sameSet}/${n}`);
    assert.ok(sameFirst / n >= 0.97, `rank 1 agrees on ${sameFirst}/${n}`);
  });
});
