import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { indexJsonl, readLine } from '../io/jsonl';
import type { PerQuestion } from './metrics';

/** A per-question record as far as comparison needs it (ours, or DRAG's §7.4 line). */
export type QuestionScore = Pick<PerQuestion, 'id' | 'success' | 'first_hit_rank' | 'best_rank' | 'anls_score' | 'page_f1' | 'doc_f1'> &
  Partial<Pick<PerQuestion, 'iterations_to_success' | 'first_search_rr' | 'question'>>;

export interface EvalRun {
  label: string;
  source: string;
  summary: Record<string, unknown>;
  /** Null when only a summary exists (a DRAG `_summary.json` without its JSONL). */
  records: QuestionScore[] | null;
}

async function readRecords(file: string): Promise<QuestionScore[]> {
  const index = await indexJsonl<null>(file, (v) => (typeof v.id === 'string' || typeof v.id === 'number' ? { ok: true, summary: null } : { ok: false, problems: [{ fieldPath: 'id', message: 'missing id' }] }));
  const out: QuestionScore[] = [];
  for (let i = 0; i < index.offsets.length; i++) {
    const r = (await readLine(file, index.offsets[i], index.lengths[i])) as QuestionScore;
    out.push({ ...r, id: String(r.id) });
  }
  return out;
}

/**
 * Loads an evaluation: our folder (summary.json + per_question.jsonl), or DRAG's `X_summary.json`
 * (with `X.jsonl` beside it when present). Labelled by folder name (or file stem).
 */
export async function loadEvaluation(target: string, label?: string): Promise<EvalRun> {
  const st = await fsp.stat(target);
  if (st.isDirectory()) {
    const summary = JSON.parse(await fsp.readFile(path.join(target, 'summary.json'), 'utf8')) as Record<string, unknown>;
    const pq = path.join(target, 'per_question.jsonl');
    return { label: label ?? path.basename(path.resolve(target)), source: target, summary, records: existsSync(pq) ? await readRecords(pq) : null };
  }
  const summary = JSON.parse(await fsp.readFile(target, 'utf8')) as Record<string, unknown>;
  const base = target.endsWith('_summary.json') ? target.slice(0, -'_summary.json'.length) : target.replace(/\.json$/, '');
  const jsonl = `${base}.jsonl`;
  return {
    label: label ?? path.basename(base),
    source: target,
    summary,
    records: existsSync(jsonl) ? await readRecords(jsonl) : null,
  };
}

const rr = (rank: number | null | undefined) => (rank ? 1 / rank : 0);
const firstRr = (q: QuestionScore) => q.first_search_rr ?? rr(q.first_hit_rank);
const meanOf = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

interface MetricDef {
  key: string;
  label: string;
  /** Higher is better (false for ranks and iterations). */
  higherIsBetter: boolean;
  of: (qs: QuestionScore[]) => number;
  /** Binary per-question outcome, for the exact McNemar test. */
  binary?: (q: QuestionScore) => boolean;
}

export const METRICS: MetricDef[] = [
  { key: 'success_rate', label: 'Success (GT retrieved)', higherIsBetter: true, of: (qs) => meanOf(qs.map((q) => (q.success ? 1 : 0))), binary: (q) => q.success },
  { key: 'avg_iterations_to_success', label: 'Iterations to success', higherIsBetter: false, of: (qs) => meanOf(qs.filter((q) => q.success).map((q) => q.iterations_to_success ?? 0)) },
  { key: 'avg_first_hit_rank', label: 'First-hit rank', higherIsBetter: false, of: (qs) => meanOf(qs.filter((q) => q.first_hit_rank !== null).map((q) => q.first_hit_rank!)) },
  { key: 'mrr', label: 'MRR (first search, all questions)', higherIsBetter: true, of: (qs) => meanOf(qs.map(firstRr)) },
  { key: 'first_search_mrr', label: 'First-search MRR (hits only, DRAG)', higherIsBetter: true, of: (qs) => meanOf(qs.filter((q) => q.first_hit_rank !== null).map((q) => rr(q.first_hit_rank))) },
  { key: 'best_search_mrr', label: 'Best-search MRR (hits only, DRAG)', higherIsBetter: true, of: (qs) => meanOf(qs.filter((q) => q.success).map((q) => rr(q.best_rank))) },
  { key: 'hit_at_1', label: 'Hit@1', higherIsBetter: true, of: (qs) => meanOf(qs.map((q) => (q.first_hit_rank === 1 ? 1 : 0))), binary: (q) => q.first_hit_rank === 1 },
  { key: 'hit_at_3', label: 'Hit@3', higherIsBetter: true, of: (qs) => meanOf(qs.map((q) => (q.first_hit_rank !== null && q.first_hit_rank <= 3 ? 1 : 0))) },
  { key: 'avg_anls', label: 'ANLS*', higherIsBetter: true, of: (qs) => meanOf(qs.map((q) => q.anls_score ?? 0)) },
  { key: 'avg_page_f1', label: 'Citation F1 (page)', higherIsBetter: true, of: (qs) => meanOf(qs.map((q) => q.page_f1 ?? 0)) },
  { key: 'avg_doc_f1', label: 'Citation F1 (document)', higherIsBetter: true, of: (qs) => meanOf(qs.map((q) => q.doc_f1 ?? 0)) },
];

/** mulberry32, a small seeded PRNG: the same seed gives the same intervals everywhere. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Exact two-sided McNemar test: discordant pairs b (only A right) and c (only B right). */
export function mcnemarExact(b: number, c: number): number {
  const n = b + c;
  if (n === 0) return 1;
  const k = Math.min(b, c);
  // P(X <= k) for X ~ Binomial(n, 1/2), in log space to stay exact enough for large n.
  let logC = 0; // log C(n, 0)
  let cdf = 0;
  for (let i = 0; i <= k; i++) {
    if (i > 0) logC += Math.log(n - i + 1) - Math.log(i);
    cdf += Math.exp(logC - n * Math.LN2);
  }
  return Math.min(1, 2 * cdf);
}

export interface MetricComparison { a: number | null; b: number | null; delta: number | null; relative: number | null; ci95: [number, number] | null; p: number | null }

export interface Comparison {
  runs: [string, string];
  metrics: Record<string, MetricComparison>;
  questions: { wins: string[]; losses: string[]; ties: string[] };
  /** Questions present in both runs (the paired statistics use only these). */
  paired: number;
}

function summaryValue(summary: Record<string, unknown>, key: string): number | null {
  const v = summary[key];
  if (typeof v === 'number') return v;
  // DRAG's --compare reads a missing key as 0; we say "unknown" instead, except for keys DRAG always wrote.
  return key === 'mrr' || key === 'hit_at_3' ? null : 0;
}

/**
 * Compares run B against run A: each metric with absolute and relative delta; with per-question
 * records, a paired bootstrap 95% interval of the delta (resampling questions, seeded) and an
 * exact McNemar p for binary metrics; and the per-question wins, losses and ties (by the first
 * search's reciprocal rank, then the best rank).
 */
export function compareRuns(a: EvalRun, b: EvalRun, options: { seed?: number; resamples?: number } = {}): Comparison {
  const resamples = options.resamples ?? 2000;
  const byId = new Map((b.records ?? []).map((q) => [q.id, q]));
  const pairs: Array<[QuestionScore, QuestionScore]> = [];
  for (const qa of a.records ?? []) {
    const qb = byId.get(qa.id);
    if (qb) pairs.push([qa, qb]);
  }
  const paired = a.records && b.records ? pairs.length : 0;
  const metrics: Record<string, MetricComparison> = {};
  const random = seededRandom(options.seed ?? 42);
  // One set of resampled index lists shared by all metrics (paired, like-for-like).
  const samples: number[][] = [];
  if (paired > 0) {
    for (let r = 0; r < resamples; r++) samples.push(Array.from({ length: paired }, () => Math.floor(random() * paired)));
  }
  for (const m of METRICS) {
    const va = a.records ? m.of(a.records) : summaryValue(a.summary, m.key);
    const vb = b.records ? m.of(b.records) : summaryValue(b.summary, m.key);
    const delta = va !== null && vb !== null ? vb - va : null;
    const relative = delta !== null && va ? delta / va : null;
    let ci95: [number, number] | null = null;
    let p: number | null = null;
    if (paired > 0) {
      const deltas = samples.map((idx) => m.of(idx.map((i) => pairs[i][1])) - m.of(idx.map((i) => pairs[i][0]))).sort((x, y) => x - y);
      ci95 = [deltas[Math.floor(0.025 * (deltas.length - 1))], deltas[Math.ceil(0.975 * (deltas.length - 1))]];
      if (m.binary) {
        let onlyA = 0;
        let onlyB = 0;
        for (const [qa, qb] of pairs) {
          const x = m.binary(qa);
          const y = m.binary(qb);
          if (x && !y) onlyA++;
          else if (!x && y) onlyB++;
        }
        p = mcnemarExact(onlyA, onlyB);
      }
    }
    metrics[m.key] = { a: va, b: vb, delta, relative, ci95, p };
  }
  const wins: string[] = [];
  const losses: string[] = [];
  const ties: string[] = [];
  for (const [qa, qb] of pairs) {
    const d = firstRr(qb) - firstRr(qa) || rr(qb.best_rank) - rr(qa.best_rank);
    (d > 0 ? wins : d < 0 ? losses : ties).push(qa.id);
  }
  return { runs: [a.label, b.label], metrics, questions: { wins, losses, ties }, paired };
}

const fmt = (v: number | null, digits = 3) => (v === null ? '–' : v.toFixed(digits));

/** The comparison as a Markdown table (what `drag compare --markdown` prints and the panel exports). */
export function comparisonMarkdown(c: Comparison): string {
  const lines = [
    `| metric | ${c.runs[0]} | ${c.runs[1]} | Δ | Δ% | 95% CI of Δ | p |`,
    '|---|---:|---:|---:|---:|---|---:|',
  ];
  for (const m of METRICS) {
    const v = c.metrics[m.key];
    lines.push(`| ${m.label} | ${fmt(v.a)} | ${fmt(v.b)} | ${v.delta === null ? '–' : `${v.delta >= 0 ? '+' : ''}${v.delta.toFixed(3)}`} | ${v.relative === null ? '–' : `${v.relative >= 0 ? '+' : ''}${(100 * v.relative).toFixed(1)}%`} | ${v.ci95 ? `[${v.ci95[0].toFixed(3)}, ${v.ci95[1].toFixed(3)}]` : '–'} | ${v.p === null ? '–' : v.p.toFixed(4)} |`);
  }
  lines.push('', `Per question (${c.paired} paired): ${c.questions.wins.length} wins, ${c.questions.losses.length} losses, ${c.questions.ties.length} ties for ${c.runs[1]} against ${c.runs[0]}.`);
  return `${lines.join('\n')}\n`;
}
