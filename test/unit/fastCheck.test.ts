import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { DragConfig } from '../../src/core/schema/config';
import { EvalQuestionRecord, EvalSummary } from '../../src/core/schema/evaluation';
import { compileFastCheck } from '../../src/core/schema/fastCheck';
import { OcrPage } from '../../src/core/schema/ocr';
import { QuestionRecord } from '../../src/core/schema/question';
import { Trajectory } from '../../src/core/schema/trajectory';
import { mulberry32 } from '../../src/core/util/random';
import { FIXTURE_RUN } from './helpers';

/** Seeded, so a disagreement reproduces. */
const prng = mulberry32;

const REPLACEMENTS: unknown[] = [
  null,
  undefined,
  '',
  'x',
  'file.pdf:3',
  0,
  1,
  -1,
  1.5,
  2 ** 60,
  true,
  false,
  [],
  {},
  ['a'],
  [{}],
  { page: 1 },
  'search',
  'browse',
];

/** All paths to values inside `value`. */
function paths(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  return out;
}

function mutate(value: unknown, rand: () => number): unknown {
  const copy = structuredClone(value) as Record<string, unknown>;
  const all = paths(copy).filter((p) => p.length > 0);
  const target = all[Math.floor(rand() * all.length)];
  let parent = copy as Record<string | number, unknown>;
  for (const key of target.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = target[target.length - 1];
  const r = rand();
  if (r < 0.15 && !Array.isArray(parent)) delete parent[last];
  else if (r < 0.25 && !Array.isArray(parent)) parent[`extra_${Math.floor(rand() * 3)}`] = 1;
  else parent[last] = REPLACEMENTS[Math.floor(rand() * REPLACEMENTS.length)];
  return copy;
}

function agree(schema: z.ZodType, seeds: unknown[], mutations: number, seed: number): number {
  const check = compileFastCheck(schema);
  const rand = prng(seed);
  let rejected = 0;
  for (const s of seeds)
    assert.equal(check(s), schema.safeParse(s).success, `seed record: ${JSON.stringify(s).slice(0, 200)}`);
  for (let i = 0; i < mutations; i++) {
    let v: unknown = seeds[i % seeds.length];
    const depth = 1 + Math.floor(rand() * 3);
    for (let d = 0; d < depth; d++) v = mutate(v, rand);
    const expected = schema.safeParse(v).success;
    if (!expected) rejected++;
    assert.equal(check(v), expected, `disagreement on ${JSON.stringify(v)}`);
  }
  return rejected;
}

describe('fast schema checks agree with zod', () => {
  const trajectories = readFileSync(FIXTURE_RUN, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as unknown);

  it('on 4,000 mutated DRAG trajectories', () => {
    const rejected = agree(Trajectory, trajectories, 4000, 1);
    // The mutations must actually exercise both answers.
    assert.ok(rejected > 500 && rejected < 3900, `rejected ${rejected}`);
  });
  it('on mutated OCR pages, questions and evaluation records', () => {
    agree(OcrPage, [{ file: 'a.pdf', page_number: 2, total_pages: 3, text: 'x' }], 1500, 2);
    agree(
      QuestionRecord,
      [
        {
          id: 'q',
          question: 'Q?',
          answers: [['a'], 'b'],
          answer_locations: [{ document: 'a.pdf', page: 1 }, 'b.pdf:2'],
          category: null,
        },
      ],
      1500,
      3,
    );
    agree(
      EvalQuestionRecord,
      [
        {
          id: 'q',
          question: 'Q',
          answer: ['x'],
          citations: [{ file: 'a', page: 1 }],
          success: true,
          iterations: 2,
          first_hit_rank: 1,
          page_f1: 0.5,
        },
      ],
      1500,
      4,
    );
    agree(EvalSummary, [{ model: 'm', total_questions: 3, hit_at_1: 0.5 }], 800, 5);
  });
  it('on a strict object with defaults and a URL check (delegated to zod)', () => {
    agree(
      DragConfig,
      [
        {
          search: { topK: 3 },
          endpoints: { a: { baseUrl: 'http://localhost:8001/v1' } },
          hosts: { h: { workdir: '/w', launcher: 'ssh' } },
        },
      ],
      1500,
      6,
    );
  });
});
