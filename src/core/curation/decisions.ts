import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { userInfo } from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { formatFieldPath, type LineError } from '../io/errors';
import { indexJsonl, indexProblems } from '../io/jsonl';
import { appendJsonl } from '../io/write';

/**
 * The curation log, `curation/decisions.jsonl`: append-only, one decision per line, fsynced.
 * Nothing a person decided lives anywhere else; the current state is derived by replaying it.
 * Each decision is one O_APPEND write of one line, so two windows on one workspace interleave
 * whole lines and never lose one.
 */
export const DecisionKind = z.enum(['accept', 'reject', 'pair', 'edit', 'label-problem', 'undo']);

/** A query a pair names, with its step/trajectory (and ground-truth rank) when it came from one. */
export const QueryRef = z.looseObject({
  query: z.string(),
  trajectory_id: z.string().nullable().optional(),
  step: z.number().int().nullable().optional(),
  rank: z.number().int().nullable().optional(),
});
export type QueryRef = z.infer<typeof QueryRef>;

export const Decision = z.looseObject({
  id: z.string(),
  time: z.string(),
  user: z.string(),
  trajectory_id: z.string(),
  question_id: z.string(),
  step: z.number().int().nullable().optional(),
  decision: DecisionKind,
  reason: z.string().nullable().optional(),
  /** For pairs: the chosen and rejected queries (with their steps/trajectories when they came from one). */
  chosen: QueryRef.nullable().optional(),
  rejected: QueryRef.nullable().optional(),
  /** For edits: the better query a person wrote, and the ground-truth rank it got when verified live. */
  query: z.string().nullable().optional(),
  verified_rank: z.number().int().nullable().optional(),
  /** For undo: the decision it takes back. */
  target: z.string().nullable().optional(),
});
export type Decision = z.infer<typeof Decision>;

export type NewDecision = Omit<Decision, 'id' | 'time' | 'user'> & { user?: string };

let cachedUser: Promise<string> | null = null;

/** git user.name, else the OS user: who made a decision. */
export function currentUser(cwd?: string): Promise<string> {
  cachedUser ??= new Promise((resolve) => {
    execFile('git', ['config', 'user.name'], { cwd, timeout: 3000 }, (err, stdout) => {
      const name = stdout?.trim();
      resolve(!err && name ? name : userInfo().username);
    });
  });
  return cachedUser;
}

export function decisionsPath(workspace: string): string {
  return path.join(workspace, 'curation', 'decisions.jsonl');
}

/** Appends one decision (one write, fsynced) and returns it as written. */
export async function appendDecision(file: string, d: NewDecision): Promise<Decision> {
  const full = Decision.parse({
    ...d,
    id: `d_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`,
    time: new Date().toISOString(),
    user: d.user ?? (await currentUser(path.dirname(file))),
  });
  await appendJsonl(file, [full]);
  return full;
}

export async function readDecisions(file: string): Promise<{ decisions: Decision[]; errors: LineError[] }> {
  const decisions: Decision[] = [];
  try {
    await fsp.access(file);
  } catch {
    return { decisions, errors: [] };
  }
  const index = await indexJsonl(file, (v) => {
    const d = Decision.safeParse(v);
    if (!d.success)
      return {
        ok: false,
        problems: d.error.issues.slice(0, 3).map((i) => ({ fieldPath: formatFieldPath(i.path), message: i.message })),
      };
    decisions.push(d.data);
    return { ok: true, summary: null };
  });
  return { decisions, errors: indexProblems(index) };
}

/** What curation says about one trajectory now. */
export interface TrajectoryCuration {
  status: 'accepted' | 'rejected' | null;
  reason: string | null;
  labelProblem: string | null;
  pairs: Decision[];
  edits: Decision[];
  /** The decisions in effect, oldest first. */
  decisions: Decision[];
}

export interface CurationState {
  byTrajectory: Map<string, TrajectoryCuration>;
  /** Pairs by question (a pair may mix trajectories of one question). */
  pairsByQuestion: Map<string, Decision[]>;
  /** Every decision still in effect (undone ones and undos removed), oldest first. */
  effective: Decision[];
}

/** Each curated trajectory's accept/reject status, to compare two states by (see {@link changedStatuses}). */
export function curationStatuses(state: CurationState): Map<string, TrajectoryCuration['status']> {
  return new Map([...state.byTrajectory].map(([id, c]) => [id, c.status]));
}

/** The trajectories whose status differs between two {@link curationStatuses} snapshots. */
export function changedStatuses(
  before: ReadonlyMap<string, TrajectoryCuration['status']>,
  after: ReadonlyMap<string, TrajectoryCuration['status']>,
): Set<string> {
  const changed = new Set<string>();
  for (const [id, status] of after) if (before.get(id) !== status) changed.add(id);
  for (const id of before.keys()) if (!after.has(id)) changed.add(id);
  return changed;
}

/**
 * Replays the log: an `undo` cancels its target (or, with no target, the latest effective
 * decision on that trajectory); the last accept/reject wins; pairs, edits and label problems
 * accumulate.
 */
export function replay(decisions: readonly Decision[]): CurationState {
  const undone = new Set<string>();
  const live: Decision[] = [];
  for (const d of decisions) {
    if (d.decision === 'undo') {
      const target =
        d.target ?? [...live].reverse().find((x) => x.trajectory_id === d.trajectory_id && !undone.has(x.id))?.id;
      if (target) undone.add(target);
      continue;
    }
    live.push(d);
  }
  const effective = live.filter((d) => !undone.has(d.id));
  const byTrajectory = new Map<string, TrajectoryCuration>();
  const pairsByQuestion = new Map<string, Decision[]>();
  const get = (id: string) => {
    let c = byTrajectory.get(id);
    if (!c)
      byTrajectory.set(
        id,
        (c = { status: null, reason: null, labelProblem: null, pairs: [], edits: [], decisions: [] }),
      );
    return c;
  };
  for (const d of effective) {
    const c = get(d.trajectory_id);
    c.decisions.push(d);
    switch (d.decision) {
      case 'accept':
        c.status = 'accepted';
        c.reason = d.reason ?? null;
        break;
      case 'reject':
        c.status = 'rejected';
        c.reason = d.reason ?? null;
        break;
      case 'label-problem':
        c.labelProblem = d.reason ?? 'label problem';
        break;
      case 'edit':
        c.edits.push(d);
        break;
      case 'pair': {
        c.pairs.push(d);
        const list = pairsByQuestion.get(d.question_id) ?? [];
        list.push(d);
        pairsByQuestion.set(d.question_id, list);
        break;
      }
      default:
        break;
    }
  }
  return { byTrajectory, pairsByQuestion, effective };
}
