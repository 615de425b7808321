import { promises as fsp } from 'node:fs';
import { formatFieldPath, type LineError } from '../io/errors';
import { indexJsonl, indexProblems } from '../io/jsonl';
import { QuestionRecord } from '../schema/question';
import type { AgentQuestion } from './agent';

/**
 * A question set in DRAG's shapes: JSONL, a JSON array, or {"items": [...]}; the id is
 * `id` or `question_id`, else `unknown_{index}`; ground truth {answers, answer_locations,
 * category (or question_type)}.
 */
export async function loadQuestionSet(file: string): Promise<{ questions: AgentQuestion[]; errors: LineError[] }> {
  const questions: AgentQuestion[] = [];
  const errors: LineError[] = [];
  const add = (value: unknown, index: number, line: number) => {
    const q = QuestionRecord.safeParse(value);
    if (!q.success) {
      for (const i of q.error.issues.slice(0, 3))
        errors.push({ file, line, fieldPath: formatFieldPath(i.path), message: i.message });
      return;
    }
    const d = q.data as QuestionRecord & { question_type?: string };
    questions.push({
      id: String(d.id ?? d.question_id ?? `unknown_${index}`),
      question: d.question,
      ground_truth: {
        answers: d.answers ?? null,
        answer_locations: d.answer_locations ?? null,
        category: d.category ?? d.question_type ?? null,
      },
    });
  };
  const text = await fsp.readFile(file, 'utf8');
  const head = text.trimStart();
  if (head.startsWith('[') || (head.startsWith('{') && /^\{\s*"items"\s*:/.test(head))) {
    const parsed = JSON.parse(text) as unknown;
    const list = Array.isArray(parsed) ? parsed : ((parsed as { items?: unknown[] }).items ?? []);
    list.forEach((v, i) => add(v, i, 1));
    return { questions, errors };
  }
  let i = 0;
  const index = await indexJsonl(file, (v, line) => {
    add(v, i++, line);
    return { ok: true, summary: null };
  });
  errors.push(...indexProblems(index));
  return { questions, errors };
}

/** Question ids from DRAG's include/exclude files: {items:[{question_id}]} or [{question_id|id}]. */
export async function loadIdList(file: string): Promise<Set<string>> {
  const value = JSON.parse(await fsp.readFile(file, 'utf8')) as unknown;
  const ids = new Set<string>();
  if (
    value &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    Array.isArray((value as { items?: unknown }).items)
  ) {
    for (const item of (value as { items: Array<{ question_id?: unknown }> }).items)
      if (item?.question_id != null) ids.add(String(item.question_id));
  } else if (Array.isArray(value)) {
    for (const item of value as Array<Record<string, unknown> | string>) {
      if (typeof item === 'string') ids.add(item);
      else if (item?.question_id != null) ids.add(String(item.question_id));
      else if (item?.id != null) ids.add(String(item.id));
    }
  }
  return ids;
}
