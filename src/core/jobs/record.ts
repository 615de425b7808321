import { z } from 'zod';
import { formatFieldPath } from '../io/errors';
import { Host, ModelName, SafeText } from '../schema/config';

/**
 * What `jobs/<id>/job.json` holds, and how older files are read. One naming on disk: camelCase
 * throughout (version 2). Version 1 files wrote the last status in snake_case (`exit_code`,
 * `remote_dir`, …) inside a camelCase record; `upgradeJobJson` reads them unchanged.
 */

export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const FINAL_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled']);

/** Where a training job leaves its adapter, relative to the job folder (the trainer's `--output-dir out` + final/). */
export const TRAIN_ADAPTER_DIR = 'out/final';

/** A job id: a folder name under jobs/ and on the host (letters, digits, `.`, `_`, `-`; no leading `.` or `-`). */
export const JobId = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9._-]*$/, 'is not a job id (letters, digits, ".", "_" and "-", not first "." or "-")');

export const JobStatus = z.object({
  id: JobId,
  state: z.enum(JOB_STATES),
  exitCode: z.number().int().nullable(),
  /** The last line of the job's trainer_log.jsonl, or null. */
  progress: z.record(z.string(), z.unknown()).nullable(),
  host: z.string(),
  launcher: z.enum(['ssh', 'slurm', 'local']),
  remoteDir: z.string(),
  submittedAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  slurmJobId: z.string().nullable(),
  /**
   * Why a job is queued or failed, in words: SLURM's state, a lost process, a missing folder, or
   * "environment check failed on node n1: torch is not importable".
   */
  reason: z.string().nullable(),
  checkedAt: z.string(),
});
export type JobStatus = z.infer<typeof JobStatus>;

/** Facts added to any job after it was submitted (fetched adapter, evaluation, deleted files). */
const JobFacts = {
  adapterFetched: z.string().optional(),
  adapterFetchedAt: z.string().optional(),
  evaluation: z.string().optional(),
  remoteCleanedAt: z.string().optional(),
};
export type JobFacts = { [K in keyof typeof JobFacts]?: string };

/** A LoRA training run (`drag train`). */
export const TrainMeta = z.looseObject({
  kind: z.literal('train'),
  task: z.enum(['sft', 'dpo']),
  dataset: z.string(),
  model: ModelName,
  /** The adapter folder relative to the job folder. */
  adapter: SafeText.default(TRAIN_ADAPTER_DIR),
  trainData: z.string().optional(),
  loraRank: z.number().int().positive().optional(),
  fromJob: JobId.optional(),
  ...JobFacts,
});

/** A vLLM server for a training job's adapter (`drag eval-adapter`). */
export const ServeMeta = z.looseObject({
  kind: z.literal('serve'),
  trainJob: JobId,
  model: ModelName,
  lora: SafeText,
  port: z.number().int(),
  ...JobFacts,
});

/** A merge of an adapter into its base model, for adapters vLLM cannot load as LoRA. */
export const MergeMeta = z.looseObject({
  kind: z.literal('merge'),
  trainJob: JobId,
  model: ModelName,
  /** The merged model's folder on the host (absolute). */
  output: SafeText,
  ...JobFacts,
});

/** Any other command (`drag jobs submit`). */
export const CommandMeta = z.looseObject({ kind: z.literal('command'), ...JobFacts });

/** What a job is for. Records written before kinds existed, or without meta, read as `command`. */
export const JobMeta = z.preprocess(
  (v) => (v && typeof v === 'object' && !('kind' in v) ? { ...v, kind: 'command' } : v),
  z.discriminatedUnion('kind', [TrainMeta, ServeMeta, MergeMeta, CommandMeta]),
);
export type JobMeta = z.infer<typeof JobMeta>;
/** Meta as a caller gives it when submitting (defaults not yet applied). */
export type JobMetaInput = z.input<typeof JobMeta>;

/** One earlier run of a job that was resumed in its own folder (`drag train --resume`). */
export const PreviousRun = z.object({
  submittedAt: z.string(),
  slurmJobId: z.string().optional(),
  command: z.array(z.string()),
  state: z.enum(JOB_STATES).optional(),
  reason: z.string().nullable().optional(),
});

export const JobRecord = z.object({
  version: z.literal(2),
  id: JobId,
  name: z.string(),
  /** The host's name in drag.config.json, and its settings when the job was submitted. */
  host: z.string(),
  hostConfig: Host,
  remoteDir: SafeText,
  command: z.array(z.string()).min(1),
  uploads: z.array(z.string()),
  /** When the current run was submitted (a resumed job: its latest run). */
  submittedAt: z.string(),
  slurmJobId: z.string().optional(),
  /** trainer_log.jsonl relative to the job folder; when absent the first one found is used. */
  progressFile: z.string().optional(),
  /** What the job is for (a training run, a vLLM server), for the views and "Evaluate this adapter". */
  meta: JobMeta.default({ kind: 'command' }),
  previousRuns: z.array(PreviousRun).optional(),
  last: JobStatus.optional(),
});
export type JobRecord = z.infer<typeof JobRecord>;

const V1_STATUS_KEYS: Record<string, string> = {
  exit_code: 'exitCode',
  remote_dir: 'remoteDir',
  submitted_at: 'submittedAt',
  started_at: 'startedAt',
  finished_at: 'finishedAt',
  slurm_job_id: 'slurmJobId',
  checked_at: 'checkedAt',
};

/** A job.json as read: version 1 files (snake_case status) become version 2; anything else is left to the schema. */
export function upgradeJobJson(raw: unknown): unknown {
  if (!raw || typeof raw !== 'object' || (raw as { version?: unknown }).version !== 1) return raw;
  const v1 = raw as Record<string, unknown>;
  const last = v1.last;
  const upgraded: Record<string, unknown> = { ...v1, version: 2 };
  if (last && typeof last === 'object')
    upgraded.last = Object.fromEntries(
      Object.entries(last as Record<string, unknown>).map(([k, v]) => [V1_STATUS_KEYS[k] ?? k, v]),
    );
  return upgraded;
}

/**
 * Parses a job.json's text. Refuses, naming the file and field, a record that does not parse or whose
 * id is not its folder's name (a copied or edited record would otherwise act on another job's folder).
 */
export function parseJobJson(text: string, file: string, folderId: string): JobRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: invalid JSON: ${(err as Error).message}`);
  }
  const parsed = JobRecord.safeParse(upgradeJobJson(raw));
  if (!parsed.success)
    throw new Error(
      `${file}: ${parsed.error.issues.map((i) => `${formatFieldPath(i.path) || '(record)'}: ${i.message}`).join('; ')}`,
    );
  if (parsed.data.id !== folderId)
    throw new Error(`${file}: id: "${parsed.data.id}" does not match its folder "${folderId}"; nothing was run`);
  return parsed.data;
}
