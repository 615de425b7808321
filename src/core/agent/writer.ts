import { promises as fsp } from 'node:fs';
import { analyze } from '../search/analyzer';
import { fnv1a, mulberry32 } from '../util/random';
import { capitalisedTerms, type TermScorer } from './keyword';

/**
 * The local query writer: a small model trained on CPU in seconds from `sft_query` data. It learns
 * which words of a question make queries that rank the ground-truth page first: logistic
 * regression over each candidate word, with features from the corpus (IDF), the question
 * (position, capitalisation, numbers, length, repeated, which sentence it is in) and the word
 * itself (hashed), weighted by the rank
 * score of the query it came from. The embedded agent then writes its queries from the top words.
 * It is the GPU-free stand-in for LoRA training and the baseline a finetuned VLM must beat.
 */
export interface WriterModel {
  format: 'drag-query-writer';
  version: 2;
  buckets: number;
  /** Dense feature weights, then one weight per hashed word bucket. */
  weights: number[];
  bias: number;
  /** Words per first query (the median of the training queries, 2 to 5). */
  queryLength: number;
  trained: { examples: number; words: number; positives: number; epochs: number; accuracy: number; seed: number };
}

const DENSE = [
  'idf',
  'position',
  'capitalised',
  'number',
  'has_digit',
  'length',
  'early',
  'idf_rank',
  'repeated',
  'last_sentence',
  'first_sentence_only',
] as const;

interface Candidate {
  word: string;
  dense: number[];
  bucket: number;
}

/** The candidate words of a question and their features. */
export function candidates(question: string, idf: (t: string) => number, buckets: number): Candidate[] {
  const all = analyze(question);
  const tokens = [...new Set(all)];
  const counts = new Map<string, number>();
  for (const t of all) counts.set(t, (counts.get(t) ?? 0) + 1);
  // Questions often open with context that is not on the answer's page ("X leads Y.", "Assume you
  // are an analyst."): which sentence a word is in, and whether the question repeats it.
  const sentences = question
    .split(/(?<=[.?!:])\s+(?=\S)/)
    .map((x) => new Set(analyze(x)))
    .filter((x) => x.size > 0);
  const last = sentences[sentences.length - 1] ?? new Set<string>();
  const rest = new Set(sentences.slice(1).flatMap((x) => [...x]));
  const capitalised = capitalisedTerms(question);
  const idfs = tokens.map((t) => idf(t));
  const maxIdf = Math.max(1, ...idfs);
  const order = [...idfs].sort((a, b) => b - a);
  return tokens.map((word, i) => ({
    word,
    dense: [
      idfs[i] / maxIdf,
      tokens.length > 1 ? i / (tokens.length - 1) : 0,
      capitalised.has(word) ? 1 : 0,
      /^\d+([.,]\d+)?$/.test(word) ? 1 : 0,
      /\d/.test(word) ? 1 : 0,
      Math.min(word.length, 15) / 15,
      i < tokens.length / 2 ? 1 : 0,
      tokens.length > 1 ? order.indexOf(idfs[i]) / (tokens.length - 1) : 0,
      (counts.get(word) ?? 0) > 1 ? 1 : 0,
      last.has(word) ? 1 : 0,
      sentences.length > 1 && !rest.has(word) ? 1 : 0,
    ],
    bucket: fnv1a(word) % buckets,
  }));
}

function score(model: Pick<WriterModel, 'weights' | 'bias'>, c: Candidate): number {
  let z = model.bias + model.weights[DENSE.length + c.bucket];
  for (let j = 0; j < DENSE.length; j++) z += model.weights[j] * c.dense[j];
  return z;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** One training example: a question and the query that worked for it, with how well it worked. */
export interface WriterExample {
  question: string;
  query: string;
  weight: number;
}

/** Reads `sft_query` lines: `<question>…</question>` in, `<search>…</search>` out, weighted by rank score. */
export function examplesFromSftQuery(lines: ReadonlyArray<Record<string, unknown>>): WriterExample[] {
  const out: WriterExample[] = [];
  for (const l of lines) {
    const q = /<question>([\s\S]*)<\/question>/.exec(String(l.input ?? ''))?.[1];
    const query = /<search>([\s\S]*?)<\/search>/.exec(String(l.output ?? ''))?.[1];
    if (!q || !query) continue;
    const w = typeof l.rank_score === 'number' ? l.rank_score : 1;
    if (w > 0) out.push({ question: q, query, weight: w });
  }
  return out;
}

/** Trains the writer with seeded SGD (L2-regularised logistic regression). Deterministic for a seed. */
export function trainWriter(
  examples: readonly WriterExample[],
  idf: (t: string) => number,
  options: { epochs?: number; seed?: number; buckets?: number; learningRate?: number; l2?: number } = {},
): WriterModel {
  const buckets = options.buckets ?? 4096;
  const epochs = options.epochs ?? 30;
  const seed = options.seed ?? 1;
  const lr0 = options.learningRate ?? 0.5;
  const l2 = options.l2 ?? 1e-4;
  const rows: Array<{ c: Candidate; y: number; w: number }> = [];
  const lengths: number[] = [];
  // The same examples in any order train the same model (collection writes in completion order).
  const ordered = [...examples].sort((a, b) =>
    a.question < b.question
      ? -1
      : a.question > b.question
        ? 1
        : a.query < b.query
          ? -1
          : a.query > b.query
            ? 1
            : a.weight - b.weight,
  );
  for (const ex of ordered) {
    const inQuery = new Set(analyze(ex.query));
    lengths.push(inQuery.size);
    for (const c of candidates(ex.question, idf, buckets))
      rows.push({ c, y: inQuery.has(c.word) ? 1 : 0, w: ex.weight });
  }
  const model = { weights: new Array<number>(DENSE.length + buckets).fill(0), bias: 0 };
  const random = mulberry32(seed);
  const order = rows.map((_, i) => i);
  for (let epoch = 0; epoch < epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const lr = lr0 / (1 + epoch);
    for (const i of order) {
      const { c, y, w } = rows[i];
      const g = (sigmoid(score(model, c)) - y) * w;
      model.bias -= lr * g;
      for (let j = 0; j < DENSE.length; j++) model.weights[j] -= lr * (g * c.dense[j] + l2 * model.weights[j]);
      const b = DENSE.length + c.bucket;
      model.weights[b] -= lr * (g + l2 * model.weights[b]);
    }
  }
  const correct = rows.filter((r) => (score(model, r.c) > 0 ? 1 : 0) === r.y).length;
  const sorted = [...lengths].sort((a, b) => a - b);
  return {
    format: 'drag-query-writer',
    version: 2,
    buckets,
    weights: model.weights.map((x) => Number(x.toFixed(6))),
    bias: Number(model.bias.toFixed(6)),
    queryLength: Math.min(5, Math.max(2, sorted.length ? sorted[Math.floor(sorted.length / 2)] : 3)),
    trained: {
      examples: examples.length,
      words: rows.length,
      positives: rows.filter((r) => r.y === 1).length,
      epochs,
      accuracy: rows.length ? correct / rows.length : 0,
      seed,
    },
  };
}

/** The writer as the agent's term scorer. */
export function writerScorer(model: WriterModel): TermScorer {
  if (model.format !== 'drag-query-writer') throw new Error('not a DRAG query writer model (format drag-query-writer)');
  if (model.version !== 2)
    throw new Error(
      `a query writer model of version ${String(model.version)}, ` +
        'this DRAG Studio reads version 2 (more question features): train it again with drag writer train',
    );
  return (question, tokens, idf) => {
    const byWord = new Map(candidates(question, idf, model.buckets).map((c) => [c.word, c]));
    return new Map(tokens.map((t) => [t, byWord.has(t) ? score(model, byWord.get(t)!) : -Infinity]));
  };
}

/** Reads a writer model file and checks it can score; errors name the file. */
export async function loadWriterModel(file: string): Promise<{ model: WriterModel; scorer: TermScorer }> {
  let model: WriterModel;
  try {
    model = JSON.parse(await fsp.readFile(file, 'utf8')) as WriterModel;
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(`${file}: ${missing ? 'no such file' : `not JSON (${(err as Error).message})`}`);
  }
  try {
    return { model, scorer: writerScorer(model) };
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
}
