import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';

/** One evaluation of the workspace, as the Evaluations view and the compare picker list it. */
export interface EvaluationEntry {
  /** evals/<name> folder, or a DRAG `X_summary.json` file. */
  target: string;
  name: string;
  /** Display label: the folder (or file stem) name unless renamed (evals/<name>/label.txt). */
  label: string;
  model: string | null;
  /** When it was made: run.json's finish time, else the summary's modification time. */
  date: string;
  hit1: number | null;
  mrr: number | null;
  success: number | null;
  questions: number | null;
  perQuestion: boolean;
}

const num = (v: unknown) => (typeof v === 'number' ? v : null);

async function entry(
  target: string,
  summaryFile: string,
  name: string,
  labelFile: string | null,
  perQuestion: boolean,
): Promise<EvaluationEntry | null> {
  let summary: Record<string, unknown>;
  try {
    summary = JSON.parse(await fsp.readFile(summaryFile, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
  let date = (await fsp.stat(summaryFile)).mtime.toISOString();
  const runJson = path.join(path.dirname(summaryFile), 'run.json');
  if (existsSync(runJson)) {
    try {
      const run = JSON.parse(await fsp.readFile(runJson, 'utf8')) as { finished?: string };
      if (run.finished) date = run.finished;
    } catch {
      /* keep the mtime */
    }
  }
  let label = name;
  if (labelFile && existsSync(labelFile)) label = (await fsp.readFile(labelFile, 'utf8')).trim() || name;
  return {
    target,
    name,
    label,
    model: typeof summary.model === 'string' ? summary.model : null,
    date,
    hit1: num(summary.hit_at_1),
    mrr: num(summary.mrr) ?? num(summary.first_search_mrr),
    success: num(summary.success_rate),
    questions: num(summary.total_questions),
    perQuestion,
  };
}

/** Every evaluation under `<workspace>/evals/`: our folders and DRAG's `*_summary.json` files, newest first. */
export async function listEvaluations(workspace: string): Promise<EvaluationEntry[]> {
  const root = path.join(workspace, 'evals');
  if (!existsSync(root)) return [];
  const out: EvaluationEntry[] = [];
  for (const name of (await fsp.readdir(root)).sort()) {
    const full = path.join(root, name);
    const st = await fsp.stat(full);
    if (st.isDirectory() && existsSync(path.join(full, 'summary.json'))) {
      const e = await entry(
        full,
        path.join(full, 'summary.json'),
        name,
        path.join(full, 'label.txt'),
        existsSync(path.join(full, 'per_question.jsonl')),
      );
      if (e) out.push(e);
    } else if (st.isFile() && name.endsWith('_summary.json')) {
      const stem = name.slice(0, -'_summary.json'.length);
      const e = await entry(full, full, stem, null, existsSync(path.join(root, `${stem}.jsonl`)));
      if (e) out.push(e);
    }
  }
  return out.sort((a, b) => b.date.localeCompare(a.date) || a.name.localeCompare(b.name));
}

/** Renames an evaluation's label (the folder keeps its name). */
export async function setEvaluationLabel(target: string, label: string): Promise<void> {
  await fsp.writeFile(path.join(target, 'label.txt'), `${label.trim()}\n`);
}
