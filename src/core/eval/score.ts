import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { isFinal } from '../trajectories/summary';
import { formatFieldPath, type LineError } from '../io/errors';
import { indexJsonl, indexProblems } from '../io/jsonl';
import { toJsonLine, writeFileAtomic, writeJsonAtomic } from '../io/write';
import { QuestionRecord } from '../schema/question';
import { answerLocations } from '../trajectories/groundTruth';
import type { Trajectory } from '../schema/trajectory';
import { isTrajectory } from '../schema/trajectoryCheck.generated';
import { explainTrajectory } from '../schema/trajectoryProblems';
import { answerAnls, citationScores, type PerQuestion, retrievalMetrics, summarize } from './metrics';

type GroundTruthLike = { answers?: unknown; answer_locations?: unknown; category?: string | null } | null | undefined;

/** Metrics of one collected trajectory (its own ground truth, or one given from a questions file). */
export function scoreTrajectory(t: Trajectory, groundTruth?: GroundTruthLike): PerQuestion {
  const gt = groundTruth ?? t.ground_truth ?? {};
  const locations = answerLocations(gt.answer_locations);
  const searches = t.iterations
    .filter((it) => it.action === 'search' && Array.isArray(it.results))
    .map((it) => ({ iteration: it.step, query: it.query ?? null, results: it.results ?? [] }));
  const r = retrievalMetrics(searches, locations);
  const answer = t.final_answer ?? [];
  const citations = t.final_citations ?? [];
  const c = citationScores(gt.answer_locations, citations);
  return {
    id: t.question_id !== null && t.question_id !== undefined ? String(t.question_id) : t.id,
    question: t.question,
    answer,
    citations,
    iterations: t.total_iterations ?? t.iterations.length,
    ground_truth_answers: gt.answers ?? null,
    ground_truth_locations: gt.answer_locations ?? null,
    category: gt.category ?? null,
    success: r.success,
    iterations_to_success: r.iterations_to_success,
    first_hit_rank: r.first_hit_rank,
    best_rank: r.best_rank,
    anls_score: answerAnls(gt.answers, answer),
    page_f1: c.page.f1,
    page_precision: c.page.precision,
    page_recall: c.page.recall,
    doc_f1: c.doc.f1,
    doc_precision: c.doc.precision,
    doc_recall: c.doc.recall,
    first_search_rr: r.first_search_rr,
    searches: searches.map((s, i) => ({
      iteration: s.iteration,
      query: s.query,
      gt_rank: r.ranks[i],
      num_results: s.results.length,
    })),
    model: t.model ?? null,
    error: t.error ?? null,
  };
}

/** Questions by id (`id` or `question_id`), from JSONL or a JSON array. */
export async function loadQuestions(file: string): Promise<{ byId: Map<string, QuestionRecord>; errors: LineError[] }> {
  const byId = new Map<string, QuestionRecord>();
  const text = await fsp.readFile(file, 'utf8');
  if (text.trimStart().startsWith('[')) {
    const list = JSON.parse(text) as unknown[];
    const errors: LineError[] = [];
    list.forEach((item, i) => {
      const q = QuestionRecord.safeParse(item);
      if (q.success) byId.set(String(q.data.id ?? q.data.question_id ?? `q_${i}`), q.data);
      else
        errors.push({
          file,
          line: 1,
          fieldPath: `[${i}].${formatFieldPath(q.error.issues[0].path)}`,
          message: q.error.issues[0].message,
        });
    });
    return { byId, errors };
  }
  let i = 0;
  const index = await indexJsonl(file, (value) => {
    const q = QuestionRecord.safeParse(value);
    if (!q.success)
      return {
        ok: false,
        problems: q.error.issues.slice(0, 5).map((x) => ({ fieldPath: formatFieldPath(x.path), message: x.message })),
      };
    byId.set(String(q.data.id ?? q.data.question_id ?? `q_${i}`), q.data);
    i++;
    return { ok: true, summary: null };
  });
  return { byId, errors: indexProblems(index) };
}

export interface ScoreResult {
  records: PerQuestion[];
  summary: Record<string, number | string | null>;
  errors: LineError[];
}

/**
 * `drag score`: metrics of already-collected trajectories, streamed. A file that `--resume` appended
 * to holds an errored record and its retry for the same (question, sample): each pair counts once,
 * with its last final record (the last record when none is final), in the place it first appeared.
 */
export async function scoreTrajectoriesFile(
  file: string,
  options: { questions?: string; topK?: number } = {},
): Promise<ScoreResult> {
  const questions = options.questions ? await loadQuestions(options.questions) : null;
  const kept = new Map<string, { record: PerQuestion; final: boolean; maxResults: number; model: string | null }>();
  let line = 0;
  const index = await indexJsonl(file, (value) => {
    line++;
    const verdict = isTrajectory(value) ? null : explainTrajectory(value);
    if (verdict && !verdict.ok) return verdict;
    const t = value as Trajectory;
    const final = isFinal(t);
    // A record without a question id is its own question (DRAG's files always carry one).
    const key =
      t.question_id !== null && t.question_id !== undefined
        ? `${String(t.question_id)}\u0000${t.sample ?? 0}`
        : `\u0001${line}`;
    const previous = kept.get(key);
    if (previous?.final && !final) return { ok: true, summary: null };
    const q = questions?.byId.get(String(t.question_id ?? ''));
    const record = scoreTrajectory(
      t,
      q
        ? {
            answers: q.answers,
            answer_locations: q.answer_locations,
            category: q.category ?? (q as { question_type?: string }).question_type ?? null,
          }
        : undefined,
    );
    let maxResults = 0;
    for (const it of t.iterations) maxResults = Math.max(maxResults, it.results?.length ?? 0);
    kept.set(key, { record, final, maxResults, model: t.model ?? null });
    return { ok: true, summary: null };
  });
  const records = [...kept.values()].map((k) => k.record);
  const models = new Set([...kept.values()].flatMap((k) => (k.model ? [k.model] : [])));
  const topK = options.topK ?? Math.max(3, ...[...kept.values()].map((k) => k.maxResults));
  return {
    records,
    summary: summarize(records, topK, models.size === 1 ? [...models][0] : models.size ? [...models].join(', ') : null),
    errors: [...(questions?.errors ?? []), ...indexProblems(index)],
  };
}

/** Writes `<dir>/summary.json` and `<dir>/per_question.jsonl` atomically. */
export async function writeEvaluation(
  dir: string,
  result: { records: PerQuestion[]; summary: Record<string, unknown> },
): Promise<void> {
  await writeFileAtomic(path.join(dir, 'per_question.jsonl'), result.records.map(toJsonLine).join(''));
  await writeJsonAtomic(path.join(dir, 'summary.json'), result.summary);
}
