import { extractThinking } from '../agent/thinking';
import type { SearchResult, Trajectory } from '../schema/trajectory';
import { answerLocations, stepGroundTruthRank } from '../trajectories/groundTruth';
import { rankScore } from '../trajectories/rankScore';

/** One search of a processed record, with the fields of DRAG's processed iteration. */
export interface ProcessedSearch {
  step: number;
  query: string;
  reasoning: string | null;
  results: SearchResult[];
  gt_found: boolean;
  gt_rank: number | null;
  rank_score: number | null;
}

/** One side of a DPO pair: the search without its result list (the formats never need it). */
export type PairSide = Omit<ProcessedSearch, 'results'> & { trajectory_id: string };

export interface QueryPair {
  better: PairSide;
  worse: PairSide;
  margin: number;
}

/** DRAG's processed record (which DRAG's own formatter expected but its processor never wrote), plus our additions. */
export interface ProcessedRecord {
  id: string;
  question_id: string;
  question: string;
  ground_truth: unknown;
  searches: ProcessedSearch[];
  best_search: ProcessedSearch | null;
  best_rank_score: number;
  first_success_search: ProcessedSearch | null;
  first_success_step: number | null;
  total_searches: number;
  gt_ever_found: boolean;
  /** DRAG's effort score exactly as it computes it: searches after the first hit still count. */
  cumulative_effort_score: number;
  /** The corrected effort score: only the searches up to and including the first hit count. */
  effort_score_until_first_hit: number;
  final_answer: string[] | null;
  answer_correct: null;
  query_pairs: QueryPair[];
  model: string | null;
  sampling_config: unknown;
  run_id?: string | null;
  sample?: number | null;
}

function effort(searches: readonly ProcessedSearch[], topK: number, countAll: boolean): number {
  const first = searches.findIndex((s) => s.gt_found);
  if (first < 0 || searches.length === 0) return 0;
  const pos = topK * first + (searches[first].gt_rank ?? topK);
  const counted = countAll ? searches.length : first + 1;
  return Math.min(1, Math.max(0, 1 - (pos - 1) / (counted * topK)));
}

/** DRAG's processing of one trajectory (pairs are mined separately, across samples: {@link minePairs}). */
export function processTrajectory(t: Trajectory, topK: number): ProcessedRecord {
  const gt = answerLocations(t.ground_truth?.answer_locations);
  const searches: ProcessedSearch[] = [];
  for (const it of t.iterations) {
    if (it.action !== 'search' || !it.query) continue;
    const rank = stepGroundTruthRank(it, gt);
    searches.push({
      step: it.step,
      query: it.query,
      reasoning: it.reasoning ?? extractThinking(it.raw_response, { labels: false }),
      results: it.results ?? [],
      gt_found: rank !== null,
      gt_rank: rank,
      rank_score: rank === null ? null : typeof it.rank_score === 'number' ? it.rank_score : rankScore(rank, topK),
    });
  }
  let best: ProcessedSearch | null = null;
  for (const s of searches) {
    if (s.gt_found && s.rank_score !== null && (best === null || s.rank_score > (best.rank_score ?? -Infinity)))
      best = s;
  }
  const first = searches.find((s) => s.gt_found) ?? null;
  return {
    id: t.id,
    question_id: String(t.question_id ?? t.id),
    question: t.question,
    ground_truth: t.ground_truth ?? null,
    searches,
    best_search: best,
    best_rank_score: best?.rank_score ?? 0,
    first_success_search: first,
    first_success_step: first?.step ?? null,
    total_searches: searches.length,
    gt_ever_found: first !== null,
    cumulative_effort_score: effort(searches, topK, true),
    effort_score_until_first_hit: effort(searches, topK, false),
    final_answer: t.final_answer ?? null,
    answer_correct: null,
    query_pairs: [],
    model: t.model ?? null,
    sampling_config: t.sampling_config ?? null,
    run_id: t.run_id ?? null,
    sample: t.sample ?? null,
  };
}

/** `"key":value` as JSON.stringify writes an object member; '' where JSON.stringify leaves the member out. */
function member(key: string, value: unknown, json = JSON.stringify(value) as string | undefined): string {
  return json === undefined ? '' : `"${key}":${json}`;
}

/**
 * The start of a processed record's JSON line, everything before `query_pairs`, which are mined only
 * once every trajectory of the question has been read. Each search is serialised once, even where
 * it is also the best or first successful search. With {@link processedLineEnd}, the same bytes as
 * `JSON.stringify(record)` plus a newline (the tests compare the two), so processed.jsonl does not
 * change with the way it is written.
 */
export function processedLineStart(r: ProcessedRecord): string {
  const searches = r.searches.map((s) => JSON.stringify(s));
  const same = (s: ProcessedSearch | null) => {
    if (s === null) return 'null';
    const i = r.searches.indexOf(s);
    return i >= 0 ? searches[i] : JSON.stringify(s);
  };
  // `id` is always there (the schema requires it), so the members after it start with a comma.
  return `{${[
    member('id', r.id),
    member('question_id', r.question_id),
    member('question', r.question),
    member('ground_truth', r.ground_truth),
    member('searches', r.searches, `[${searches.join(',')}]`),
    member('best_search', r.best_search, same(r.best_search)),
    member('best_rank_score', r.best_rank_score),
    member('first_success_search', r.first_success_search, same(r.first_success_search)),
    member('first_success_step', r.first_success_step),
    member('total_searches', r.total_searches),
    member('gt_ever_found', r.gt_ever_found),
    member('cumulative_effort_score', r.cumulative_effort_score),
    member('effort_score_until_first_hit', r.effort_score_until_first_hit),
    member('final_answer', r.final_answer),
    member('answer_correct', r.answer_correct),
  ]
    .filter(Boolean)
    .join(',')}`;
}

/** The pairs of a processed record's line, after {@link processedLineStart}: mined once every sample is read. */
export function processedLinePairs(r: Pick<ProcessedRecord, 'query_pairs'>): string {
  return `,${member('query_pairs', r.query_pairs)}`;
}

/**
 * The end of a processed record's line after its pairs: the metadata and the closing brace. Known
 * when the trajectory is read, so it can be serialised then and the record dropped.
 */
export function processedLineMeta(r: Pick<ProcessedRecord, 'model' | 'sampling_config' | 'run_id' | 'sample'>): string {
  const meta = [
    member('model', r.model),
    member('sampling_config', r.sampling_config),
    member('run_id', r.run_id),
    member('sample', r.sample),
  ].filter(Boolean);
  return `${meta.map((m) => `,${m}`).join('')}}\n`;
}

/** The rest of the line that {@link processedLineStart} began: the pairs and the metadata. */
export function processedLineEnd(r: ProcessedRecord): string {
  return processedLinePairs(r) + processedLineMeta(r);
}

/**
 * A search as a side of a DPO pair: without its result list, which no format needs, and with the id
 * of its trajectory. What `drag process` keeps of each search until the pairs are mined, so that a
 * pair points at it instead of at a copy. Made as a literal, not a rest copy ({ results: _, ...s }),
 * which V8 makes in its runtime, slowly.
 */
export function pairSide(s: Omit<ProcessedSearch, 'results'>, trajectoryId: string): PairSide {
  return {
    step: s.step,
    query: s.query,
    reasoning: s.reasoning,
    gt_found: s.gt_found,
    gt_rank: s.gt_rank,
    rank_score: s.rank_score,
    trajectory_id: trajectoryId,
  };
}

/** What pair mining needs of a record: its id, its searches and where its pairs go. */
export type MinableRecord = Pick<ProcessedRecord, 'id' | 'query_pairs'> & {
  searches: ReadonlyArray<Omit<ProcessedSearch, 'results'>>;
};

/** A record whose searches are already pair sides of its own trajectory ({@link pairSide}). */
export type SideRecord = Pick<ProcessedRecord, 'id' | 'query_pairs'> & { searches: readonly PairSide[] };

// Pair mining's working arrays, reused from one question to the next (a run mines one per question,
// most with a handful of searches: new arrays each time were most of the work). Emptied after each.
const mineSearches: Array<Omit<ProcessedSearch, 'results'>> = [];
const mineOwners: MinableRecord[] = [];
const mineScores: number[] = [];
const mineQueries: string[] = [];
const mineSides: Array<PairSide | undefined> = [];

/**
 * DPO query pairs for one question, across all its trajectories (samples and runs), not only
 * within one (DRAG mines within one). A pair needs a better search with a positive score and a
 * score difference of more than 0 and at least `minMargin`; searches without a score count as -1,
 * as in DRAG. Identical query texts are never paired. Each pair is attached to the trajectory of
 * its better search, so no pair is written twice. A pair's sides are new objects, one per search
 * shared by all its pairs, or with `'own'` the records' searches themselves (already sides).
 */
export function minePairs(records: readonly SideRecord[], minMargin: number, sides: 'own'): void;
export function minePairs(records: readonly MinableRecord[], minMargin?: number): void;
export function minePairs(records: readonly MinableRecord[], minMargin = 0, sides?: 'own'): void {
  const searches = mineSearches;
  const owners = mineOwners;
  const scores = mineScores;
  const queries = mineQueries;
  const made = mineSides;
  let n = 0;
  for (const r of records)
    for (const s of r.searches) {
      searches[n] = s;
      owners[n] = r;
      scores[n] = s.rank_score ?? -1;
      queries[n] = s.query.trim();
      n++;
    }
  // One side per search, shared by all its pairs (a search is in many): made once, as a literal (a spread
  // of the search adds the id in a property store of its own: 10 MB more at 20,000 trajectories).
  const side = (i: number): PairSide => {
    if (sides === 'own') return searches[i] as PairSide;
    const s = searches[i];
    return (made[i] ??= {
      step: s.step,
      query: s.query,
      reasoning: s.reasoning,
      gt_found: s.gt_found,
      gt_rank: s.gt_rank,
      rank_score: s.rank_score,
      trajectory_id: owners[i].id,
    });
  };
  try {
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const sa = scores[i];
        const sb = scores[j];
        if (sa === sb) continue;
        const better = sa > sb ? i : j;
        const worse = sa > sb ? j : i;
        const margin = Math.abs(sa - sb);
        if ((searches[better].rank_score ?? 0) <= 0 || margin < minMargin) continue;
        if (queries[i] === queries[j]) continue;
        owners[better].query_pairs.push({ better: side(better), worse: side(worse), margin });
      }
    }
  } finally {
    searches.length = owners.length = scores.length = queries.length = made.length = 0;
  }
}

/** Python's "{:.Nf}" (half-to-even on exact binary ties), for DRAG-identical statistics keys. */
export function pyFixed(x: number, digits: number): string {
  const scaled = x * 10 ** digits;
  if (Math.abs(scaled % 1) === 0.5) {
    const floor = Math.floor(scaled);
    const even = floor % 2 === 0 ? floor : floor + 1;
    return (even / 10 ** digits).toFixed(digits);
  }
  return x.toFixed(digits);
}

export interface ProcessStats {
  [key: string]: unknown;
}

/** One more of `key` in a distribution. */
function count(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

/**
 * DRAG's statistics keys, gathered one record at a time as the trajectories are read, so that
 * nothing is kept for them: over every trajectory, failed or not. The pairs are counted once mined.
 */
export class ProcessStatsBuilder {
  private total = 0;
  private valid = 0;
  private searches = 0;
  private searchesAll = 0;
  private successful = 0;
  private readonly rankScores: Record<string, number> = {};
  private readonly firstSuccess: Record<string, number> = {};
  private readonly bestRanks: Record<string, number> = {};
  private readonly efforts: Record<string, number> = {};
  /** The keys already made of each score: the scores repeat (a rank score is one of top_k values). */
  private readonly keys = [new Map<number, string>(), new Map<number, string>()];

  add(r: ProcessedRecord): void {
    this.total++;
    this.searchesAll += r.total_searches;
    if (r.gt_ever_found) {
      this.valid++;
      this.searches += r.total_searches;
      for (const s of r.searches) if (s.gt_found) this.successful++;
    }
    if (r.best_rank_score > 0) count(this.rankScores, this.key(r.best_rank_score, 2));
    if (r.first_success_step !== null) count(this.firstSuccess, String(r.first_success_step));
    if (r.best_search?.gt_rank != null) count(this.bestRanks, String(r.best_search.gt_rank));
    count(this.efforts, r.gt_ever_found ? this.key(r.cumulative_effort_score, 1) : '0.0');
  }

  /** {@link pyFixed} of a score with 1 or 2 digits, made once per distinct score (a few thousand at most kept). */
  private key(x: number, digits: 1 | 2): string {
    const made = this.keys[digits - 1];
    let key = made.get(x);
    if (key === undefined) {
      key = pyFixed(x, digits);
      if (made.size < 4096) made.set(x, key);
    }
    return key;
  }

  /** The statistics: `outputExamples` records written, with `queryPairs` pairs among them. */
  stats(includeFailed: boolean, outputExamples: number, queryPairs: number): ProcessStats {
    return {
      output_format: 'processed',
      include_failed: includeFailed,
      total_trajectories: this.total,
      valid_trajectories: this.valid,
      failed_trajectories: this.total - this.valid,
      output_examples: outputExamples,
      total_searches: this.searches,
      total_searches_all: this.searchesAll,
      successful_searches: this.successful,
      total_query_pairs: queryPairs,
      rank_score_distribution: this.rankScores,
      iterations_to_first_success: this.firstSuccess,
      best_rank_distribution: this.bestRanks,
      effort_score_distribution: this.efforts,
    };
  }
}
