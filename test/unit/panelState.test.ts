import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { actionKeys, INSPECTOR_ACTIONS, inspectorActionFor } from '../../src/protocol/inspector';
import {
  HostToPanel,
  PANEL_RESTORE_STATES,
  parseRestoreState,
  type RestorableViewType,
  shortcutAllowed,
} from '../../src/protocol/panel';

const ROOT = path.resolve(__dirname, '..', '..');
const on = { singleLetterShortcuts: true };
const off = { singleLetterShortcuts: false };

describe('panel restore state', () => {
  const good: { [V in RestorableViewType]: unknown } = {
    'drag.searchCorpus': { query: 'revenue 2019' },
    'drag.inspector': { trajectoryId: 'q1-0', source: 'runs/demo/trajectories.jsonl' },
    'drag.pairEditor': { questionId: 'q1' },
    'drag.compare': {
      runs: [
        { target: 'evals/base', label: 'base' },
        { target: 'evals/adapter-x', label: 'adapter' },
      ],
    },
    'drag.trainingMonitor': { jobId: '20261202-sft-demo' },
  };

  it('restores each panel from the state its webview kept beside its own UI keys', () => {
    for (const [viewType, restore] of Object.entries(good) as Array<[RestorableViewType, unknown]>) {
      const r = parseRestoreState(viewType, { restore, ui: { query: 'typed', topK: 10 } });
      assert.ok(r.ok, `${viewType}: ${r.ok ? '' : r.message}`);
      assert.deepEqual(r.state, restore);
    }
  });

  it('says the panel cannot be restored, and why, for a missing or bad state (never throws)', () => {
    const cases: Array<[RestorableViewType, unknown, RegExp]> = [
      ['drag.searchCorpus', undefined, /Cannot restore the Search Corpus panel: it saved nothing/],
      ['drag.searchCorpus', 'garbage', /Cannot restore the Search Corpus panel: it saved nothing/],
      [
        'drag.searchCorpus',
        { restore: { query: 42 } },
        /Search Corpus panel: its saved state is not valid \(restore\.query: /,
      ],
      ['drag.inspector', { restore: { trajectoryId: '' } }, /Trajectory Inspector panel: .*restore\.trajectoryId/],
      ['drag.trainingMonitor', { restore: { jobId: '../../etc' } }, /Training Monitor panel: .*restore\.jobId/],
      ['drag.pairEditor', { restore: { questionId: 'q1', extra: 1 } }, /DPO Pair Editor panel: .*not valid/],
      [
        'drag.compare',
        {
          restore: {
            runs: [
              { target: '../outside', label: 'a' },
              { target: 'evals/b', label: 'b' },
            ],
          },
        },
        /Compare Evaluations panel: .*restore\.runs\.0\.target: must be a path inside the workspace folder/,
      ],
      [
        'drag.compare',
        {
          restore: {
            runs: [
              { target: '/abs/evals/a', label: 'a' },
              { target: 'evals/b', label: 'b' },
            ],
          },
        },
        /restore\.runs\.0\.target: must be a path inside the workspace folder/,
      ],
    ];
    for (const [viewType, raw, expected] of cases) {
      const r = parseRestoreState(viewType, raw);
      assert.equal(r.ok, false, `${viewType} ${JSON.stringify(raw)} should not restore`);
      if (!r.ok) assert.match(r.message, expected);
    }
  });

  it('has a state schema and an activation event for every panel that package.json can restore', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { activationEvents: string[] };
    for (const viewType of Object.keys(PANEL_RESTORE_STATES))
      assert.ok(pkg.activationEvents.includes(`onWebviewPanel:${viewType}`), `no onWebviewPanel:${viewType}`);
  });

  it('checks the shared host messages (settings, restore state)', () => {
    assert.ok(HostToPanel.safeParse({ type: 'panel.settings', settings: off }).success);
    assert.ok(!HostToPanel.safeParse({ type: 'panel.settings', settings: {} }).success);
    assert.ok(HostToPanel.safeParse({ type: 'panel.restoreState', state: { query: 'x' } }).success);
  });
});

describe('single-letter shortcuts setting (WCAG 2.1.4)', () => {
  it('turns off single-character keys, and only those', () => {
    for (const key of ['a', 'j', '1', '?']) {
      assert.equal(shortcutAllowed({ key }, on), true, key);
      assert.equal(shortcutAllowed({ key }, off), false, key);
    }
    for (const key of ['ArrowDown', 'Escape', 'Enter']) assert.equal(shortcutAllowed({ key }, off), true, key);
  });

  const inspectorKeysTitle =
    'the inspector: `a` accepts with shortcuts on and runs nothing with them off; arrows and Escape still work';
  it(inspectorKeysTitle, () => {
    assert.equal(inspectorActionFor({ key: 'a' }, on)?.id, 'accept');
    assert.equal(inspectorActionFor({ key: 'a' }, off), undefined);
    assert.equal(inspectorActionFor({ key: 'r' }, off), undefined);
    assert.equal(inspectorActionFor({ key: '?' }, off), undefined);
    assert.equal(inspectorActionFor({ key: 'ArrowDown' }, off)?.id, 'next');
    assert.equal(inspectorActionFor({ key: 'Escape' }, off)?.id, 'close');
    assert.equal(inspectorActionFor({ key: 'a', ctrlKey: true }, on), undefined);
  });

  it('the inspector shows no key for a button whose only key is off', () => {
    const accept = INSPECTOR_ACTIONS.find((a) => a.id === 'accept')!;
    assert.deepEqual(actionKeys(accept, on), ['a']);
    assert.deepEqual(actionKeys(accept, off), []);
    const next = INSPECTOR_ACTIONS.find((a) => a.id === 'next')!;
    assert.deepEqual(actionKeys(next, off), ['ArrowDown']);
  });
});
