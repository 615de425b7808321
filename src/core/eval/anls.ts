/**
 * ANLS* (Peer et al. 2024, "ANLS* – A Universal Document Processing Metric for Generative Large
 * Language Models", arXiv:2402.03848), written from the paper's definition:
 * - strings (and numbers, booleans): normalised Levenshtein similarity of the trimmed,
 *   lower-cased, whitespace-collapsed strings, zeroed below 0.5;
 * - None: 1 when the prediction is empty (None, "", [], {}), else 0;
 * - lists: Hungarian matching of ground-truth to predicted items; unmatched items on either side
 *   count in the denominator;
 * - dicts: over the union of keys (a missing value is None);
 * - tuples (ground truth only): alternatives, the best one counts.
 * The score is Σ leaf similarities / Σ pairwise lengths (1 when both are empty).
 */
export type AnlsValue =
  string | number | boolean | null | undefined | AnlsValue[] | AnlsAlternatives | { [key: string]: AnlsValue };

/** Ground-truth alternatives: any one of them is a correct answer (Python's tuple in the paper). */
export class AnlsAlternatives {
  constructor(readonly options: readonly AnlsValue[]) {
    if (options.length === 0) throw new Error('ANLS*: alternatives need at least one option');
  }
}

export const ANLS_THRESHOLD = 0.5;

type Kind = 'alt' | 'list' | 'dict' | 'none' | 'leaf';

function kind(v: AnlsValue): Kind {
  if (v instanceof AnlsAlternatives) return 'alt';
  if (Array.isArray(v)) return 'list';
  if (v === null || v === undefined) return 'none';
  if (typeof v === 'object') return 'dict';
  return 'leaf';
}

function isEmpty(v: AnlsValue): boolean {
  if (v === null || v === undefined || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object' && !(v instanceof AnlsAlternatives)) return Object.keys(v).length === 0;
  return false;
}

/** Leaves a value stands for (its "length" in the paper). */
function size(v: AnlsValue): number {
  switch (kind(v)) {
    case 'alt':
      return Math.max(...(v as AnlsAlternatives).options.map(size));
    case 'list':
      return (v as AnlsValue[]).reduce((n: number, x) => n + size(x), 0);
    case 'dict':
      return Object.values(v as Record<string, AnlsValue>).reduce((n: number, x) => n + size(x), 0);
    default:
      return 1;
  }
}

function normalise(v: string | number | boolean): string {
  const s = typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v);
  return s.trim().toLowerCase().split(/\s+/).filter(Boolean).join(' ');
}

/** Levenshtein distance over code points. */
export function levenshtein(a: string, b: string): number {
  const s = [...a];
  const t = [...b];
  if (s.length > t.length) return levenshtein(b, a);
  let prev = Array.from({ length: s.length + 1 }, (_, i) => i);
  for (let j = 0; j < t.length; j++) {
    const cur = [j + 1];
    for (let i = 0; i < s.length; i++) {
      cur.push(s[i] === t[j] ? prev[i] : 1 + Math.min(prev[i], prev[i + 1], cur[i]));
    }
    prev = cur;
  }
  return prev[s.length];
}

/** Normalised Levenshtein similarity with the 0.5 threshold. */
export function nls(gt: string | number | boolean, pred: string | number | boolean): number {
  const a = normalise(gt);
  const b = normalise(pred);
  const longest = Math.max([...a].length, [...b].length);
  const similarity = longest === 0 ? 1 : 1 - levenshtein(a, b) / longest;
  return similarity < ANLS_THRESHOLD ? 0 : similarity;
}

interface Scored {
  sims: number[];
  length: number;
}

const mean = (s: Scored) => (s.length > 0 ? s.sims.reduce((x, y) => x + y, 0) / s.length : 1);

/**
 * Maximum-weight assignment (Hungarian / Kuhn-Munkres on a padded square cost matrix).
 * Returns the matched (row, column) pairs inside the original rectangle.
 */
export function hungarianMax(weights: number[][]): Array<[number, number]> {
  const rows = weights.length;
  const cols = rows ? weights[0].length : 0;
  if (!rows || !cols) return [];
  const n = Math.max(rows, cols);
  let max = 0;
  for (const r of weights) for (const w of r) max = Math.max(max, w);
  // cost[i][j] (1-based), padding costs max (weight 0).
  const cost = (i: number, j: number) => (i <= rows && j <= cols ? max - weights[i - 1][j - 1] : max);
  const u = new Array<number>(n + 1).fill(0);
  const v = new Array<number>(n + 1).fill(0);
  const p = new Array<number>(n + 1).fill(0);
  const way = new Array<number>(n + 1).fill(0);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    const minv = new Array<number>(n + 1).fill(Infinity);
    const used = new Array<boolean>(n + 1).fill(false);
    do {
      used[j0] = true;
      const i0 = p[j0];
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= n; j++) {
        if (used[j]) continue;
        const cur = cost(i0, j) - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (let j = 0; j <= n; j++) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else minv[j] -= delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
  const pairs: Array<[number, number]> = [];
  for (let j = 1; j <= n; j++) if (p[j] <= rows && j <= cols && p[j] >= 1) pairs.push([p[j] - 1, j - 1]);
  return pairs.sort((a, b) => a[0] - b[0]);
}

function compare(gt: AnlsValue, pred: AnlsValue): Scored {
  const gk = kind(gt);
  const pk = kind(pred);
  if (pk === 'alt')
    throw new Error('ANLS*: alternatives (tuples) are for ground truths only; use a list in predictions');
  switch (gk) {
    case 'alt': {
      let best: Scored | null = null;
      for (const option of (gt as AnlsAlternatives).options) {
        const s = compare(option, pred);
        if (!best || mean(s) > mean(best)) best = s;
      }
      return best!;
    }
    case 'none':
      return { sims: [isEmpty(pred) ? 1 : 0], length: Math.max(1, size(pred)) };
    case 'leaf':
      if (pk !== 'leaf') return { sims: [0], length: Math.max(1, size(pred)) };
      return { sims: [nls(gt as string, pred as string)], length: 1 };
    case 'list': {
      const g = gt as AnlsValue[];
      if (pk !== 'list') return { sims: [0], length: Math.max(size(gt), size(pred)) };
      const p = pred as AnlsValue[];
      const cells = g.map((x) => p.map((y) => compare(x, y)));
      const pairs = hungarianMax(cells.map((row) => row.map(mean)));
      const sims: number[] = [];
      let length = 0;
      const usedRows = new Set<number>();
      const usedCols = new Set<number>();
      for (const [r, c] of pairs) {
        sims.push(...cells[r][c].sims);
        length += cells[r][c].length;
        usedRows.add(r);
        usedCols.add(c);
      }
      g.forEach((x, i) => {
        if (!usedRows.has(i)) length += size(x);
      });
      p.forEach((y, j) => {
        if (!usedCols.has(j)) length += size(y);
      });
      return { sims, length };
    }
    case 'dict': {
      const g = gt as Record<string, AnlsValue>;
      if (pk !== 'dict') return { sims: [0], length: Math.max(size(gt), size(pred)) };
      const p = pred as Record<string, AnlsValue>;
      const sims: number[] = [];
      let length = 0;
      for (const key of new Set([...Object.keys(g), ...Object.keys(p)])) {
        const gv = key in g ? g[key] : null;
        const pv = key in p ? p[key] : null;
        const s = compare(gv, pv);
        length += s.length;
        // A key the model added with an empty value is not held against it.
        if (!(key in g) && isEmpty(pv)) continue;
        sims.push(...s.sims);
      }
      return { sims, length };
    }
  }
}

/** ANLS* of a prediction against a ground truth, in [0, 1]. */
export function anlsStar(gt: AnlsValue, pred: AnlsValue): number {
  // Compatibility with classical VQA data: a list of strings against a string is a set of alternatives.
  if (Array.isArray(gt) && gt.every((x) => typeof x === 'string') && typeof pred === 'string')
    gt = new AnlsAlternatives(gt);
  return mean(compare(gt, pred));
}
