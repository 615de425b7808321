import { analyze } from '../search/analyzer';
import { rankScore } from '../trajectories/rankScore';

/** A query as the pair editor sees it. */
export interface CandidateQuery {
  query: string;
  /** Ground-truth rank at top_k (null = missed). */
  rank: number | null;
  trajectory_id?: string | null;
  step?: number | null;
}

export interface PairWarning {
  code: 'small-margin' | 'both-fail' | 'near-duplicate' | 'leaks-answer' | 'leaks-file';
  message: string;
}

const score = (rank: number | null, topK: number) => (rank === null ? 0 : rankScore(rank, topK));

function jaccard(a: string, b: string): number {
  const x = new Set(analyze(a));
  const y = new Set(analyze(b));
  if (x.size === 0 && y.size === 0) return 1;
  let inter = 0;
  for (const t of x) if (y.has(t)) inter++;
  return inter / (x.size + y.size - inter);
}

/**
 * What a person should confirm before saving a DPO pair: a margin under the threshold, both
 * queries failing, near-duplicates (the model learns nothing), or a chosen query that contains the
 * answer or the ground-truth file name (it could not have been written without seeing them).
 */
export function pairWarnings(
  chosen: CandidateQuery,
  rejected: CandidateQuery,
  context: { topK: number; minMargin: number; answers: string[]; gtFiles: string[] },
): PairWarning[] {
  const out: PairWarning[] = [];
  const margin = score(chosen.rank, context.topK) - score(rejected.rank, context.topK);
  if (chosen.rank === null && rejected.rank === null)
    out.push({ code: 'both-fail', message: 'neither query finds the ground-truth page' });
  else if (margin < context.minMargin)
    out.push({
      code: 'small-margin',
      message: `the chosen query is only ${margin.toFixed(2)} better (threshold ${context.minMargin})`,
    });
  if (jaccard(chosen.query, rejected.query) >= 0.8)
    out.push({ code: 'near-duplicate', message: 'the two queries are nearly the same words' });
  const q = chosen.query.toLowerCase();
  for (const a of context.answers) {
    const norm = a.toLowerCase().trim();
    if (norm.length >= 3 && q.includes(norm)) {
      out.push({ code: 'leaks-answer', message: `the chosen query contains the answer "${a}"` });
      break;
    }
  }
  for (const f of context.gtFiles) {
    const stem = f.replace(/\.pdf$/i, '').toLowerCase();
    if (stem && (q.includes(f.toLowerCase()) || q.includes(stem))) {
      out.push({ code: 'leaks-file', message: `the chosen query names the ground-truth file ${f}` });
      break;
    }
  }
  return out;
}

/** Pairs worth proposing: the largest margins among a question's queries, best first. */
export function proposePairs<C extends CandidateQuery>(
  candidates: readonly C[],
  topK: number,
  limit = 3,
): Array<{ chosen: C; rejected: C; margin: number }> {
  const uniq = new Map<string, C>();
  for (const c of candidates) {
    const key = analyze(c.query).join(' ');
    const prev = uniq.get(key);
    if (!prev || score(c.rank, topK) > score(prev.rank, topK)) uniq.set(key, c);
  }
  const list = [...uniq.values()];
  const pairs: Array<{ chosen: C; rejected: C; margin: number }> = [];
  for (const a of list)
    for (const b of list) {
      const margin = score(a.rank, topK) - score(b.rank, topK);
      if (margin > 0 && a.rank !== null) pairs.push({ chosen: a, rejected: b, margin });
    }
  return pairs.sort((x, y) => y.margin - x.margin || x.chosen.query.localeCompare(y.chosen.query)).slice(0, limit);
}
