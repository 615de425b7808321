import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  appendDecision,
  changedStatuses,
  curationStatuses,
  decisionsPath,
  readDecisions,
  replay,
} from '../../src/core/curation/decisions';
import { exportCuratedDataset } from '../../src/core/curation/export';
import { pairWarnings, proposePairs } from '../../src/core/curation/guards';
import { FIXTURE_RUN, ROOT, useTempDir } from './helpers';

describe('curation log', function () {
  this.timeout(30_000);
  const tmp = useTempDir();
  const base = { trajectory_id: 't1', question_id: 'q1' };

  it('appends decisions with who and when, and replays them: last accept/reject wins, undo takes back', async () => {
    const file = decisionsPath(tmp());
    const a = await appendDecision(file, { ...base, decision: 'accept', user: 'ana' });
    assert.match(a.id, /^d_/);
    assert.equal(a.user, 'ana');
    await appendDecision(file, { ...base, decision: 'reject', reason: 'wrong page cited', user: 'ana' });
    let state = replay((await readDecisions(file)).decisions);
    assert.equal(state.byTrajectory.get('t1')?.status, 'rejected');
    assert.equal(state.byTrajectory.get('t1')?.reason, 'wrong page cited');
    await appendDecision(file, { ...base, decision: 'undo', user: 'ana' });
    state = replay((await readDecisions(file)).decisions);
    assert.equal(state.byTrajectory.get('t1')?.status, 'accepted', 'undo restored the accept');
    await appendDecision(file, { ...base, decision: 'undo', target: a.id, user: 'ana' });
    state = replay((await readDecisions(file)).decisions);
    assert.equal(state.byTrajectory.get('t1')?.status ?? null, null);
    await appendDecision(file, {
      ...base,
      decision: 'pair',
      chosen: { query: 'good', rank: 1 },
      rejected: { query: 'bad', rank: null },
      user: 'ana',
    });
    state = replay((await readDecisions(file)).decisions);
    assert.equal(state.pairsByQuestion.get('q1')?.length, 1);
    assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 5, 'append-only: nothing rewritten');
  });

  it('keeps every line when two processes append at once (two windows on one workspace)', async () => {
    const file = decisionsPath(tmp());
    const script =
      `
      const { appendDecision } = require(${JSON.stringify(path.join(ROOT, 'src/core/curation/decisions.ts'))});
      (async () => { for (let i = 0; i < 100; i++) await appendDecision(process.argv[1], ` +
      `{ trajectory_id: 't' + i, question_id: 'q', decision: 'accept', user: process.argv[2] }); })();`;
    const run = (who: string) =>
      new Promise<void>((resolve, reject) => {
        const p = spawn(process.execPath, ['--import', 'tsx', '-e', script, file, who], { stdio: 'inherit' });
        p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
      });
    await Promise.all([run('window-a'), run('window-b')]);
    const { decisions, errors } = await readDecisions(file);
    assert.deepEqual(errors, []);
    assert.equal(decisions.length, 200);
    assert.equal(decisions.filter((d) => d.user === 'window-a').length, 100);
  });

  it('starts on a fresh line after a half line a killed writer left, so the next decision is whole', async () => {
    const file = decisionsPath(tmp());
    await appendDecision(file, { ...base, decision: 'accept', user: 'x' });
    appendFileSync(file, '{"id":"d_half","trajec');
    await appendDecision(file, { ...base, trajectory_id: 't2', decision: 'reject', user: 'x' });
    const { decisions, errors } = await readDecisions(file);
    assert.deepEqual(
      decisions.map((d) => d.trajectory_id),
      ['t1', 't2'],
    );
    assert.deepEqual(
      errors.map((e) => e.line),
      [2],
    );
  });

  it('on a full disk refuses the decision, leaves the log byte-identical, and a retry is whole', async function () {
    // A real full file system: a small tmpfs (root only; CI runs as root).
    const mnt = path.join(tmp(), 'full');
    mkdirSync(mnt);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
    if (mounted.status !== 0) {
      console.log(`      skipped: cannot mount a tmpfs here (${String(mounted.stderr).trim() || 'not root'})`);
      this.skip();
    }
    try {
      const file = decisionsPath(mnt);
      await appendDecision(file, { ...base, decision: 'accept', user: 'x' });
      // Fill the rest, so only the slack of the log's last page is left: a long decision half fits.
      const filler = path.join(mnt, 'filler');
      try {
        writeFileSync(filler, Buffer.alloc(64 * 1024));
      } catch {
        // ENOSPC after filling what there was: the point.
      }
      const before = readFileSync(file);
      const long = { ...base, trajectory_id: 't2', decision: 'reject' as const, reason: 'x'.repeat(8000), user: 'x' };
      await assert.rejects(appendDecision(file, long), /ENOSPC|no space/);
      assert.deepEqual(readFileSync(file), before, 'nothing written before was changed, nothing half-written left');
      rmSync(filler);
      await appendDecision(file, long);
      const { decisions, errors } = await readDecisions(file);
      assert.deepEqual(errors, []);
      assert.deepEqual(
        decisions.map((d) => d.trajectory_id),
        ['t1', 't2'],
      );
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it('reports a bad line and keeps the rest', async () => {
    const file = decisionsPath(tmp());
    await appendDecision(file, { ...base, decision: 'accept', user: 'x' });
    appendFileSync(file, '{"id":"x","decision":"maybe"}\n');
    const { decisions, errors } = await readDecisions(file);
    assert.equal(decisions.length, 1);
    assert.equal(errors[0].line, 2);
  });
});

describe('curation changes (what the Trajectories view re-renders)', () => {
  it('names exactly the trajectories whose accept/reject status changed, undo included', () => {
    const at = '2026-01-01T00:00:00.000Z';
    const d = (id: string, trajectory_id: string, decision: 'accept' | 'reject' | 'undo' | 'pair') =>
      ({ id, trajectory_id, question_id: 'q', decision, user: 'u', time: at }) as Parameters<typeof replay>[0][number];
    const log = [d('1', 't1', 'accept'), d('2', 't2', 'reject'), d('3', 't3', 'accept')];
    const before = curationStatuses(replay(log));
    // t1 flips to rejected, t2 is taken back, t4 is accepted, a pair on t3 changes no status.
    const after = curationStatuses(
      replay([...log, d('4', 't1', 'reject'), d('5', 't2', 'undo'), d('6', 't4', 'accept'), d('7', 't3', 'pair')]),
    );
    assert.deepEqual([...changedStatuses(before, after)].sort(), ['t1', 't2', 't4']);
    assert.equal(changedStatuses(after, after).size, 0);
  });
});

describe('pair guards and proposals', () => {
  const ctx = { topK: 3, minMargin: 0.34, answers: ['$1577.00', '1,577'], gtFiles: ['3M_2018_10K.pdf'] };
  it('warns about small margins, both failing, near-duplicates and leaks', () => {
    assert.deepEqual(
      pairWarnings({ query: 'capex 2018', rank: 2 }, { query: 'cash flow', rank: 3 }, ctx).map((w) => w.code),
      ['small-margin'],
    );
    assert.deepEqual(
      pairWarnings({ query: 'capex', rank: null }, { query: 'cash', rank: null }, ctx).map((w) => w.code),
      ['both-fail'],
    );
    assert.deepEqual(
      pairWarnings(
        { query: 'capital expenditure fiscal 2018 total', rank: 1 },
        { query: 'capital expenditure fiscal 2018 total 3M', rank: null },
        ctx,
      ).map((w) => w.code),
      ['near-duplicate'],
    );
    assert.deepEqual(
      pairWarnings({ query: 'capex 1,577 3M_2018_10K', rank: 1 }, { query: 'cash', rank: null }, ctx).map(
        (w) => w.code,
      ),
      ['leaks-answer', 'leaks-file'],
    );
    assert.deepEqual(
      pairWarnings({ query: 'purchases property plant equipment 2018', rank: 1 }, { query: 'capex', rank: null }, ctx),
      [],
    );
  });
  it('proposes the largest margins first, once per distinct query', () => {
    const p = proposePairs(
      [
        { query: 'net sales', rank: 1 },
        { query: 'revenue', rank: null },
        { query: 'Net  SALES', rank: 2 },
        { query: 'sales growth', rank: 3 },
      ],
      3,
    );
    assert.deepEqual(
      p.map((x) => [x.chosen.query, x.rejected.query, Number(x.margin.toFixed(2))]),
      [
        ['net sales', 'revenue', 1],
        ['net sales', 'sales growth', 0.67],
        ['sales growth', 'revenue', 0.33],
      ],
    );
  });
});

describe('export curated dataset', function () {
  this.timeout(30_000);
  const tmp = useTempDir();
  it('builds SFT and DPO sets from accepted trajectories, edits and pairs, naming the decisions used', async () => {
    const ws = tmp();
    const file = decisionsPath(ws);
    const acc = await appendDecision(file, {
      trajectory_id: 'traj_financebench_id_03029',
      question_id: 'financebench_id_03029',
      decision: 'accept',
      user: 'u',
    });
    await appendDecision(file, {
      trajectory_id: 'traj_financebench_id_00799',
      question_id: 'financebench_id_00799',
      decision: 'reject',
      reason: 'lucky',
      user: 'u',
    });
    const edit = await appendDecision(file, {
      trajectory_id: 'traj_financebench_id_01079',
      question_id: 'financebench_id_01079',
      decision: 'edit',
      step: 4,
      query: 'Amcor acquisitions 2023 2022 2021',
      verified_rank: 1,
      user: 'u',
    });
    const pair = await appendDecision(file, {
      trajectory_id: 'traj_financebench_id_01079',
      question_id: 'financebench_id_01079',
      decision: 'pair',
      chosen: { query: 'Amcor acquisitions 2023 2022 2021', rank: 1 },
      rejected: { query: 'Amcor acquisitions', rank: null, step: 1 },
      user: 'u',
    });
    const out = await exportCuratedDataset(ws, [FIXTURE_RUN], 'v1', { trainRatio: 1 });
    assert.deepEqual(out.decisionsUsed, [acc.id, edit.id, pair.id].sort());
    assert.equal(out.accepted, 1);
    assert.equal(out.pairs, 1);
    const dir = path.join(ws, 'datasets', 'v1');
    const sft = readFileSync(path.join(dir, 'sft_query_train.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      sft.map((r) => r.question_id),
      ['financebench_id_03029'],
      'the rejected one is out; the edited one has no accept',
    );
    const dpo = readFileSync(path.join(dir, 'dpo_train.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      dpo.map((r) => [r.better_query, r.worse_query]),
      [['Amcor acquisitions 2023 2022 2021', 'Amcor acquisitions']],
    );
    const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    assert.equal(manifest.curated, true);
    assert.deepEqual(manifest.decisions_used, out.decisionsUsed);
    // Deterministic: the same log gives the same files.
    const again = await exportCuratedDataset(ws, [FIXTURE_RUN], 'v2', { trainRatio: 1 });
    assert.equal(
      readFileSync(path.join(ws, 'datasets', 'v2', 'dpo_train.jsonl'), 'utf8'),
      readFileSync(path.join(dir, 'dpo_train.jsonl'), 'utf8'),
    );
    void again;
  });
});
