import * as assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { AnlsAlternatives, anlsStar, hungarianMax, levenshtein, nls } from '../../src/core/eval/anls';
import { compareRuns, comparisonMarkdown, loadEvaluation, mcnemarExact } from '../../src/core/eval/compare';
import { answerAnls, citationScores, retrievalMetrics } from '../../src/core/eval/metrics';
import { scoreTrajectoriesFile, writeEvaluation } from '../../src/core/eval/score';
import { runCli } from '../../src/cli/main';
import { FIXTURE_RUN, useTempDir } from './helpers';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} != ${b}`);

describe('ANLS* (Peer et al. 2024)', () => {
  it('strings: normalised Levenshtein similarity, thresholded at 0.5', () => {
    assert.equal(levenshtein('kitten', 'sitting'), 3);
    close(anlsStar('Hello World', 'Hello World'), 1);
    close(anlsStar('Hello World', '  hello   world '), 1); // trimmed, lower-cased, whitespace collapsed
    close(anlsStar('Hello World', 'Hello Wrld'), 1 - 1 / 11);
    close(anlsStar('abcd', 'abxy'), 0.5); // exactly at the threshold: kept
    close(anlsStar('abcde', 'axyze'), 0); // 1 - 3/5 = 0.4 < 0.5
    close(nls(1577, '1577'), 1);
  });
  it('None: only an empty prediction scores', () => {
    close(anlsStar(null, null), 1);
    close(anlsStar(null, ''), 1);
    close(anlsStar(null, 'something'), 0);
    close(anlsStar('something', null), 0);
  });
  it('tuples of alternatives: the best alternative counts', () => {
    close(anlsStar(new AnlsAlternatives(['Hello', 'World']), 'World'), 1);
    close(anlsStar(new AnlsAlternatives(['Yes', 'Y']), 'yes'), 1);
    // A list of strings against a string is read as alternatives (classical VQA data).
    close(anlsStar(['Hello', 'World'], 'World'), 1);
  });
  it('lists: order does not matter; missing and extra items are penalised', () => {
    close(anlsStar(['Hello', 'World'], ['World', 'Hello']), 1);
    close(anlsStar(['Hello', 'World'], ['Hello']), 0.5); // 1 matched of 2
    close(anlsStar(['Hello'], ['Hello', 'World', 'Foo']), 1 / 3); // 1 / (1 pair + 2 extra)
    close(anlsStar(['Hello', 'World'], ['Hello', 'Wrld']), (1 + 0.8) / 2);
    close(anlsStar([], []), 1);
  });
  it('dicts: over the union of keys; a missing key is None; an extra empty key is not held against', () => {
    close(anlsStar({ a: 'Hello', b: 'World' }, { b: 'World', a: 'Hello' }), 1);
    close(anlsStar({ a: 'Hello', b: 'World' }, { a: 'Hello' }), 0.5);
    close(anlsStar({ a: 'Hello' }, { a: 'Hello', c: 'x' }), 0.5); // hallucinated key: 1 / 2
    close(anlsStar({ a: 'Hello' }, { a: 'Hello', c: null }), 0.5); // length still counts the key, its score does not
    close(
      anlsStar({ name: 'ACME', items: ['apple', 'pear'] }, { name: 'Acme', items: ['pear', 'apple', 'plum'] }),
      3 / 4,
    );
  });
  it('finds the optimal assignment (not the greedy one)', () => {
    // Greedy would take (0,0)=0.9 then (1,1)=0.1 = 1.0; optimal is (0,1)+(1,0) = 0.8+0.8.
    assert.deepEqual(
      hungarianMax([
        [0.9, 0.8],
        [0.8, 0.1],
      ]),
      [
        [0, 1],
        [1, 0],
      ],
    );
    assert.deepEqual(hungarianMax([[0.2, 0.9, 0.1]]), [[0, 1]]);
  });
  it('scores DRAG answers against every gold variant, 0 when either side is empty', () => {
    close(answerAnls([['$1577.00']], ['$1577.00']), 1);
    close(answerAnls(['3.5 million'], ['3.5 Million']), 1); // bare strings are one-item variants
    close(answerAnls([['a', 'b'], ['$8.70']], ['$8.70']), 1);
    close(answerAnls([['x']], []), 0);
    close(answerAnls(null, ['x']), 0);
  });
});

describe('citation precision/recall/F1', () => {
  it('page and document level, any location shape, string pages equal to integer pages', () => {
    const gt = [{ document: 'a.pdf', page: 3 }, 'b.pdf:7'];
    const c = citationScores(gt, [
      { file: 'a.pdf', page: '3' },
      { file: 'a.pdf', page: 4 },
      { document: 'c.pdf', page: 1 },
    ]);
    close(c.page.precision, 1 / 3);
    close(c.page.recall, 1 / 2);
    close(c.page.f1, (2 * (1 / 3) * (1 / 2)) / (1 / 3 + 1 / 2));
    close(c.doc.precision, 1 / 2);
    close(c.doc.recall, 1 / 2);
    assert.deepEqual(citationScores(gt, []), {
      page: { precision: 0, recall: 0, f1: 0 },
      doc: { precision: 0, recall: 0, f1: 0 },
    });
    assert.deepEqual(citationScores(null, [{ file: 'a.pdf', page: 3 }]).page, { precision: 0, recall: 0, f1: 0 });
  });
});

describe('retrieval metrics', () => {
  it('first hit, best search and reciprocal ranks', () => {
    const gt = [{ file: 'a.pdf', page: 2 }];
    const r = retrievalMetrics(
      [
        { iteration: 1, query: 'x', results: [{ file: 'a.pdf', page_number: 9 }] },
        {
          iteration: 2,
          query: 'y',
          results: [
            { file: 'a.pdf', page_number: 1 },
            { file: 'a.pdf', page_number: 2 },
          ],
        },
        { iteration: 4, query: 'z', results: [{ file: 'a.pdf', page_number: 2 }] },
      ],
      gt,
    );
    assert.deepEqual(r, {
      success: true,
      iterations_to_success: 2,
      first_hit_rank: null,
      first_search_rr: 0,
      best_rank: 1,
      best_rr: 1,
      ranks: [null, 2, 1],
    });
  });
});

describe('drag score on a small DRAG file (hand-computed)', () => {
  const tmp = useTempDir();
  it('reproduces success, Hit@K, both MRRs, ANLS* and citation F1', async () => {
    const result = await scoreTrajectoriesFile(FIXTURE_RUN);
    const s = result.summary;
    // Per question (fixture): first-search ranks 1, 2, -, -, 2, -, -(no results), 1; best 1, 1, 2, -, 1, -, -, 1.
    assert.equal(s.total_questions, 8);
    assert.equal(s.success_count, 5);
    close(s.success_rate as number, 5 / 8);
    close(s.hit_at_1 as number, 2 / 8);
    close(s.hit_at_3 as number, 4 / 8);
    assert.equal(s.hit_at_5, undefined, 'no Hit@5 with top_k 3');
    close(s.mrr as number, (1 + 0.5 + 0.5 + 1) / 8);
    close(s.first_search_mrr as number, (1 + 0.5 + 0.5 + 1) / 4);
    close(s.best_search_mrr as number, (1 + 1 + 0.5 + 1 + 1) / 5);
    close(s.avg_best_rank as number, 6 / 5);
    close(s.avg_iterations_to_success as number, (1 + 1 + 2 + 1 + 1) / 5);
    close(s.avg_iterations as number, (2 + 3 + 3 + 5 + 5 + 5 + 1 + 2) / 8);
    close(s.avg_anls as number, 3 / 8); // exact answers on 3 questions; "$8.7 billion" vs "$8.70" is under 0.5
    close(s.avg_page_f1 as number, 4 / 8);
    close(s.avg_doc_f1 as number, 6 / 8);
    await writeEvaluation(path.join(tmp(), 'ev'), result);
    const line = JSON.parse(readFileSync(path.join(tmp(), 'ev', 'per_question.jsonl'), 'utf8').split('\n')[1]);
    assert.deepEqual(
      line.searches.map((x: { query: string; gt_rank: number }) => [x.query, x.gt_rank]),
      [
        ['3M balance sheet property plant equipment net', 2],
        ['"property, plant and equipment - net" 2018', 1],
      ],
    );
  });
});

describe('drag compare', () => {
  const tmp = useTempDir();

  function evalDir(name: string, ranks: Array<number | null>): string {
    const dir = path.join(tmp(), name);
    mkdirSync(dir, { recursive: true });
    const records = ranks.map((r, i) => ({
      id: `q${i}`,
      question: `Q${i}`,
      success: r !== null,
      first_hit_rank: r,
      best_rank: r,
      iterations_to_success: r === null ? null : 1,
      anls_score: r === 1 ? 1 : 0,
      page_f1: 0,
      doc_f1: 0,
      first_search_rr: r ? 1 / r : 0,
    }));
    writeFileSync(path.join(dir, 'per_question.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    writeFileSync(path.join(dir, 'summary.json'), JSON.stringify({ model: name }));
    return dir;
  }

  it('a run without any hit has no first-hit rank (not 0, which would read as the best rank)', async () => {
    const a = await loadEvaluation(evalDir('none', [null, null, null]));
    const b = await loadEvaluation(evalDir('some', [2, null, 1]));
    const c = compareRuns(a, b, { seed: 1 });
    assert.deepEqual(
      [
        c.metrics.avg_first_hit_rank.a,
        c.metrics.avg_first_hit_rank.b,
        c.metrics.avg_first_hit_rank.delta,
        c.metrics.avg_first_hit_rank.ci95,
      ],
      [null, 1.5, null, null],
    );
    assert.equal(c.metrics.avg_iterations_to_success.a, null);
    assert.match(comparisonMarkdown(c), /\| First-hit rank \| – \| 1\.500 \| – \|/);
    // where both runs have hits the interval skips the resamples in which one has none
    const d = compareRuns(b, await loadEvaluation(evalDir('more', [1, 3, 1])), { seed: 1 });
    assert.ok(d.metrics.avg_first_hit_rank.ci95 !== null);
  });

  it('computes the exact McNemar p by hand', () => {
    close(mcnemarExact(1, 4), (2 * (1 + 5)) / 32);
    close(mcnemarExact(0, 0), 1);
    close(mcnemarExact(3, 3), 1);
    close(mcnemarExact(0, 10), 2 / 1024);
  });

  it('gives deltas, seeded bootstrap intervals, McNemar p and wins/losses/ties', async () => {
    const a = await loadEvaluation(evalDir('base', [1, 2, null, 3, 1, null, null, 2, 1, null]));
    const b = await loadEvaluation(evalDir('lora', [1, 1, 1, 1, 1, 2, null, 2, 2, 1]));
    const c = compareRuns(a, b, { seed: 7 });
    assert.deepEqual(c.runs, ['base', 'lora']);
    close(c.metrics.hit_at_1.a!, 3 / 10);
    close(c.metrics.hit_at_1.b!, 6 / 10);
    close(c.metrics.hit_at_1.delta!, 3 / 10);
    close(c.metrics.hit_at_1.relative!, 1);
    // Hit@1 discordant pairs: base-only q8; lora-only q1, q2, q3, q9 -> p = 2 * P(X <= 1 | n=5)
    close(c.metrics.hit_at_1.p!, 0.375);
    const [lo, hi] = c.metrics.hit_at_1.ci95!;
    assert.ok(lo <= 0.3 && 0.3 <= hi && lo < hi, `${lo}..${hi}`);
    assert.deepEqual(c.questions.wins, ['q1', 'q2', 'q3', 'q5', 'q9']);
    assert.deepEqual(c.questions.losses, ['q8']);
    assert.deepEqual(c.questions.ties, ['q0', 'q4', 'q6', 'q7']);
    // Same seed, same interval, whatever order the evaluations finished their questions in.
    assert.deepEqual(compareRuns(a, b, { seed: 7 }).metrics.mrr.ci95, c.metrics.mrr.ci95);
    const shuffled = compareRuns({ ...a, records: [...a.records!].reverse() }, b, { seed: 7 });
    for (const [name, m] of Object.entries(c.metrics)) assert.deepEqual(shuffled.metrics[name].ci95, m.ci95, name);
    assert.match(comparisonMarkdown(c), /\| Hit@1 \| 0\.300 \| 0\.600 \| \+0\.300 \| \+100\.0% \|/);
  });

  it('accepts DRAG _summary.json files and prints JSON from the CLI', async () => {
    const a = path.join(tmp(), 'eval_base_summary.json');
    const b = path.join(tmp(), 'eval_adapter_summary.json');
    writeFileSync(a, JSON.stringify({ model: 'Qwen3-VL-8B', success_rate: 0.5, hit_at_1: 0.4, first_search_mrr: 0.6 }));
    writeFileSync(
      b,
      JSON.stringify({ model: 'my-adapter', success_rate: 0.48, hit_at_1: 0.46, first_search_mrr: 0.66 }),
    );
    let out = '';
    const code = await runCli(
      ['compare', a, b, '--json'],
      {
        stdout: (t) => {
          out += t;
        },
        stderr: () => undefined,
      },
      new AbortController().signal,
    );
    assert.equal(code, 0);
    const json = JSON.parse(out);
    assert.deepEqual(json.runs, ['eval_base', 'eval_adapter']);
    close(json.metrics.hit_at_1.relative, 0.15); // DRAG's hand-made table: Hit@1 40 -> 46 % = +15 %
    close(json.metrics.success_rate.delta, -0.02);
    assert.equal(json.metrics.hit_at_1.ci95, null, 'no per-question data, no interval');
  });
});
