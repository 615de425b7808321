import * as assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { runCli } from '../../src/cli/main';
import { examplesFromSftQuery, trainWriter, writerScorer } from '../../src/core/agent/writer';
import { FIXTURES, useTempDir } from './helpers';

describe('local query writer', function () {
  this.timeout(60_000);
  const tmp = useTempDir();
  // Every word is equally rare: only the training signal can tell the useful ones apart.
  const idf = () => 3;
  const fillers = ['report', 'filing', 'annual', 'discussion', 'statement', 'overview', 'summary', 'section'];
  const makeQuestion = (i: number) =>
    `Please review the ${fillers[i % 8]} and ${fillers[(i + 3) % 8]}: ` +
    `what did Company${i % 7} report for revenue in ${2010 + (i % 9)}?`;

  it('learns which words of a question make good queries', () => {
    const examples = Array.from({ length: 60 }, (_, i) => ({
      question: makeQuestion(i),
      query: `company${i % 7} revenue ${2010 + (i % 9)}`,
      weight: 1,
    }));
    const model = trainWriter(examples, idf, { seed: 3 });
    assert.equal(model.queryLength, 3);
    assert.ok(model.trained.accuracy > 0.9, `accuracy ${model.trained.accuracy}`);
    // A question it has not seen (new company, new year): the year, the name and "revenue" win.
    const question = 'Please review the overview and section: what did Company9 report for revenue in 2031?';
    const tokens = ['review', 'overview', 'section', 'company9', 'report', 'revenue', '2031'];
    const scores = writerScorer(model)(question, tokens, idf);
    const top = [...scores]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([t]) => t)
      .sort();
    assert.deepEqual(top, ['2031', 'company9', 'revenue']);
    // Deterministic for a seed, and for the examples in any order (a collection writes trajectories
    // in the order they complete).
    assert.deepEqual(trainWriter(examples, idf, { seed: 3 }).weights, model.weights);
    assert.deepEqual(trainWriter([...examples].reverse(), idf, { seed: 3 }).weights, model.weights);
    // A model from before the question features were added is refused, with what to do.
    assert.throws(
      () => writerScorer({ ...model, version: 1 } as unknown as typeof model),
      /version 1.*train it again with drag writer train/,
    );
  });

  it('learns to leave out context a question names once, beside what it is about', () => {
    // "<chief executive> and <company>: what … did <company> report …?": the executive's name is
    // as rare as the company's but never on the answer's page; the company is named twice. Half the
    // questions put the executive first, half second, so where a word is cannot tell them apart.
    const syllables = ['tor', 'vex', 'lum', 'quor', 'zen', 'bel', 'dar', 'mik', 'sol', 'nor', 'pra', 'gal'];
    // A name per question and role (j), never repeated: the writer cannot learn the names themselves.
    const word = (i: number, j: number) =>
      syllables[i % 12] + syllables[Math.floor(i / 12) % 12] + syllables[(j * 5 + 2) % 12];
    const cap = (w: string) => w[0].toUpperCase() + w.slice(1);
    const topics = ['patents', 'revenue', 'headquarters', 'employees'];
    const q = (i: number) => {
      const ceo = `${cap(word(i, 1))} ${cap(word(i, 2))}`;
      const co = cap(word(i, 3));
      const who = i % 2 ? `${ceo} and ${co}` : `${co} and ${ceo}`;
      return {
        question: `${who}: what ${topics[i % 4]} did ${co} report for ${2010 + (i % 9)}?`,
        query: `${word(i, 3)} ${topics[i % 4]} ${2010 + (i % 9)}`,
      };
    };
    const rare = new Set(Array.from({ length: 80 }, (_, i) => [word(i, 1), word(i, 2), word(i, 3)]).flat());
    const idfOf = (t: string) => (rare.has(t) ? 8 : /^\d+$/.test(t) ? 4 : 3);
    const model = trainWriter(
      Array.from({ length: 60 }, (_, i) => ({ ...q(i), weight: 1 })),
      idfOf,
      { seed: 5 },
    );
    let clean = 0;
    for (let i = 60; i < 80; i++) {
      const { question, query } = q(i);
      const tokens = [...new Set(question.toLowerCase().replace(/[:?]/g, '').split(' '))].filter(
        (t) => !['and', 'what', 'did', 'for'].includes(t),
      );
      const top = [...writerScorer(model)(question, tokens, idfOf)]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 3)
        .map(([t]) => t);
      if (!top.includes(word(i, 1)) && !top.includes(word(i, 2)) && top.includes(query.split(' ')[0])) clean++;
    }
    // Unseen names: only what the question does with a name tells the executive from the company.
    assert.ok(clean >= 18, `only ${clean} of 20 unseen questions leave the executive out and keep the company`);
  });

  it('reads sft_query lines, keeping the rank score as the weight', () => {
    const ex = examplesFromSftQuery([
      {
        input: '<question>What is X?</question>',
        output: '<think>hmm</think>\n<search>x value</search>',
        rank_score: 0.67,
      },
      { input: 'no tags', output: '<search>q</search>' },
      { input: '<question>Y?</question>', output: '<search>y</search>', rank_score: 0 },
    ]);
    assert.deepEqual(ex, [{ question: 'What is X?', query: 'x value', weight: 0.67 }]);
  });

  it('trains from the CLI and collects with --agent writer', async () => {
    const data = path.join(tmp(), 'sft_query_train.jsonl');
    writeFileSync(
      data,
      [
        {
          input: "<question>What was ACME's net property, plant and equipment at the end of fiscal 2023?</question>",
          output: '<search>property plant equipment net</search>',
          rank_score: 1,
        },
        {
          input: '<question>What net income did Globex report for the fourth quarter of 2022?</question>',
          output: '<search>globex net income</search>',
          rank_score: 1,
        },
      ]
        .map((l) => JSON.stringify(l))
        .join('\n') + '\n',
    );
    const ocr = path.join(FIXTURES, 'workspace', 'corpus', 'ocr_output.jsonl');
    const model = path.join(tmp(), 'writer.json');
    const io = { stdout: () => undefined, stderr: () => undefined };
    assert.equal(
      await runCli(['writer', 'train', '--data', data, '--ocr', ocr, '--out', model], io, new AbortController().signal),
      0,
    );
    const out = path.join(tmp(), 'run');
    assert.equal(
      await runCli(
        [
          'collect',
          '--questions',
          path.join(FIXTURES, 'workspace', 'questions.jsonl'),
          '--ocr',
          ocr,
          '--out',
          out,
          '--agent',
          'writer',
          '--writer-model',
          model,
        ],
        io,
        new AbortController().signal,
      ),
      0,
    );
    const lines = readFileSync(path.join(out, 'trajectories.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 5);
    assert.ok(lines.every((r) => r.model === 'query-writer:writer.json'));
    assert.ok(
      lines.some((r) => r.gt_ever_found),
      'the writer finds some pages',
    );
    // A model from an older DRAG Studio is refused before anything is written, naming the file.
    const old = path.join(tmp(), 'old-writer.json');
    writeFileSync(old, JSON.stringify({ ...JSON.parse(readFileSync(model, 'utf8')), version: 1 }));
    let err = '';
    const refused = path.join(tmp(), 'refused');
    assert.equal(
      await runCli(
        [
          'collect',
          '--questions',
          path.join(FIXTURES, 'workspace', 'questions.jsonl'),
          '--ocr',
          ocr,
          '--out',
          refused,
          '--agent',
          'writer',
          '--writer-model',
          old,
        ],
        {
          stdout: () => undefined,
          stderr: (t) => {
            err += t;
          },
        },
        new AbortController().signal,
      ),
      1,
    );
    assert.match(err, /old-writer\.json: a query writer model of version 1.*train it again/);
    assert.ok(!existsSync(refused), 'the run folder was created for a refused model');
  });
});
