import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { indexJsonl, readLine } from '../io/jsonl';
import { mulberry32 } from '../util/random';
import type { PerQuestion } from './metrics';

/** A per-question record as far as comparison needs it (ours, or a line of DRAG's evaluation JSONL). */
export type QuestionScore = Pick<
  PerQuestion,
  'id' | 'success' | 'first_hit_rank' | 'best_rank' | 'anls_score' | 'page_f1' | 'doc_f1'
> &
  Partial<Pick<PerQuestion, 'iterations_to_success' | 'first_search_rr' | 'question'>>;

export interface EvalRun {
  label: string;
  source: string;
  summary: Record<string, unknown>;
  /** Null when only a summary exists (a DRAG `_summary.json` without its JSONL). */
  records: QuestionScore[] | null;
}

async function readRecords(file: string): Promise<QuestionScore[]> {
  const index = await indexJsonl<null>(file, (v) =>
    typeof v.id === 'string' || typeof v.id === 'number'
      ? { ok: true, summary: null }
      : { ok: false, problems: [{ fieldPath: 'id', message: 'missing id' }] },
  );
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
    const summary = JSON.parse(await fsp.readFile(path.join(target, 'summary.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const pq = path.join(target, 'per_question.jsonl');
    return {
      label: label ?? path.basename(path.resolve(target)),
      source: target,
      summary,
      records: existsSync(pq) ? await readRecords(pq) : null,
    };
  }
  const summary = JSON.parse(await fsp.readFile(target, 'utf8')) as Record<string, unknown>;
  const base = target.endsWith('_summary.json')
    ? target.slice(0, -'_summary.json'.length)
    : target.replace(/\.json$/, '');
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
/** For lower-is-better means over hits only: no hits is "none", not 0 (0 would read as the best rank). */
const meanOrNull = (xs: number[]) => (xs.length ? meanOf(xs) : null);

interface MetricDef {
  key: string;
  label: string;
  /** Higher is better (false for ranks and iterations). */
  higherIsBetter: boolean;
  of: (qs: QuestionScore[]) => number | null;
  /** Binary per-question outcome, for the exact McNemar test. */
  binary?: (q: QuestionScore) => boolean;
}

export const METRICS: MetricDef[] = [
  {
    key: 'success_rate',
    label: 'Success (GT retrieved)',
    higherIsBetter: true,
    of: (qs) => meanOf(qs.map((q) => (q.success ? 1 : 0))),
    binary: (q) => q.success,
  },
  {
    key: 'avg_iterations_to_success',
    label: 'Iterations to success',
    higherIsBetter: false,
    of: (qs) => meanOrNull(qs.filter((q) => q.success).map((q) => q.iterations_to_success ?? 0)),
  },
  {
    key: 'avg_first_hit_rank',
    label: 'First-hit rank',
    higherIsBetter: false,
    of: (qs) => meanOrNull(qs.filter((q) => q.first_hit_rank !== null).map((q) => q.first_hit_rank!)),
  },
  { key: 'mrr', label: 'MRR (first search, all questions)', higherIsBetter: true, of: (qs) => meanOf(qs.map(firstRr)) },
  {
    key: 'first_search_mrr',
    label: 'First-search MRR (hits only, DRAG)',
    higherIsBetter: true,
    of: (qs) => meanOf(qs.filter((q) => q.first_hit_rank !== null).map((q) => rr(q.first_hit_rank))),
  },
  {
    key: 'best_search_mrr',
    label: 'Best-search MRR (hits only, DRAG)',
    higherIsBetter: true,
    of: (qs) => meanOf(qs.filter((q) => q.success).map((q) => rr(q.best_rank))),
  },
  {
    key: 'hit_at_1',
    label: 'Hit@1',
    higherIsBetter: true,
    of: (qs) => meanOf(qs.map((q) => (q.first_hit_rank === 1 ? 1 : 0))),
    binary: (q) => q.first_hit_rank === 1,
  },
  {
    key: 'hit_at_3',
    label: 'Hit@3',
    higherIsBetter: true,
    of: (qs) => meanOf(qs.map((q) => (q.first_hit_rank !== null && q.first_hit_rank <= 3 ? 1 : 0))),
  },
  { key: 'avg_anls', label: 'ANLS*', higherIsBetter: true, of: (qs) => meanOf(qs.map((q) => q.anls_score ?? 0)) },
  {
    key: 'avg_page_f1',
    label: 'Citation F1 (page)',
    higherIsBetter: true,
    of: (qs) => meanOf(qs.map((q) => q.page_f1 ?? 0)),
  },
  {
    key: 'avg_doc_f1',
    label: 'Citation F1 (document)',
    higherIsBetter: true,
    of: (qs) => meanOf(qs.map((q) => q.doc_f1 ?? 0)),
  },
];

/** Seeded randomness for the bootstrap: the same seed gives the same intervals everywhere. */
export const seededRandom = mulberry32;

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

export interface MetricComparison {
  a: number | null;
  b: number | null;
  delta: number | null;
  relative: number | null;
  ci95: [number, number] | null;
  p: number | null;
}

export interface Comparison {
  runs: [string, string];
  metrics: Record<string, MetricComparison>;
  questions: { wins: string[]; losses: string[]; ties: string[] };
  /** Questions present in both runs (the paired statistics use only these). */
  paired: number;
}

/** The comparison's documented JSON shape (`drag compare --json`, comparison.json files). */
export function comparisonJson(c: Comparison): Comparison {
  return { runs: c.runs, metrics: c.metrics, questions: c.questions, paired: c.paired };
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
  // Question order, not the order evaluations finished in (per_question.jsonl follows completion),
  // decides which questions each seeded resample draws: the same runs give the same intervals.
  pairs.sort(([x], [y]) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  const paired = a.records && b.records ? pairs.length : 0;
  const metrics: Record<string, MetricComparison> = {};
  const random = seededRandom(options.seed ?? 42);
  // One set of resampled index lists shared by all metrics (paired, like-for-like).
  const samples: number[][] = [];
  if (paired > 0) {
    for (let r = 0; r < resamples; r++)
      samples.push(Array.from({ length: paired }, () => Math.floor(random() * paired)));
  }
  for (const m of METRICS) {
    const va = a.records ? m.of(a.records) : summaryValue(a.summary, m.key);
    const vb = b.records ? m.of(b.records) : summaryValue(b.summary, m.key);
    const delta = va !== null && vb !== null ? vb - va : null;
    const relative = delta !== null && va ? delta / va : null;
    let ci95: [number, number] | null = null;
    let p: number | null = null;
    if (paired > 0) {
      const deltas: number[] = [];
      for (const idx of samples) {
        const x = m.of(idx.map((i) => pairs[i][0]));
        const y = m.of(idx.map((i) => pairs[i][1]));
        if (x !== null && y !== null) deltas.push(y - x);
      }
      deltas.sort((x, y) => x - y);
      // A resample where one run has no hits at all has no delta; the interval uses the others.
      if (va !== null && vb !== null && deltas.length > 0)
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

/** A metric's Δ, Δ%, 95% CI of Δ and p as the Markdown and HTML tables show them ('–' when unknown). */
function deltaCells(v: MetricComparison): { delta: string; relative: string; ci: string; p: string } {
  return {
    delta: v.delta === null ? '–' : `${v.delta >= 0 ? '+' : ''}${v.delta.toFixed(3)}`,
    relative: v.relative === null ? '–' : `${v.relative >= 0 ? '+' : ''}${(100 * v.relative).toFixed(1)}%`,
    ci: v.ci95 ? `[${v.ci95[0].toFixed(3)}, ${v.ci95[1].toFixed(3)}]` : '–',
    p: v.p === null ? '–' : v.p.toFixed(4),
  };
}

/** The comparison as a Markdown table (what `drag compare --markdown` prints and the panel exports). */
export function comparisonMarkdown(c: Comparison): string {
  const lines = [
    `| metric | ${c.runs[0]} | ${c.runs[1]} | Δ | Δ% | 95% CI of Δ | p |`,
    '|---|---:|---:|---:|---:|---|---:|',
  ];
  for (const m of METRICS) {
    const v = c.metrics[m.key];
    const d = deltaCells(v);
    lines.push(`| ${m.label} | ${fmt(v.a)} | ${fmt(v.b)} | ${d.delta} | ${d.relative} | ${d.ci} | ${d.p} |`);
  }
  lines.push(
    '',
    `Per question (${c.paired} paired): ${c.questions.wins.length} wins, ${c.questions.losses.length} losses, ` +
      `${c.questions.ties.length} ties for ${c.runs[1]} against ${c.runs[0]}.`,
  );
  return `${lines.join('\n')}\n`;
}

export interface ComparisonCharts {
  hitAtK: Array<{ k: number; a: number; b: number }>;
  /** First-search ground-truth rank: counts for rank 1..topK and "missed". */
  rankDistribution: { labels: string[]; a: number[]; b: number[] };
  /** Iterations to success: counts per step, and "never". */
  iterations: { labels: string[]; a: number[]; b: number[] };
  /** Per question: best rank in A and in B (null = never found). */
  scatter: Array<{ id: string; a: number | null; b: number | null }>;
}

/** The data behind the comparison panel's charts, from the paired per-question records. */
export function comparisonCharts(a: EvalRun, b: EvalRun, topK = 3): ComparisonCharts | null {
  if (!a.records || !b.records) return null;
  const byId = new Map(b.records.map((q) => [q.id, q]));
  const pairs = a.records.filter((q) => byId.has(q.id)).map((q) => [q, byId.get(q.id)!] as const);
  const share = (xs: QuestionScore[], pred: (q: QuestionScore) => boolean) =>
    xs.length ? xs.filter(pred).length / xs.length : 0;
  const as = pairs.map((p) => p[0]);
  const bs = pairs.map((p) => p[1]);
  const ks = [1, 2, 3, 5, 10].filter((k) => k <= topK);
  const rankLabels = [...Array.from({ length: topK }, (_, i) => String(i + 1)), 'missed'];
  const rankCounts = (xs: QuestionScore[]) =>
    rankLabels.map(
      (l) => xs.filter((q) => (l === 'missed' ? q.first_hit_rank === null : q.first_hit_rank === Number(l))).length,
    );
  const maxIt = Math.max(1, ...[...as, ...bs].map((q) => q.iterations_to_success ?? 0));
  const itLabels = [...Array.from({ length: maxIt }, (_, i) => String(i + 1)), 'never'];
  const itCounts = (xs: QuestionScore[]) =>
    itLabels.map(
      (l) => xs.filter((q) => (l === 'never' ? !q.success : q.success && q.iterations_to_success === Number(l))).length,
    );
  return {
    hitAtK: ks.map((k) => ({
      k,
      a: share(as, (q) => q.first_hit_rank !== null && q.first_hit_rank <= k),
      b: share(bs, (q) => q.first_hit_rank !== null && q.first_hit_rank <= k),
    })),
    rankDistribution: { labels: rankLabels, a: rankCounts(as), b: rankCounts(bs) },
    iterations: { labels: itLabels, a: itCounts(as), b: itCounts(bs) },
    scatter: pairs.map(([x, y]) => ({ id: x.id, a: x.best_rank ?? null, b: y.best_rank ?? null })),
  };
}

const HTML_CSP = `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`;
const HTML_STYLE =
  'body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse}' +
  'td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}' +
  'td:first-child,th:first-child{text-align:left}' +
  '.up{color:#1a7f37}.down{color:#cf222e}';

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A standalone HTML report (no scripts; every label escaped): the table, Hit@K bars and the per-question lists. */
export function comparisonHtml(c: Comparison, charts: ComparisonCharts | null): string {
  const rows = METRICS.map((m) => {
    const v = c.metrics[m.key];
    const f = (x: number | null) => (x === null ? '–' : x.toFixed(3));
    const good = v.delta !== null && v.delta !== 0 && v.delta > 0 === m.higherIsBetter;
    const cls = v.delta === null || v.delta === 0 ? '' : good ? 'up' : 'down';
    const d = deltaCells(v);
    return (
      `<tr><td>${esc(m.label)}</td><td>${f(v.a)}</td><td>${f(v.b)}</td><td class="${cls}">${d.delta}</td>` +
      `<td>${d.relative}</td><td>${d.ci}</td><td>${d.p}</td></tr>`
    );
  }).join('\n');
  const bars = charts
    ? charts.hitAtK
        .map((h, i) => {
          const x = 40 + i * 120;
          return (
            `<g><rect x="${x}" y="${160 - 150 * h.a}" width="40" height="${150 * h.a}" fill="#888"/>` +
            `<rect x="${x + 44}" y="${160 - 150 * h.b}" width="40" height="${150 * h.b}" fill="#3c8dde"/>` +
            `<text x="${x + 42}" y="178" text-anchor="middle">Hit@${h.k}</text>` +
            `<text x="${x + 20}" y="${155 - 150 * h.a}" text-anchor="middle" font-size="11">` +
            `${(100 * h.a).toFixed(0)}%</text>` +
            `<text x="${x + 64}" y="${155 - 150 * h.b}" text-anchor="middle" font-size="11">` +
            `${(100 * h.b).toFixed(0)}%</text></g>`
          );
        })
        .join('')
    : '';
  const list = (ids: string[]) =>
    ids.length ? `<ul>${ids.map((i) => `<li>${esc(i)}</li>`).join('')}</ul>` : '<p>none</p>';
  const a = esc(c.runs[0]);
  const b = esc(c.runs[1]);
  const chart = charts
    ? `<h2>Hit@K</h2><svg width="${60 + charts.hitAtK.length * 120}" height="190" role="img" ` +
      `aria-label="Hit at K, grey ${a}, blue ${b}">` +
      `<line x1="34" y1="160.5" x2="${54 + charts.hitAtK.length * 120}" y2="160.5" stroke="#888"/>${bars}</svg>`
    : '';
  return [
    '<!DOCTYPE html>',
    `<html lang="en"><head><meta charset="utf-8">${HTML_CSP}<title>${b} vs ${a}</title>`,
    `<style>${HTML_STYLE}</style></head>`,
    `<body><h1>${b} vs ${a}</h1>`,
    `<p>${c.paired} questions in both runs. Δ = ${b} − ${a}; ` +
      '95% CI from a paired bootstrap over questions; p from an exact McNemar test.</p>',
    `<table><thead><tr><th>metric</th><th>${a}</th><th>${b}</th>` +
      '<th>Δ</th><th>Δ%</th><th>95% CI of Δ</th><th>p</th></tr></thead><tbody>',
    rows,
    '</tbody></table>',
    chart,
    `<h2>Wins (${c.questions.wins.length})</h2>${list(c.questions.wins)}`,
    `<h2>Losses (${c.questions.losses.length})</h2>${list(c.questions.losses)}`,
    `<h2>Ties (${c.questions.ties.length})</h2>${list(c.questions.ties)}`,
    '</body></html>',
    '',
  ].join('\n');
}
