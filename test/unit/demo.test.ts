import * as assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { runCli } from '../../src/cli/main';
import { useTempDir } from './helpers';

describe('drag demo', function () {
  this.timeout(180_000);
  const tmp = useTempDir();
  const wholeLoopTitle =
    'builds a workspace and runs the whole loop offline; ' +
    'the trained writer beats the keyword agent on reports it never saw';
  it(wholeLoopTitle, async () => {
    const dir = path.join(tmp(), 'demo');
    let out = '';
    const code = await runCli(
      ['demo', dir, '--docs', '12', '--pages', '6', '--samples', '6'],
      {
        stdout: (t) => {
          out += t;
        },
        stderr: () => undefined,
      },
      new AbortController().signal,
    );
    assert.equal(code, 0);
    for (const f of [
      'drag.config.json',
      'corpus/ocr_output.jsonl',
      'runs/keyword-train/trajectories.jsonl',
      'datasets/keyword-train/sft_query_train.jsonl',
      'models/writer.json',
      'evals/keyword-agent/summary.json',
      'evals/query-writer/summary.json',
      'evals/comparison.md',
    ]) {
      assert.ok(existsSync(path.join(dir, f)), `${f} is missing`);
    }
    const questions = readFileSync(path.join(dir, 'questions.jsonl'), 'utf8').trim().split('\n');
    assert.equal(questions.length, 12 * 5);
    // Held out by report: no held-out question is about a report the writer learnt from.
    const docsOf = (f: string) =>
      new Set(
        readFileSync(path.join(dir, f), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l).answer_locations[0].document as string),
      );
    const trainDocs = docsOf('questions_train.jsonl');
    const heldoutDocs = docsOf('questions_heldout.jsonl');
    assert.deepEqual([trainDocs.size, heldoutDocs.size], [8, 4]);
    assert.ok(
      [...heldoutDocs].every((d) => !trainDocs.has(d)),
      'a held-out report is also in training',
    );
    const pages = readFileSync(path.join(dir, 'corpus', 'ocr_output.jsonl'), 'utf8')
      .trim()
      .split('\n');
    assert.equal(pages.length, 12 * 6);
    const c = JSON.parse(readFileSync(path.join(dir, 'evals', 'comparison.json'), 'utf8'));
    assert.deepEqual(c.runs, ['keyword-agent', 'query-writer']);
    assert.ok(
      c.metrics.success_rate.b > c.metrics.success_rate.a,
      `writer ${c.metrics.success_rate.b} vs keyword ${c.metrics.success_rate.a}`,
    );
    // Its first query finds the page, and on the page it finds the answer (header lines skipped).
    assert.ok(
      c.metrics.hit_at_1.b > c.metrics.hit_at_1.a,
      `Hit@1: writer ${c.metrics.hit_at_1.b} vs keyword ${c.metrics.hit_at_1.a}`,
    );
    assert.ok(
      c.metrics.avg_anls.b > c.metrics.avg_anls.a,
      `ANLS*: writer ${c.metrics.avg_anls.b} vs keyword ${c.metrics.avg_anls.a}`,
    );
    assert.match(out, /\| Success \(GT retrieved\) \|/);
  });

  it('refuses to overwrite a workspace; --force rebuilds only a folder an earlier demo made', async () => {
    const dir = path.join(tmp(), 'demo');
    const run = async (args: string[]) => {
      let err = '';
      const code = await runCli(
        ['demo', dir, '--docs', '6', '--pages', '6', '--samples', '2', ...args],
        {
          stdout: () => undefined,
          stderr: (t) => {
            err += t;
          },
        },
        new AbortController().signal,
      );
      return { code, err };
    };
    assert.equal((await run([])).code, 0);
    writeFileSync(path.join(dir, 'runs', 'keyword-train', 'marker.txt'), 'from the first demo');
    writeFileSync(path.join(dir, 'notes.md'), 'mine');
    const again = await run([]);
    assert.equal(again.code, 2);
    assert.match(again.err, /already holds a demo workspace.*--force/);
    assert.ok(existsSync(path.join(dir, 'runs', 'keyword-train', 'marker.txt')), 'a refused run deleted something');
    const forced = await run(['--force']);
    assert.equal(forced.code, 0, forced.err);
    assert.ok(!existsSync(path.join(dir, 'runs', 'keyword-train', 'marker.txt')), 'the earlier run was not removed');
    assert.ok(existsSync(path.join(dir, 'evals', 'comparison.json')));
    assert.equal(readFileSync(path.join(dir, 'notes.md'), 'utf8'), 'mine', 'a file the demo did not write was deleted');
    // Any other workspace is never touched, --force or not.
    const other = path.join(tmp(), 'mine');
    mkdirSync(other);
    writeFileSync(path.join(other, 'drag.config.json'), '{}');
    let err = '';
    const code = await runCli(
      ['demo', other, '--force'],
      {
        stdout: () => undefined,
        stderr: (t) => {
          err += t;
        },
      },
      new AbortController().signal,
    );
    assert.equal(code, 2);
    assert.match(err, /already holds a DRAG workspace: choose an empty folder/);
    assert.deepEqual(readdirSync(other), ['drag.config.json']);
  });
});
