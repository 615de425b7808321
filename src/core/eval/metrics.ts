import { answerLocations, isGroundTruthPage, type Location } from '../trajectories/groundTruth';
import { AnlsAlternatives, anlsStar, type AnlsValue } from './anls';

/** One search as the metrics see it. */
export interface ScoredSearch {
  iteration: number;
  query: string | null;
  results: Array<{ file: string; page_number: number }>;
}

export interface PrecisionRecall {
  precision: number;
  recall: number;
  f1: number;
}

const ZERO: PrecisionRecall = { precision: 0, recall: 0, f1: 0 };

function prf(truth: Set<string>, predicted: Set<string>): PrecisionRecall {
  if (truth.size === 0 || predicted.size === 0) return ZERO;
  let tp = 0;
  for (const p of predicted) if (truth.has(p)) tp++;
  const precision = tp / predicted.size;
  const recall = tp / truth.size;
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { precision, recall, f1 };
}

/**
 * Citation precision/recall/F1 at page level ((file, page) pairs) and document level (files),
 * as DRAG computes them, over every ground-truth location in any shape DRAG accepts (string locations
 * no longer crash, "12" equals 12; docs/drag-compatibility.md#input-data). A citation names its file in
 * `file` or `document`.
 */
export function citationScores(
  answerLocationsValue: unknown,
  citations: unknown,
): { page: PrecisionRecall; doc: PrecisionRecall } {
  const truth = answerLocations(answerLocationsValue);
  const cited: Location[] = Array.isArray(citations)
    ? answerLocations(
        citations.map((c) => {
          if (c && typeof c === 'object') {
            const o = c as Record<string, unknown>;
            return { document: (o.file ?? o.document) as unknown, page: o.page };
          }
          return c;
        }),
      )
    : [];
  const pages = (list: Location[]) =>
    new Set(list.filter((l) => l.page !== null).map((l) => `${l.file}\u0000${l.page}`));
  const docs = (list: Location[]) => new Set(list.map((l) => l.file));
  return { page: prf(pages(truth), pages(cited)), doc: prf(docs(truth), docs(cited)) };
}

/** Gold answers in DRAG's shape (list of variants, each a list of strings, or bare strings). */
export function goldVariants(answers: unknown): string[][] {
  if (answers === null || answers === undefined) return [];
  if (typeof answers === 'string') return [[answers]];
  if (!Array.isArray(answers)) return [];
  return answers.map((v) => (Array.isArray(v) ? v.map(String) : [String(v)])).filter((v) => v.length > 0);
}

/**
 * DRAG's answer score: ANLS* of the predicted answer list against each gold variant (each a list
 * of items), the best variant counting; 0 when either side is empty, as in DRAG. Ground truth
 * and prediction are passed in the right order (DRAG swapped them; docs/drag-compatibility.md#evaluation-and-metrics).
 */
export function answerAnls(answers: unknown, predicted: unknown): number {
  const variants = goldVariants(answers);
  const pred = Array.isArray(predicted)
    ? predicted.map(String)
    : typeof predicted === 'string' && predicted
      ? [predicted]
      : [];
  if (variants.length === 0 || pred.length === 0) return 0;
  return anlsStar(new AnlsAlternatives(variants as AnlsValue[]), pred);
}

/** Per-question retrieval metrics over a search history (as DRAG defines them; every GT location counts). */
export interface RetrievalMetrics {
  success: boolean;
  iterations_to_success: number | null;
  first_hit_rank: number | null;
  first_search_rr: number;
  best_rank: number | null;
  best_rr: number;
  /** Ground-truth rank of every search, in order (null when missed). */
  ranks: Array<number | null>;
}

export function retrievalMetrics(
  searches: readonly ScoredSearch[],
  groundTruth: readonly Location[],
): RetrievalMetrics {
  const ranks = searches.map((s) => {
    const i = s.results.findIndex((r) => isGroundTruthPage(r, groundTruth));
    return i < 0 ? null : i + 1;
  });
  const firstHit = ranks.findIndex((r) => r !== null);
  let best: number | null = null;
  for (const r of ranks) if (r !== null && (best === null || r < best)) best = r;
  const first = ranks.length ? ranks[0] : null;
  return {
    success: firstHit >= 0,
    iterations_to_success: firstHit >= 0 ? searches[firstHit].iteration : null,
    first_hit_rank: first,
    first_search_rr: first ? 1 / first : 0,
    best_rank: best,
    best_rr: best ? 1 / best : 0,
    ranks,
  };
}

/**
 * One line of our per_question.jsonl: DRAG's keys plus the searches
 * (docs/drag-compatibility.md#evaluation-and-metrics).
 */
export interface PerQuestion {
  id: string;
  question: string;
  answer: string[];
  citations: unknown[];
  iterations: number;
  ground_truth_answers: unknown;
  ground_truth_locations: unknown;
  category: string | null;
  success: boolean;
  iterations_to_success: number | null;
  first_hit_rank: number | null;
  best_rank: number | null;
  anls_score: number;
  page_f1: number;
  page_precision: number;
  page_recall: number;
  doc_f1: number;
  doc_precision: number;
  doc_recall: number;
  /** Reciprocal rank of the first search (0 when it missed or there was none). */
  first_search_rr: number;
  searches: Array<{ iteration: number; query: string | null; gt_rank: number | null; num_results: number }>;
  model?: string | null;
  error?: string | null;
}

function meanOf(values: number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0;
}

/**
 * DRAG's summary keys plus `mrr`: the standard mean reciprocal rank of the first search over
 * all questions (0 when missed), next to DRAG's hits-only `first_search_mrr`/`best_search_mrr`
 * (docs/drag-compatibility.md#evaluation-and-metrics). Hit@K only for K <= top_k.
 */
export function summarize(
  records: readonly PerQuestion[],
  topK: number,
  model: string | null,
): Record<string, number | string | null> {
  const n = records.length;
  const successes = records.filter((r) => r.success);
  const firstHits = records.filter((r) => r.first_hit_rank !== null);
  const summary: Record<string, number | string | null> = {
    model,
    total_questions: n,
    success_count: successes.length,
    success_rate: n ? successes.length / n : 0,
    avg_iterations: meanOf(records.map((r) => r.iterations)),
    avg_iterations_to_success: meanOf(successes.map((r) => r.iterations_to_success ?? 0)),
    first_hit_rate: n ? firstHits.length / n : 0,
    avg_first_hit_rank: meanOf(firstHits.map((r) => r.first_hit_rank!)),
    first_search_mrr: meanOf(firstHits.map((r) => 1 / r.first_hit_rank!)),
    avg_best_rank: meanOf(successes.map((r) => r.best_rank!)),
    best_search_mrr: meanOf(successes.map((r) => 1 / r.best_rank!)),
  };
  for (const k of [1, 3, 5])
    if (k <= topK)
      summary[`hit_at_${k}`] = n
        ? records.filter((r) => r.first_hit_rank !== null && r.first_hit_rank <= k).length / n
        : 0;
  Object.assign(summary, {
    avg_anls: meanOf(records.map((r) => r.anls_score)),
    anls_accuracy: n ? records.filter((r) => r.anls_score >= 0.5).length / n : 0,
    avg_page_f1: meanOf(records.map((r) => r.page_f1)),
    avg_page_precision: meanOf(records.map((r) => r.page_precision)),
    avg_page_recall: meanOf(records.map((r) => r.page_recall)),
    avg_doc_f1: meanOf(records.map((r) => r.doc_f1)),
    avg_doc_precision: meanOf(records.map((r) => r.doc_precision)),
    avg_doc_recall: meanOf(records.map((r) => r.doc_recall)),
    mrr: meanOf(records.map((r) => r.first_search_rr)),
    top_k: topK,
  });
  return summary;
}
