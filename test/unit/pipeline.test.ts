import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { SYSTEM_PROMPT } from '../../src/core/agent/prompts';
import { extractThinking } from '../../src/core/agent/thinking';
import { hashFile } from '../../src/core/search/index';
import {
  ALL_FORMATS,
  assignSplit,
  DatasetBuilder,
  examplePieces,
  examplesOf,
  exampleLines,
  type FormatOptions,
  formatProcessed,
  seededShuffle,
} from '../../src/core/pipeline/format';
import {
  minePairs,
  processedLineEnd,
  processedLineStart,
  processTrajectory,
  pyFixed,
  type ProcessedRecord,
} from '../../src/core/pipeline/process';
import { processFiles, runProcess } from '../../src/core/pipeline/runProcess';
import { LineStore } from '../../src/core/io/write';
import { Trajectory } from '../../src/core/schema/trajectory';
import { FIXTURE_RUN, ROOT, useTempDir } from './helpers';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} != ${b}`);

/** A trajectory whose searches put the ground truth (a.pdf p.1) at the given ranks (null = missed). */
function traj(id: string, qid: string, ranks: Array<number | null>, reasoning: Array<string | null> = []): Trajectory {
  return Trajectory.parse({
    id,
    question_id: qid,
    question: `Question ${qid}?`,
    ground_truth: { answers: [['x']], answer_locations: [{ document: 'a.pdf', page: 1 }], category: null },
    iterations: ranks.map((rank, i) => ({
      step: i + 1,
      action: 'search',
      query: `${qid} query ${i + 1}`,
      reasoning: reasoning[i] ?? null,
      results: [1, 2, 3].map((r) => ({
        file: 'a.pdf',
        page_number: r === rank ? 1 : 10 + r,
        total_pages: 20,
        rank: r,
      })),
      gt_found: rank !== null,
      gt_rank: rank,
      rank_score: rank === null ? null : (3 - rank + 1) / 3,
    })),
    final_answer: ['x'],
  });
}

describe("drag process (DRAG's processing of trajectories)", () => {
  it("computes DRAG's effort score, and the corrected one that ignores searches after the first hit", () => {
    // DRAG's own example: 2 searches, hit at rank 2 in search 2 -> 1 - 4/6.
    const a = processTrajectory(traj('t1', 'q1', [null, 2]), 3);
    close(a.cumulative_effort_score, 1 - 4 / 6);
    close(a.effort_score_until_first_hit, 1 - 4 / 6);
    // Hit at rank 2 in search 1, then 2 more searches: DRAG 1 - 1/9 (rises with later searches), corrected 1 - 1/3.
    const b = processTrajectory(traj('t2', 'q2', [2, null, null]), 3);
    close(b.cumulative_effort_score, 1 - 1 / 9);
    close(b.effort_score_until_first_hit, 1 - 1 / 3);
    assert.equal(processTrajectory(traj('t3', 'q3', [null, null]), 3).cumulative_effort_score, 0);
  });

  it('picks the best search (earliest on ties) and the first success', () => {
    const r = processTrajectory(traj('t', 'q', [3, 1, 1, null]), 3);
    assert.equal(r.best_search?.step, 2);
    close(r.best_rank_score, 1);
    assert.equal(r.first_success_step, 1);
    assert.equal(r.total_searches, 4);
  });

  it('takes reasoning from the log, or from <think> in the raw response', () => {
    assert.equal(extractThinking('<think> look at the cash flow </think>\nok'), 'look at the cash flow');
    assert.equal(extractThinking('the balance sheet</think>'), 'the balance sheet');
    assert.equal(extractThinking('Reasoning: use segments\n\nthen more'), 'use segments');
    assert.equal(extractThinking('Reasoning: x', { labels: false }), null);
    const t = traj('t', 'q', [1]);
    t.iterations[0].raw_response = '<think>from raw</think>';
    assert.equal(processTrajectory(t, 3).searches[0].reasoning, 'from raw');
  });

  it('mines DPO pairs across samples of a question, with a minimum margin', () => {
    const s0 = processTrajectory(traj('t0', 'q', [null, 3]), 3); // scores -1, 1/3
    const s1 = processTrajectory(traj('t1', 'q', [1]), 3); // 1
    minePairs([s0, s1]);
    const pairs = [...s0.query_pairs, ...s1.query_pairs].map((p) => [
      p.better.query,
      p.worse.query,
      Number(p.margin.toFixed(3)),
    ]);
    // t0 search 1 vs t1 search 1 have the same text and are never paired.
    assert.deepEqual(pairs.sort(), [
      ['q query 1', 'q query 2', 0.667], // t1's search (1) beats t0's search 2 (1/3)
      ['q query 2', 'q query 1', 1.333], // t0's search 2 (1/3) beats its search 1 (missed, -1)
    ]);
    // Each pair lives on the trajectory of its better search.
    assert.equal(s1.query_pairs.length, 1);
    assert.equal(s1.query_pairs[0].better.trajectory_id, 't1');
    const m0 = processTrajectory(traj('t0', 'q', [null, 3]), 3);
    const m1 = processTrajectory(traj('t1', 'q', [1]), 3);
    minePairs([m0, m1], 1);
    assert.deepEqual(
      [...m0.query_pairs, ...m1.query_pairs].map((p) => p.better.step),
      [2],
    );
  });

  it('formats statistics keys as Python does (half to even on exact ties)', () => {
    assert.equal(pyFixed(0.25, 1), '0.2');
    assert.equal(pyFixed(0.75, 1), '0.8');
    assert.equal(pyFixed(2 / 3, 2), '0.67');
    assert.equal(pyFixed(1 / 3, 1), '0.3');
  });

  it("processes a real DRAG file: failed trajectories out unless asked, DRAG's statistics keys", async () => {
    const out = await processFiles([FIXTURE_RUN]);
    assert.deepEqual(
      out.records.map((r) => r.question_id),
      [
        'financebench_id_03029',
        'financebench_id_04672',
        'financebench_id_00799',
        'financebench_id_00517',
        'financebench_id_00685',
      ],
    );
    assert.equal(out.stats.total_trajectories, 8);
    assert.equal(out.stats.valid_trajectories, 5);
    assert.equal(out.stats.total_searches_all, 18);
    assert.deepEqual(out.stats.effort_score_distribution, { '1.0': 2, '0.8': 1, '0.3': 1, '0.9': 1, '0.0': 3 });
    assert.deepEqual(out.stats.best_rank_distribution, { 1: 4, 2: 1 });
    assert.equal((await processFiles([FIXTURE_RUN], { includeFailed: true })).records.length, 8);
  });
});

describe("drag format (DRAG's formats + TRL + LLaMA-Factory)", () => {
  const tmp = useTempDir();

  it("writes DRAG's shapes exactly, with question_id", () => {
    const r = processTrajectory(traj('t', 'q', [null, 2, 1], [null, 'check the notes', null]), 3);
    minePairs([r]);
    const [sq] = examplesOf('sft_query', r, true);
    assert.deepEqual(sq, {
      input: '<question>Question q?</question>',
      output: '<search>q query 3</search>',
      trajectory_id: 't',
      question_id: 'q',
      rank_score: 1,
      format: 'query_generation',
    });
    const [st] = examplesOf('sft_trajectory', r, true);
    assert.equal(
      st.output,
      [
        '<search>q query 1</search>',
        '<result>No relevant results</result>',
        '<think>check the notes</think>',
        '<search>q query 2</search>',
        '<result>Found relevant document at rank 2</result>',
        '<search>q query 3</search>',
        '<result>Found relevant document at rank 1</result>',
      ].join('\n'),
    );
    const ctx = examplesOf('sft_context', r, true);
    assert.deepEqual(
      ctx.map((c) => c.input),
      [
        '<question>Question q?</question>\n\nPrevious query: q query 1\n  Result: Not found',
        '<question>Question q?</question>\n\nPrevious query: q query 1\n  Result: Not found\n' +
          'Previous query: q query 2\n  Result: Found at rank 2',
      ],
    );
    assert.equal(ctx[0].output, '<think>check the notes</think>\n<search>q query 2</search>');
    const dpo = examplesOf('dpo', r, false);
    assert.equal(dpo.length, 3);
    assert.equal(dpo[0].prompt, '<question>Question q?</question>\n\nGenerate a search query to find the answer:');
    const reward = examplesOf('reward', r, true);
    assert.deepEqual(
      reward.map((x) => [x.input, Number((x.score as number).toFixed(3))]),
      [
        ['Question: Question q?\nQuery: q query 1', 0],
        ['Question: Question q?\nQuery: q query 2', 0.667],
        ['Question: Question q?\nQuery: q query 3', 1],
      ],
    );
  });

  it("exports training-ready data with the agent's real prompt and tool schema", () => {
    const r = processTrajectory(traj('t', 'q', [2, 1]), 3);
    minePairs([r]);
    const [sft] = examplesOf('trl_sft', r, true) as unknown as Array<{
      messages: Array<{ role: string; content: string; tool_calls?: unknown }>;
      tools: unknown[];
    }>;
    assert.deepEqual(
      sft.messages.map((m) => m.role),
      ['system', 'user', 'assistant'],
    );
    assert.equal(sft.messages[0].content, SYSTEM_PROMPT);
    assert.deepEqual(sft.messages[2].tool_calls, [
      { type: 'function', function: { name: 'search_documents', arguments: { query: 'q query 2' } } },
    ]);
    assert.equal(sft.tools.length, 2);
    const [pref] = examplesOf('trl_dpo', r, true) as unknown as Array<{
      prompt: unknown[];
      chosen: unknown[];
      rejected: unknown[];
    }>;
    assert.equal(pref.prompt.length, 2);
    const [lf] = examplesOf('llamafactory_sft', r, true) as unknown as Array<{
      conversations: Array<{ from: string; value: string }>;
    }>;
    assert.deepEqual(lf.conversations[1], {
      from: 'function_call',
      value: '{"name":"search_documents","arguments":{"query":"q query 2"}}',
    });
  });

  it('splits by question with a seeded shuffle: no question in both train and val, in any format', async () => {
    const trajectories = Array.from({ length: 40 }, (_, i) => traj(`t${i}`, `q${i % 20}`, [i % 3 === 0 ? null : 2, 1]));
    const input = path.join(tmp(), 'traj.jsonl');
    writeFileSync(input, trajectories.map((t) => JSON.stringify(t)).join('\n') + '\n');
    const processed = path.join(tmp(), 'processed.jsonl');
    await runProcess([input], { processed, stats: path.join(tmp(), 'stats.json') });
    const outDir = path.join(tmp(), 'ds');
    const report = await formatProcessed([processed], outDir, {
      formats: ['sft_query', 'dpo', 'reward', 'trl_sft', 'llamafactory_dpo'],
      trainRatio: 0.75,
      seed: 42,
      splitBy: 'question',
      reasoning: true,
    });
    assert.equal(report.trainQuestions + report.valQuestions, 20);
    assert.equal(report.trainQuestions, 15);
    const questions = (file: string) =>
      new Set(
        readFileSync(path.join(outDir, file), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l).question_id as string),
      );
    const trainQ = new Set<string>();
    const valQ = new Set<string>();
    for (const f of readdirSync(outDir).filter((f) => f.endsWith('.jsonl'))) {
      for (const q of questions(f)) (f.includes('_train') ? trainQ : valQ).add(q);
    }
    assert.deepEqual(
      [...trainQ].filter((q) => valQ.has(q)),
      [],
      'a question leaked',
    );
    const manifest = JSON.parse(readFileSync(path.join(outDir, 'manifest.json'), 'utf8'));
    assert.equal(manifest.inputs[0].sha256, await hashFile(processed));
    assert.equal(manifest.counts.sft_query.total, 40);
    const info = JSON.parse(readFileSync(path.join(outDir, 'dataset_info.json'), 'utf8'));
    assert.equal(info.drag_dpo_train.file_name, 'llamafactory_dpo_train.jsonl');
    assert.equal(info.drag_dpo_train.ranking, true);
    // Same seed, same files.
    const again = path.join(tmp(), 'ds2');
    await formatProcessed([processed], again, {
      formats: ['sft_query'],
      trainRatio: 0.75,
      seed: 42,
      splitBy: 'question',
      reasoning: true,
    });
    assert.equal(
      readFileSync(path.join(again, 'sft_query_train.jsonl'), 'utf8'),
      readFileSync(path.join(outDir, 'sft_query_train.jsonl'), 'utf8'),
    );
  });

  const trainerAcceptsTitle =
    'writes files the trainer accepts: python -m drag_trainer check-data on every SFT/DPO file, ' +
    'and a broken line is named';
  it(trainerAcceptsTitle, async function () {
    // One python start per file: on a busy machine each takes seconds.
    this.timeout(300_000);
    const input = path.join(tmp(), 'traj.jsonl');
    writeFileSync(
      input,
      Array.from({ length: 12 }, (_, i) =>
        JSON.stringify(traj(`t${i}`, `q${i % 6}`, [i % 3 === 0 ? null : 2, 1])),
      ).join('\n') + '\n',
    );
    const processed = path.join(tmp(), 'processed.jsonl');
    await runProcess([input], { processed, stats: path.join(tmp(), 'stats.json') });
    const outDir = path.join(tmp(), 'ds');
    await formatProcessed([processed], outDir, {
      formats: [
        'sft_query',
        'sft_trajectory',
        'sft_context',
        'dpo',
        'trl_sft',
        'trl_dpo',
        'llamafactory_sft',
        'llamafactory_dpo',
      ],
      trainRatio: 0.7,
      seed: 1,
      splitBy: 'question',
      reasoning: true,
    });
    const check = (task: string, file: string) =>
      spawnSync(process.env.PYTHON ?? 'python3', ['-m', 'drag_trainer', 'check-data', '--task', task, file], {
        cwd: path.join(ROOT, 'trainer'),
        encoding: 'utf8',
      });
    if (check('sft', path.join(outDir, 'trl_sft_train.jsonl')).error) {
      console.log('      skipped: no python3');
      this.skip();
    }
    const files = readdirSync(outDir).filter((f) => f.endsWith('.jsonl') && !f.startsWith('reward'));
    assert.ok(files.length >= 12, files.join(', '));
    for (const f of files) {
      const r = check(/dpo/.test(f) ? 'dpo' : 'sft', path.join(outDir, f));
      assert.equal(r.status, 0, `${f}: ${r.stderr}${r.stdout}`);
    }
    const broken = path.join(tmp(), 'broken.jsonl');
    writeFileSync(
      broken,
      readFileSync(path.join(outDir, 'trl_dpo_train.jsonl'), 'utf8') + '{"prompt": [], "chosen": "x"}\n',
    );
    const r = check('dpo', broken);
    assert.equal(r.status, 1);
    const line = readFileSync(broken, 'utf8').trim().split('\n').length;
    assert.match(r.stderr, new RegExp(`broken\\.jsonl:${line}: prompt: must be a non-empty list of messages`));
  });

  it('can split by ground-truth document', () => {
    const recs: ProcessedRecord[] = ['a.pdf', 'a.pdf', 'b.pdf', 'c.pdf'].map((doc, i) => ({
      ...processTrajectory(traj(`t${i}`, `q${i}`, [1]), 3),
      ground_truth: { answer_locations: [{ document: doc, page: 1 }] },
    }));
    const split = assignSplit(recs, { trainRatio: 0.5, seed: 1, splitBy: 'document' });
    assert.equal(split.get('q0'), split.get('q1'), 'both questions of a.pdf on one side');
  });

  it('shuffles reproducibly', () => {
    assert.deepEqual(seededShuffle([1, 2, 3, 4, 5], 42), seededShuffle([1, 2, 3, 4, 5], 42));
    assert.notDeepEqual(seededShuffle([1, 2, 3, 4, 5, 6, 7, 8], 42), seededShuffle([1, 2, 3, 4, 5, 6, 7, 8], 43));
  });
});

describe('drag process / drag format write the same bytes as serialising whole records', () => {
  const tmp = useTempDir();

  /** Trajectories that exercise every optional field, non-ASCII text, samples of one question and bad lines. */
  function variedInput(): string {
    const lines: string[] = [];
    for (let i = 0; i < 60; i++) {
      const t = JSON.parse(
        JSON.stringify(traj(`t${i}`, `q${i % 7}`, [i % 4 === 0 ? null : (i % 3) + 1, i % 5 === 0 ? null : 1, 2])),
      ) as Record<string, unknown> & { iterations: Array<Record<string, unknown>> };
      if (i % 3 === 0) t.question = `Ünïcode “quotes” \u2028 日本 ${i}?`;
      if (i % 4 === 1) for (const it of t.iterations) it.raw_response = `<think>raw ${i} ✓</think>`;
      if (i % 5 === 2) t.model = 'Qwen/Qwen3-VL-8B-Thinking';
      if (i % 6 === 3) t.sampling_config = { temperature: 0.7, top_p: 0.95 };
      if (i % 7 === 4) t.run_id = `run-${i % 2}`;
      if (i % 8 === 5) t.sample = i % 3;
      if (i % 9 === 6) t.iterations[1].query = t.iterations[0].query;
      lines.push(JSON.stringify(t));
      if (i === 10) lines.push('{"broken": ');
      if (i === 20) lines.push('[1, 2]');
    }
    return `${lines.join('\n')}\n`;
  }

  it('processedLineStart + processedLineEnd is JSON.stringify of the record', () => {
    for (const ranks of [[null, 2, 1], [1], [null, null], [3, 3, null, 1]]) {
      const r = processTrajectory(traj('t', 'q', ranks, ['why', null, 'because']), 3);
      minePairs([r, processTrajectory(traj('u', 'q', [2]), 3)]);
      assert.equal(processedLineStart(r) + processedLineEnd(r), `${JSON.stringify(r)}\n`);
      const bare = { ...r, model: undefined, run_id: undefined } as unknown as ProcessedRecord;
      assert.equal(processedLineStart(bare) + processedLineEnd(bare), `${JSON.stringify(bare)}\n`);
    }
  });

  for (const includeFailed of [false, true]) {
    const flag = includeFailed ? ' --include-failed' : '';
    it(`process${flag}: the file is the in-memory records, serialised`, async () => {
      const input = path.join(tmp(), 'traj.jsonl');
      writeFileSync(input, variedInput());
      const options = { includeFailed, minMargin: 0.1 };
      const reference = await processFiles([input, FIXTURE_RUN], options);
      assert.ok(
        reference.records.some((r) => r.query_pairs.some((p) => p.worse.trajectory_id !== r.id)),
        'some pairs span two samples of a question',
      );
      const out = path.join(tmp(), 'processed.jsonl');
      const streamed = await runProcess([input, FIXTURE_RUN], { processed: out }, options);
      assert.equal(readFileSync(out, 'utf8'), reference.records.map((r) => `${JSON.stringify(r)}\n`).join(''));
      assert.deepEqual(streamed.stats, reference.stats);
      assert.deepEqual(streamed.errors, reference.errors);
      assert.equal(streamed.errors.length, 2, 'the two bad lines are reported');
    });
  }

  it('writes each example as JSON.stringify would, also where the data holds a mark or a constant', () => {
    // The agent formats' constants are spliced in as JSON made once; data equal to a stand-in mark,
    // or to a constant itself, must still come out as JSON.stringify writes it.
    const odd = [
      '\u0000drag-constant-0',
      '\u0000drag-constant-2',
      'x"\u0000drag-constant-1',
      '\u0000drag-constant-9',
      SYSTEM_PROMPT,
      'lone \ud800 surrogate',
      'plain',
    ];
    for (const text of odd) {
      const r = processTrajectory(traj('t', 'q', [2, 1, null], [text, null, text]), 3);
      r.question = text;
      r.searches[1].query = text;
      minePairs([r]);
      for (const format of ALL_FORMATS)
        for (const reasoning of [true, false])
          for (const ex of examplesOf(format, r, reasoning)) {
            const before = structuredClone(ex);
            const store = new LineStore(64);
            store.addJsonPieces(examplePieces(ex));
            assert.equal(
              store.bytes(0).toString('utf8'),
              `${JSON.stringify(ex)}\n`,
              `${format}, ${JSON.stringify(text.slice(0, 20))}`,
            );
            assert.deepEqual(ex, before, 'the example is left as it was');
          }
    }
  });

  it("writes DRAG's formats' lines, each string escaped once, as JSON.stringify writes the examples", () => {
    const odd = [
      'plain',
      'quote " and \\ back',
      'lone \ud800',
      '\udc00 lone low',
      'new\nline\u2028',
      '日本 ✓ 😀',
      'tab\t\u0001\u001f\u007f',
      '',
    ];
    for (const text of odd)
      for (const ranks of [[2, 1, null], [null, null], [1], []]) {
        const r = processTrajectory(traj('t', 'q', ranks, [text, null, '']), 3);
        const other = processTrajectory(traj('u', 'q', [3, null]), 3);
        r.question = text;
        if (r.searches[1]) r.searches[1].query = `${text}?`;
        minePairs([r, other]);
        for (const format of ['sft_query', 'sft_trajectory', 'dpo'] as const)
          for (const reasoning of [true, false])
            assert.deepEqual(
              exampleLines(format, r, reasoning),
              examplesOf(format, r, reasoning).map((ex) => JSON.stringify(ex)),
              `${format}, ${JSON.stringify(text)}, ${JSON.stringify(ranks)}`,
            );
      }
    // A record read back from a processed file may hold anything: then the examples are serialised whole.
    const r = processTrajectory(traj('t', 'q', [1, 2]), 3);
    (r.searches[0] as { query: unknown }).query = 7;
    assert.equal(exampleLines('sft_trajectory', r, true), null);
    assert.equal(exampleLines('reward', r, true), null, 'only the three formats are written as lines');
  });

  it('format: every file is what formatting whole records in memory gives (examples, split, shuffle)', async () => {
    const input = path.join(tmp(), 'traj.jsonl');
    writeFileSync(input, variedInput());
    const processed = path.join(tmp(), 'processed.jsonl');
    await runProcess([input], { processed }, { includeFailed: true });
    for (const [splitBy, reasoning] of [
      ['question', true],
      ['document', false],
    ] as const) {
      const outDir = path.join(tmp(), `ds-${splitBy}`);
      const options = { formats: [...ALL_FORMATS], trainRatio: 0.7, seed: 7, splitBy, reasoning };
      await formatProcessed([processed], outDir, options);
      // The reference: whole records in memory, each format's examples serialised, split, shuffled.
      const records = readFileSync(processed, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as ProcessedRecord);
      const split = assignSplit(records, options);
      for (const [i, format] of ALL_FORMATS.entries()) {
        const sides = { train: [] as string[], val: [] as string[] };
        for (const r of records)
          for (const ex of examplesOf(format, r, reasoning))
            sides[split.get(r.question_id)!].push(`${JSON.stringify(ex)}\n`);
        // A format with examples always has a train file (empty if all went to val); a val file only with lines.
        const none = sides.train.length + sides.val.length === 0;
        const expect = (side: 'train' | 'val', seed: number) =>
          none || (side === 'val' && !sides.val.length) ? null : seededShuffle(sides[side], seed).join('');
        const read = (side: string) => {
          const f = path.join(outDir, `${format}_${side}.jsonl`);
          return existsSync(f) ? readFileSync(f, 'utf8') : null;
        };
        assert.equal(read('train'), expect('train', 7 + 1000 * (i + 1)), `${format}_train (${splitBy})`);
        assert.equal(read('val'), expect('val', 7 + 1000 * (i + 1) + 1), `${format}_val (${splitBy})`);
      }
    }
  });

  for (const includeFailed of [false, true]) {
    const flag = includeFailed ? ' --include-failed' : '';
    it(`process --output-dir${flag}: the dataset of process + format, in one pass`, async () => {
      const input = path.join(tmp(), 'traj.jsonl');
      writeFileSync(input, variedInput());
      const options: FormatOptions = {
        formats: [...ALL_FORMATS],
        trainRatio: 0.7,
        seed: 7,
        splitBy: 'question',
        reasoning: true,
      };
      const processed = path.join(tmp(), 'processed.jsonl');
      await runProcess([input, FIXTURE_RUN], { processed }, { includeFailed, minMargin: 0.1 });
      const twoSteps = path.join(tmp(), 'two-steps');
      await formatProcessed([processed], twoSteps, options);
      const onePass = path.join(tmp(), 'one-pass');
      const outcome = await runProcess(
        [input, FIXTURE_RUN],
        { dataset: { outputDir: onePass, options } },
        { includeFailed, minMargin: 0.1 },
      );
      const files = readdirSync(twoSteps)
        .filter((f) => f !== 'manifest.json')
        .sort();
      assert.ok(files.length > 10, `every format wrote files: ${files.join(', ')}`);
      assert.deepEqual(readdirSync(onePass).sort(), [...files, 'manifest.json'].sort());
      // stats.json names the output files: the same names, in the other folder.
      const twoStepsText = (f: string) => readFileSync(path.join(twoSteps, f), 'utf8').replaceAll(twoSteps, onePass);
      for (const f of files) assert.equal(readFileSync(path.join(onePass, f), 'utf8'), twoStepsText(f), f);
      // The manifest names the trajectories (with the hashes of the bytes read) and how they were processed.
      const manifest = JSON.parse(readFileSync(path.join(onePass, 'manifest.json'), 'utf8'));
      assert.deepEqual(
        manifest.inputs,
        await Promise.all(
          [input, FIXTURE_RUN].map(async (p) => ({ path: path.resolve(p), sha256: await hashFile(p) })),
        ),
      );
      assert.deepEqual(manifest.processed, { top_k: 3, include_failed: includeFailed, min_margin: 0.1, output: null });
      assert.equal(
        outcome.dataset?.formats.dpo.total,
        JSON.parse(readFileSync(path.join(twoSteps, 'stats.json'), 'utf8')).dpo.total,
      );
      assert.equal(outcome.errors.length, 2, 'the bad lines are still reported');
    });
  }

  it('writes the formats without pairs as soon as every record is read, the same files as at the end', async () => {
    const options: FormatOptions = {
      formats: ['sft_query', 'dpo', 'trl_sft'],
      trainRatio: 0.5,
      seed: 3,
      splitBy: 'question',
      reasoning: true,
    };
    const make = () =>
      Array.from({ length: 24 }, (_, i) =>
        processTrajectory(traj(`t${i}`, `q${i % 5}`, [i % 4 === 0 ? null : (i % 3) + 1, 1, null]), 3),
      );
    const early = new DatasetBuilder(options);
    const records = make();
    for (const r of records) early.addRecord(r);
    const dir = path.join(tmp(), 'early');
    early.writeUnpaired(dir);
    assert.throws(() => early.addRecord(records[0]), /after the split/);
    // Written before any pair is mined: wait for the files (no pair format among them yet).
    const deadline = Date.now() + 120_000;
    while (!['sft_query', 'trl_sft'].every((f) => existsSync(path.join(dir, `${f}_train.jsonl`)))) {
      assert.ok(Date.now() < deadline, 'the formats without pairs were never written');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(!existsSync(path.join(dir, 'dpo_train.jsonl')), 'dpo waits for its pairs');
    const groups = new Map<string, ProcessedRecord[]>();
    for (const r of records) groups.set(r.question_id, [...(groups.get(r.question_id) ?? []), r]);
    for (const g of groups.values()) minePairs(g);
    for (const r of records) early.addPairs(r);
    await assert.rejects(early.write(path.join(tmp(), 'elsewhere'), [], []), /started writing to/);
    const report = await early.write(dir, [], []);
    assert.deepEqual(Object.keys(report.formats), options.formats, 'reported in the order asked for');
    // The same bytes as a builder given each record whole, at the end.
    const late = new DatasetBuilder(options);
    const whole = make();
    const byQuestion = new Map<string, ProcessedRecord[]>();
    for (const r of whole) byQuestion.set(r.question_id, [...(byQuestion.get(r.question_id) ?? []), r]);
    for (const g of byQuestion.values()) minePairs(g);
    for (const r of whole) late.add(r);
    const lateDir = path.join(tmp(), 'late');
    await late.write(lateDir, [], []);
    const files = readdirSync(lateDir).filter((f) => f !== 'manifest.json');
    assert.deepEqual(readdirSync(dir).sort(), readdirSync(lateDir).sort());
    for (const f of files)
      assert.equal(
        readFileSync(path.join(dir, f), 'utf8'),
        readFileSync(path.join(lateDir, f), 'utf8').replaceAll(lateDir, dir),
        f,
      );
  });

  it('lets the files without pairs take their steps while it serialises the pairs', async () => {
    // 1,500 questions with a pair each: the pair lines are made in three stretches, not one.
    const input = path.join(tmp(), 'many.jsonl');
    const lines = Array.from({ length: 1500 }, (_, i) => JSON.stringify(traj(`t${i}`, `q${i}`, [2, null])));
    writeFileSync(input, `${lines.join('\n')}\n`);
    // The event loop's turns, counted as they happen; and the turn each pair record was serialised in.
    let turns = 0;
    let counting = true;
    const count = () => {
      turns++;
      if (counting) setImmediate(count);
    };
    setImmediate(count);
    const seen: number[] = [];
    const addPairs = DatasetBuilder.prototype.addPairs;
    DatasetBuilder.prototype.addPairs = function (this: DatasetBuilder, ...args) {
      seen.push(turns);
      return addPairs.apply(this, args);
    };
    try {
      const options: FormatOptions = {
        formats: ['sft_query', 'dpo'],
        trainRatio: 0.8,
        seed: 1,
        splitBy: 'question',
        reasoning: true,
      };
      const outcome = await runProcess([input], { dataset: { outputDir: path.join(tmp(), 'ds'), options } });
      assert.equal(outcome.dataset?.formats.dpo?.total, 1500);
    } finally {
      DatasetBuilder.prototype.addPairs = addPairs;
      counting = false;
    }
    assert.equal(seen.length, 1500);
    // In one synchronous loop every record would be serialised in the same turn, and a file already
    // on its way (sft_query) could not open, write or rename until the last one.
    assert.ok(new Set(seen).size >= 3, `the event loop turned ${new Set(seen).size - 1} times during the loop`);
  });
});
