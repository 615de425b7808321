import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { writeJsonAtomic } from '../io/write';
import { Host } from '../schema/config';
import { shExports, shJoin, shQuote } from './quote';
import { HostError, type HostConfig, type Transport, transportFor } from './transport';

/**
 * Remote jobs (DESIGN.md "jobs/"): any command runs in its own folder `<workdir>/<job-id>/` on a
 * host, detached from the connection that started it (setsid + nohup over SSH, sbatch on SLURM),
 * with `pid`, `exit_code` and `job.log` there. The local record `jobs/<id>/job.json` holds all a
 * later process needs to reattach, so a job outlives the window, the CLI and the laptop lid.
 */

export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const FINAL_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled']);

export const JobStatus = z.object({
  id: z.string(),
  state: z.enum(JOB_STATES),
  exit_code: z.number().int().nullable(),
  /** The last line of the job's trainer_log.jsonl, or null. */
  progress: z.record(z.string(), z.unknown()).nullable(),
  host: z.string(),
  launcher: z.enum(['ssh', 'slurm', 'local']),
  remote_dir: z.string(),
  submitted_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  slurm_job_id: z.string().nullable(),
  /** Why a job is queued or failed, in words (SLURM's state, a lost process, a missing folder). */
  reason: z.string().nullable(),
  checked_at: z.string(),
});
export type JobStatus = z.infer<typeof JobStatus>;

export const JobRecord = z.object({
  version: z.literal(1),
  id: z.string(),
  name: z.string(),
  /** The host's name in drag.config.json, and its settings when the job was submitted. */
  host: z.string(),
  hostConfig: Host,
  remoteDir: z.string(),
  command: z.array(z.string()).min(1),
  uploads: z.array(z.string()),
  submittedAt: z.string(),
  slurmJobId: z.string().optional(),
  /** trainer_log.jsonl relative to the job folder; when absent the first one found is used. */
  progressFile: z.string().optional(),
  /** What the job is for (a training run, a vLLM server), for the views and "Evaluate this adapter". */
  meta: z.record(z.string(), z.unknown()).optional(),
  last: JobStatus.optional(),
});
export type JobRecord = z.infer<typeof JobRecord>;

export const JOBS_DIR = 'jobs';
const JOB_LOG = 'job.log';

export function jobDir(workspace: string, id: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(id) || id.startsWith('.')) throw new Error(`invalid job id "${id}"`);
  return path.join(workspace, JOBS_DIR, id);
}

function slug(name: string): string {
  return (
    name
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .replace(/^[-.]+|-+$/g, '')
      .slice(0, 40) || 'job'
  );
}

/** `20261126-031500-sft-a1b2`: sortable by time, readable, unique. */
export function newJobId(name: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${slug(name)}-${randomBytes(2).toString('hex')}`;
}

/** The absolute-or-home-relative workdir as a shell word: `~/x` keeps `~` meaning the remote home. */
export function shRemotePath(p: string): string {
  if (p === '~') return '"$HOME"';
  if (p.startsWith('~/')) return `"$HOME"/${shQuote(p.slice(2))}`;
  return shQuote(p);
}

export interface SubmitOptions {
  workspace: string;
  hostName: string;
  host: HostConfig;
  command: string[];
  name?: string;
  uploads?: string[];
  progressFile?: string;
  meta?: Record<string, unknown>;
  signal?: AbortSignal;
  /** Called with a line of progress ("uploading …") for the CLI and the extension. */
  onProgress?: (message: string) => void;
  /**
   * Runs after the uploads, before the job starts (e.g. `python -m drag_trainer env`); when it
   * throws, the job is recorded as failed with its message and never started.
   */
  preflight?: (transport: Transport, remoteDir: string) => Promise<void>;
}

/** The wrapper each job runs: records pid, start, exit code and end beside the job's log. */
export function wrapperScript(
  remoteDir: string,
  command: readonly string[],
  env: Readonly<Record<string, string>> = {},
): string {
  return `#!/usr/bin/env bash
# DRAG Studio job wrapper: runs the command below in this folder, detached from any terminal.
cd ${shQuote(remoteDir)} || exit 97
echo $$ > pid
[ -e cancelled ] && exit 130
date -u +%Y-%m-%dT%H:%M:%SZ > started_at
${shExports(env)}${shJoin(command)} >> ${JOB_LOG} 2>&1 < /dev/null
code=$?
echo "$code" > exit_code.tmp && mv -f exit_code.tmp exit_code
date -u +%Y-%m-%dT%H:%M:%SZ > finished_at
exit "$code"
`;
}

/** sbatch options from the host's `slurm` settings. */
export function sbatchArgs(host: HostConfig, name: string, remoteDir: string): string[] {
  const s = host.slurm ?? {};
  return [
    'sbatch',
    '--parsable',
    `--job-name=${name}`,
    `--chdir=${remoteDir}`,
    `--output=${remoteDir}/slurm.out`,
    ...(s.partition ? [`--partition=${s.partition}`] : []),
    ...(s.gpus ? [`--gres=gpu:${s.gpus}`] : []),
    ...(s.cpus ? [`--cpus-per-task=${s.cpus}`] : []),
    ...(s.mem ? [`--mem=${s.mem}`] : []),
    ...(s.time ? [`--time=${s.time}`] : []),
    ...(s.account ? [`--account=${s.account}`] : []),
    ...(s.extra ?? []),
    `${remoteDir}/run.sh`,
  ];
}

export async function readJob(workspace: string, id: string): Promise<JobRecord> {
  const file = path.join(jobDir(workspace, id), 'job.json');
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error(`no job "${id}" in ${path.join(workspace, JOBS_DIR)}`);
    throw err;
  }
  const parsed = JobRecord.safeParse(JSON.parse(text));
  if (!parsed.success)
    throw new Error(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

async function writeJob(workspace: string, record: JobRecord): Promise<void> {
  await writeJsonAtomic(path.join(jobDir(workspace, record.id), 'job.json'), record);
}

/** Every job record of a workspace, newest first; unreadable records are reported, not fatal. */
export async function listJobs(workspace: string): Promise<{ jobs: JobRecord[]; errors: string[] }> {
  const root = path.join(workspace, JOBS_DIR);
  let names: string[];
  try {
    names = await fsp.readdir(root);
  } catch {
    return { jobs: [], errors: [] };
  }
  const jobs: JobRecord[] = [];
  const errors: string[] = [];
  for (const name of names) {
    try {
      await fsp.access(path.join(root, name, 'job.json'));
    } catch {
      continue;
    }
    try {
      jobs.push(await readJob(workspace, name));
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  jobs.sort((a, b) => b.submittedAt.localeCompare(a.submittedAt));
  return { jobs, errors };
}

/** Submits a command as a job; returns its record once the host has accepted it. */
export async function submitJob(options: SubmitOptions): Promise<JobRecord> {
  const { host, workspace, signal } = options;
  const launcher = host.launcher ?? 'ssh';
  const transport = transportFor(host);
  const name = options.name ?? path.basename(options.command[0] ?? 'job');
  const id = newJobId(name);
  const say = options.onProgress ?? (() => undefined);
  for (const u of options.uploads ?? [])
    await fsp.access(u).catch(() => {
      throw new Error(`--upload ${u}: no such file or folder`);
    });

  say(`preparing ${transport.label}:${host.workdir}/${id}`);
  const prep = await transport.run(
    `set -e\nmkdir -p ${shRemotePath(host.workdir)}/${shQuote(id)}\ncd ${shRemotePath(host.workdir)}/${shQuote(id)}\npwd -P\n`,
    { signal },
  );
  if (prep.code !== 0)
    throw new HostError(`${transport.label}: cannot create the job folder in ${host.workdir}: ${prep.stderr.trim()}`);
  const remoteDir = prep.stdout.trim().split('\n').pop() ?? '';
  if (!remoteDir.startsWith('/'))
    throw new HostError(`${transport.label}: unexpected answer for the job folder: ${JSON.stringify(prep.stdout)}`);

  const record: JobRecord = {
    version: 1,
    id,
    name,
    host: options.hostName,
    hostConfig: host,
    remoteDir,
    command: options.command,
    uploads: (options.uploads ?? []).map((u) => path.resolve(u)),
    submittedAt: new Date().toISOString(),
    ...(options.progressFile ? { progressFile: options.progressFile } : {}),
    ...(options.meta ? { meta: options.meta } : {}),
  };
  // The record exists before anything starts, so a job is never running without one.
  await writeJob(workspace, record);

  for (const u of record.uploads) {
    say(`uploading ${u}`);
    await transport.upload(u, remoteDir, signal);
  }

  if (options.preflight) {
    try {
      await options.preflight(transport, remoteDir);
    } catch (err) {
      const now = new Date().toISOString();
      await writeJob(workspace, {
        ...record,
        last: {
          id,
          state: 'failed',
          exit_code: null,
          progress: null,
          host: record.host,
          launcher,
          remote_dir: remoteDir,
          submitted_at: record.submittedAt,
          started_at: null,
          finished_at: now,
          slurm_job_id: null,
          reason: `not started: ${(err as Error).message}`,
          checked_at: now,
        },
      });
      throw err;
    }
  }

  const wrapper = wrapperScript(remoteDir, options.command, host.env ?? {});
  const dir = shQuote(remoteDir);
  const write = `cd ${dir}\nprintf '%s' ${shQuote(wrapper)} > run.sh\nchmod +x run.sh\n: > ${JOB_LOG}\n`;
  if (launcher === 'slurm') {
    const res = await transport.run(`set -e\n${write}${shJoin(sbatchArgs(host, slug(name), remoteDir))}\n`, { signal });
    if (res.code !== 0)
      throw new HostError(`sbatch on ${transport.label} failed: ${res.stderr.trim() || res.stdout.trim()}`);
    const jobId = res.stdout.trim().split('\n').pop()?.split(';')[0] ?? '';
    if (!/^\d+$/.test(jobId)) throw new HostError(`sbatch on ${transport.label} gave no job id: ${res.stdout.trim()}`);
    record.slurmJobId = jobId;
    await transport.run(`echo ${jobId} > ${dir}/slurm_job_id\n`, { signal });
  } else {
    const res = await transport.run(
      `set -e\n${write}setsid nohup bash ./run.sh > /dev/null 2>&1 < /dev/null &\necho started\n`,
      { signal },
    );
    if (res.code !== 0 || !res.stdout.includes('started'))
      throw new HostError(`starting the job on ${transport.label} failed: ${res.stderr.trim()}`);
  }
  await writeJob(workspace, record);
  say(`submitted ${id}${record.slurmJobId ? ` (SLURM job ${record.slurmJobId})` : ''}`);
  return record;
}

/** Shell function: is process group $1 alive? Zombies (this host's init may not reap them) are not. */
const ALIVE_FN = `alive() { if command -v ps >/dev/null 2>&1; then ps -eo pgid=,stat= | awk -v g="$1" '$1==g && $2 !~ /^Z/ {f=1} END {exit !f}'; else kill -0 -- -"$1" 2>/dev/null; fi; }`;

/** The job's trainer_log.jsonl as a shell word (in the job folder): the recorded one, else the first found. */
export function progressFileWord(record: Pick<JobRecord, 'progressFile'>): string {
  return record.progressFile
    ? shQuote(record.progressFile)
    : '"$(find . -maxdepth 3 -name trainer_log.jsonl -print -quit 2>/dev/null)"';
}

/**
 * The script that reports a job's state as `key=value` lines. Whether the job still runs (its
 * process group, SLURM's queue) is asked before its exit code is read: the wrapper writes the exit
 * code before it ends, so a job seen gone has its exit code on disk by the time it is read. The
 * other order misreads a job that ends between the two as "ended without an exit code" (failed).
 */
export function statusScript(record: JobRecord): string {
  const slurm = record.slurmJobId
    ? `s=$(squeue -h -j ${record.slurmJobId} -o %T 2>/dev/null || true)\necho "slurm_state=$s"\nif [ -z "$s" ]; then echo "slurm_final=$(scontrol show job ${record.slurmJobId} -o 2>/dev/null | sed -n 's/.*JobState=\\([A-Z_]*\\).*/\\1/p')"; fi\n`
    : '';
  return `cd ${shQuote(record.remoteDir)} 2>/dev/null || { echo missing=1; exit 0; }
${ALIVE_FN}
if [ -s pid ]; then echo has_pid=1; alive "$(cat pid)" && echo alive=1; fi
${slurm}[ -f exit_code ] && echo "exit_code=$(cat exit_code)"
[ -e cancelled ] && echo cancelled=1
[ -f started_at ] && echo "started_at=$(cat started_at)"
[ -f finished_at ] && echo "finished_at=$(cat finished_at)"
pf=${progressFileWord(record)}
[ -n "$pf" ] && [ -f "$pf" ] && echo "progress=$(tail -n 1 "$pf")"
true
`;
}

function parseKv(text: string): Map<string, string> {
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) kv.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return kv;
}

/** How long a job may have no pid file before it counts as lost (the wrapper writes it at once). */
const START_GRACE_MS = 60_000;

/** Decides a job's state from what the status script saw (pure; tested case by case). */
export function decideState(
  record: Pick<JobRecord, 'id' | 'submittedAt' | 'slurmJobId'>,
  kv: Map<string, string>,
  now = Date.now(),
): { state: JobState; exitCode: number | null; reason: string | null } {
  if (kv.has('missing')) return { state: 'failed', exitCode: null, reason: 'the job folder is gone from the host' };
  const exitText = kv.get('exit_code');
  const exitCode = exitText !== undefined && /^-?\d+$/.test(exitText.trim()) ? Number(exitText.trim()) : null;
  const cancelled = kv.has('cancelled');
  const alive = kv.has('alive');
  const slurmState = kv.get('slurm_state')?.trim() ?? '';
  if (exitCode !== null) {
    if (exitCode === 0) return { state: 'succeeded', exitCode, reason: null };
    return {
      state: cancelled ? 'cancelled' : 'failed',
      exitCode,
      reason: cancelled ? 'cancelled' : `exit code ${exitCode}`,
    };
  }
  if (record.slurmJobId) {
    if (/^(PENDING|CONFIGURING|REQUEUED|RESV_DEL_HOLD|SUSPENDED)$/.test(slurmState))
      return { state: 'queued', exitCode: null, reason: `SLURM: ${slurmState}` };
    if (slurmState)
      return {
        state: cancelled && !alive ? 'cancelled' : 'running',
        exitCode: null,
        reason: slurmState === 'RUNNING' ? null : `SLURM: ${slurmState}`,
      };
    if (cancelled) return { state: 'cancelled', exitCode: null, reason: 'cancelled' };
    const final = kv.get('slurm_final')?.trim();
    if (final === 'CANCELLED')
      return { state: 'cancelled', exitCode: null, reason: 'cancelled outside DRAG Studio (scancel)' };
    return {
      state: 'failed',
      exitCode: null,
      reason: final ? `SLURM: ${final}` : 'SLURM no longer knows the job and it wrote no exit code',
    };
  }
  if (alive) return { state: 'running', exitCode: null, reason: cancelled ? 'cancelling' : null };
  if (cancelled) return { state: 'cancelled', exitCode: null, reason: 'cancelled' };
  if (!kv.has('has_pid') && now - Date.parse(record.submittedAt) < START_GRACE_MS)
    return { state: 'queued', exitCode: null, reason: 'starting' };
  return {
    state: 'failed',
    exitCode: null,
    reason: 'the process ended without an exit code (killed, or the host rebooted)',
  };
}

function parseProgress(line: string | undefined): Record<string, unknown> | null {
  if (!line) return null;
  try {
    const v: unknown = JSON.parse(line);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null; // a half-written last line: the next poll will see it whole
  }
}

/** Asks the host where a job stands, stores the answer in job.json, and returns it. */
export async function jobStatus(workspace: string, id: string, signal?: AbortSignal): Promise<JobStatus> {
  return (await probeJob(workspace, id, { signal })).status;
}

const EXTRA_MARK = '@@DRAG-EXTRA@@';

/**
 * Where a job stands (stored in job.json), plus the output of `extra`, a script run in the job
 * folder, in the same round trip to the host. A finished job does not change, so it is not asked
 * about again: only `extra` runs then, and without `extra` the host is not reached at all.
 */
export async function probeJob(
  workspace: string,
  id: string,
  options: { extra?: (record: JobRecord) => string; signal?: AbortSignal } = {},
): Promise<{ record: JobRecord; status: JobStatus; extra: string }> {
  const record = await readJob(workspace, id);
  const known = record.last && FINAL_STATES.has(record.last.state) ? record.last : null;
  if (known && !options.extra) return { record, status: known, extra: '' };
  const transport = transportFor(record.hostConfig);
  // The status part runs in a subshell: its early exit (folder gone) must not skip `extra`.
  const script = `${
    known
      ? ''
      : `(
${statusScript(record)})
`
  }${
    options.extra
      ? `echo '${EXTRA_MARK}'
cd ${shQuote(record.remoteDir)} 2>/dev/null || exit 0
${options.extra(record)}
true
`
      : ''
  }`;
  const res = await transport.run(script, { signal: options.signal });
  if (res.code !== 0) throw new HostError(`${transport.label}: status of ${id} failed: ${res.stderr.trim()}`);
  const at = res.stdout.indexOf(`${EXTRA_MARK}\n`);
  const extra = at < 0 ? '' : res.stdout.slice(at + EXTRA_MARK.length + 1);
  if (known) return { record, status: known, extra };
  const kv = parseKv(at < 0 ? res.stdout : res.stdout.slice(0, at));
  const { state, exitCode, reason } = decideState(record, kv);
  const status: JobStatus = {
    id,
    state,
    exit_code: exitCode,
    progress: parseProgress(kv.get('progress')),
    host: record.host,
    launcher: record.hostConfig.launcher ?? 'ssh',
    remote_dir: record.remoteDir,
    submitted_at: record.submittedAt,
    started_at: kv.get('started_at')?.trim() || null,
    finished_at: kv.get('finished_at')?.trim() || null,
    slurm_job_id: record.slurmJobId ?? null,
    reason,
    checked_at: new Date().toISOString(),
  };
  // Re-read before writing: another window may have updated meta meanwhile.
  const updated = { ...(await readJob(workspace, id).catch(() => record)), last: status };
  await writeJob(workspace, updated);
  return { record: updated, status, extra };
}

/** Reads the job's log from byte `offset`; `text` ends at a line end unless `final` (so UTF-8 is never split). */
export async function readJobLog(
  workspace: string,
  id: string,
  offset: number,
  options: { final?: boolean; maxBytes?: number; signal?: AbortSignal } = {},
): Promise<{ text: string; offset: number }> {
  const record = await readJob(workspace, id);
  const res = await transportFor(record.hostConfig).run(
    `cd ${shQuote(record.remoteDir)} 2>/dev/null || exit 0\n${logReadScript(offset, options.maxBytes)}\ntrue\n`,
    { signal: options.signal },
  );
  return takeLogChunk(res.stdout, offset, options.final ?? false);
}

/** Reads job.log from byte `offset` (run in the job folder), at most `maxBytes`. */
export function logReadScript(offset: number, maxBytes = 1 << 20): string {
  return `[ -f ${JOB_LOG} ] && tail -c +${offset + 1} ${JOB_LOG} | head -c ${maxBytes}`;
}

/** What a log read gave: whole lines only unless `final` (so UTF-8 is never split), and the next offset. */
export function takeLogChunk(raw: string, offset: number, final: boolean): { text: string; offset: number } {
  const end = final ? raw.length - 1 : raw.lastIndexOf('\n');
  const text = end >= 0 ? raw.slice(0, end + 1) : '';
  return { text, offset: offset + Buffer.byteLength(text) };
}

/** Cancels a job: kills its whole process group (SIGTERM, then SIGKILL after 10 s) or scancels it. */
export async function cancelJob(workspace: string, id: string, signal?: AbortSignal): Promise<JobStatus> {
  const record = await readJob(workspace, id);
  const transport = transportFor(record.hostConfig);
  const dir = shQuote(record.remoteDir);
  const script = record.slurmJobId
    ? `cd ${dir} || exit 3\n[ -f exit_code ] && exit 0\n: > cancelled\nscancel ${record.slurmJobId}\n`
    : `cd ${dir} || exit 3
[ -f exit_code ] && exit 0
: > cancelled
${ALIVE_FN}
for _ in $(seq 1 25); do [ -s pid ] && break; sleep 0.2; done
[ -s pid ] || exit 0
p=$(cat pid)
kill -TERM -- -"$p" 2>/dev/null || true
for _ in $(seq 1 50); do alive "$p" || exit 0; sleep 0.2; done
kill -KILL -- -"$p" 2>/dev/null || true
sleep 0.2
`;
  const res = await transport.run(script, { signal });
  if (res.code !== 0)
    throw new HostError(`${transport.label}: cancelling ${id} failed: ${res.stderr.trim() || `exit code ${res.code}`}`);
  if (record.slurmJobId) {
    // scancel returns before SLURM has signalled the job; wait until it has left the queue.
    for (let i = 0; i < 50; i++) {
      const s = await jobStatus(workspace, id, signal);
      if (FINAL_STATES.has(s.state)) return s;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return jobStatus(workspace, id, signal);
}

/** Copies `remotePath` (relative to the job folder, or absolute) from the host into `localDir`. */
export async function fetchFromJob(
  workspace: string,
  id: string,
  remotePath: string,
  localDir: string,
  signal?: AbortSignal,
): Promise<string> {
  const record = await readJob(workspace, id);
  const source = path.posix.isAbsolute(remotePath) ? remotePath : path.posix.join(record.remoteDir, remotePath);
  await transportFor(record.hostConfig).download(source, localDir, signal);
  return path.join(localDir, path.posix.basename(source));
}

/** Records extra facts about a job (e.g. where its adapter was fetched to). */
export async function updateJobMeta(workspace: string, id: string, meta: Record<string, unknown>): Promise<JobRecord> {
  const record = await readJob(workspace, id);
  const next = { ...record, meta: { ...(record.meta ?? {}), ...meta } };
  await writeJob(workspace, next);
  return next;
}

/** Fetches a training job's adapter (meta.adapter, default out/final) into jobs/<id>/adapter/. */
export async function fetchAdapter(workspace: string, id: string, signal?: AbortSignal): Promise<string> {
  const record = await readJob(workspace, id);
  const remote = typeof record.meta?.adapter === 'string' ? record.meta.adapter : 'out/final';
  const dir = jobDir(workspace, id);
  const staging = path.join(dir, '.fetching');
  await fsp.rm(staging, { recursive: true, force: true });
  const got = await fetchFromJob(workspace, id, remote, staging, signal);
  const target = path.join(dir, 'adapter');
  await fsp.rm(target, { recursive: true, force: true });
  await fsp.rename(got, target);
  await fsp.rm(staging, { recursive: true, force: true });
  await updateJobMeta(workspace, id, { adapterFetched: target, adapterFetchedAt: new Date().toISOString() });
  return target;
}

/**
 * Deletes a finished job's folder on the host (checkpoints are large; rented disks cost money).
 * The local record stays, marked, so the job still lists and its fetched adapter is kept.
 */
export async function cleanJob(workspace: string, id: string, signal?: AbortSignal): Promise<JobRecord> {
  const status = await jobStatus(workspace, id, signal);
  if (!FINAL_STATES.has(status.state))
    throw new Error(`job ${id} is ${status.state}: cancel it before deleting its files`);
  const record = await readJob(workspace, id);
  if (!record.remoteDir.endsWith(`/${id}`))
    throw new Error(`refusing to delete ${record.remoteDir}: it is not a job folder`);
  const res = await transportFor(record.hostConfig).run(`rm -rf -- ${shQuote(record.remoteDir)}\n`, { signal });
  if (res.code !== 0) throw new HostError(`deleting ${record.remoteDir} failed: ${res.stderr.trim()}`);
  return updateJobMeta(workspace, id, { remoteCleanedAt: new Date().toISOString() });
}
