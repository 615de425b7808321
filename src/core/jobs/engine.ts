import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { formatFieldPath } from '../io/errors';
import { writeJsonAtomic } from '../io/write';
import { Host, HostName } from '../schema/config';
import { envCheckReason, setupLines } from './hostCheck';
import { shExports, shJoin, shQuote, shRemotePath } from './quote';

export { shRemotePath } from './quote';
import {
  FINAL_STATES,
  JobId,
  JobMeta,
  type JobMetaInput,
  type JobRecord,
  type JobState,
  type JobStatus,
  type JobFacts,
  parseJobJson,
  TRAIN_ADAPTER_DIR,
} from './record';
import { HostError, type HostConfig, type Transport, transportFor } from './transport';

/**
 * Remote jobs: any command runs in its own folder `<workdir>/<job-id>/` on a
 * host, detached from the connection that started it (setsid + nohup over SSH, sbatch on SLURM),
 * with `pid`, `exit_code` and `job.log` there. The local record `jobs/<id>/job.json` holds all a
 * later process needs to reattach, so a job outlives the window, the CLI and the laptop lid.
 */

export { FINAL_STATES, JOB_STATES, JobMeta, JobRecord, JobStatus, type JobState, TRAIN_ADAPTER_DIR } from './record';

export const JOBS_DIR = 'jobs';
const JOB_LOG = 'job.log';

export function jobDir(workspace: string, id: string): string {
  if (!JobId.safeParse(id).success) throw new Error(`invalid job id ${JSON.stringify(id)}: ${JOB_ID_RULE}`);
  return path.join(workspace, JOBS_DIR, id);
}

const JOB_ID_RULE = 'letters, digits, ".", "_" and "-", not starting with "." or "-"';

/**
 * Refuses, trusted workspace or not, a host whose values would reach ssh, sbatch or the shell as
 * something else than a name or a path (an `ssh` starting with "-" is an ssh option; a newline in a
 * workdir is a second command). `source` names where the host came from, for the message.
 */
export function assertSafeHost(hostName: string, host: HostConfig, source: string): void {
  const problems: string[] = [];
  const name = HostName.safeParse(hostName);
  if (!name.success) problems.push(`host name ${JSON.stringify(hostName)}: ${name.error.issues[0]?.message}`);
  const parsed = Host.safeParse(host);
  if (!parsed.success)
    for (const i of parsed.error.issues)
      problems.push(`${formatFieldPath(['hosts', hostName, ...i.path])}: ${i.message}`);
  if (problems.length) throw new HostError(`${source}: ${problems.join('; ')}; nothing was run`);
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

export interface SubmitOptions {
  workspace: string;
  hostName: string;
  host: HostConfig;
  command: string[];
  name?: string;
  uploads?: string[];
  progressFile?: string;
  meta?: JobMetaInput;
  signal?: AbortSignal;
  /** Called with a line of progress ("uploading …") for the CLI and the extension. */
  onProgress?: (message: string) => void;
  /**
   * Runs after the uploads, before the job starts (e.g. `python -m drag_trainer env` over SSH); when
   * it throws, the job is recorded as failed with its message and never started.
   */
  preflight?: (transport: Transport, remoteDir: string) => Promise<void>;
  /**
   * An environment check run inside the job, first, on the node that runs it (after the setup lines);
   * its stdout goes to env_check.json. When it fails the job ends at once and its status says
   * "environment check failed on node N: …". For SLURM, where the login node that submits has no GPU.
   */
  check?: string[];
  /**
   * SLURM only: `--requeue --signal=B:USR1@120`; the wrapper passes SIGUSR1 on to the command (the
   * trainer writes a checkpoint and exits) and requeues the job, whose command must then resume.
   */
  requeueOnTimeLimit?: boolean;
}

/** How the wrapper runs a job's command, beside the command itself. */
export interface WrapperOptions {
  env?: Readonly<Record<string, string>>;
  /** The host's setup lines, run in the job's shell before anything else. */
  setup?: readonly string[];
  /** See SubmitOptions.check. */
  check?: readonly string[];
  /** See SubmitOptions.requeueOnTimeLimit. */
  requeueOnUsr1?: boolean;
}

/** Exit code of a job whose setup line or environment check failed (its reason is in check_failed). */
export const CHECK_FAILED_EXIT = 3;
/** The wrapper's files that describe one run; a rerun in the same folder removes them first. */
const RUN_FILES = ['exit_code', 'finished_at', 'check_failed', 'env_check.json', 'env_check.err', 'requeue_requested'];
const STAMP = 'date -u +%Y-%m-%dT%H:%M:%SZ';

/**
 * The wrapper each job runs: records pid, start, exit code and end beside the job's log; runs the
 * host's setup lines and the environment check first, and ends the job at once when one fails,
 * with the node's name and the failure in `check_failed` for the status to read.
 */
export function wrapperScript(remoteDir: string, command: readonly string[], options: WrapperOptions = {}): string {
  const run = `${shJoin(command)} >> ${JOB_LOG} 2>&1 < /dev/null`;
  const check = options.check?.length
    ? `${shJoin(options.check)} > env_check.json 2> env_check.err < /dev/null || fail_check check\n`
    : '';
  const body = options.requeueOnUsr1
    ? // SLURM sends USR1 to this shell (B:), which waits in the background so that the trap runs at once.
      // It goes to the trainer: under torchrun to its worker processes only (torchrun itself would die of
      // it); under srun (several nodes) no signal reaches the ranks, so the trainer also watches the file
      // DRAG_STOP_FILE names (requeue_requested here) and checkpoints and stops when it appears.
      `export DRAG_STOP_FILE="$PWD/requeue_requested"
on_usr1() {
  touch requeue_requested
  case "$(ps -o args= -p "$child" 2>/dev/null)" in
    srun*) ;;
    *torch.distributed.run*|*torchrun*) pkill -USR1 -P "$child" 2>/dev/null ;;
    *) kill -USR1 "$child" 2>/dev/null ;;
  esac
}
trap on_usr1 USR1
${run} &
child=$!
wait "$child"; code=$?
# The trap interrupts wait (status > 128) whether or not the command has ended: wait again for its own
# status (127 once bash has already reported it).
while [ "$code" -gt 128 ] && [ -e requeue_requested ]; do wait "$child"; c=$?; [ "$c" -eq 127 ] && break; code=$c; done
if [ -e requeue_requested ] && [ ! -e cancelled ] && [ -n "\${SLURM_JOB_ID:-}" ]; then
  echo "DRAG Studio: time limit near, requeueing SLURM job $SLURM_JOB_ID to resume from the checkpoint"
  scontrol requeue "$SLURM_JOB_ID" && exit 0
fi
finish "$code"
`
    : `${run}\nfinish $?\n`;
  const setupScript = setupLines(
    options.setup ?? [],
    (i, line) => `fail_check ${shQuote(`setup line ${i + 1} failed: ${line}`)}`,
  );
  return `#!/usr/bin/env bash
# DRAG Studio job wrapper: runs the command below in this folder, detached from any terminal.
cd ${shQuote(remoteDir)} || exit 97
echo $$ > pid
[ -e cancelled ] && exit 130
# A rerun in this folder (drag train --resume, a SLURM requeue) starts from a clean slate.
rm -f ${RUN_FILES.join(' ')}
${STAMP} > started_at
exec >> ${JOB_LOG} 2>&1 < /dev/null
node=$(hostname -s 2>/dev/null || hostname)
finish() { echo "$1" > exit_code.tmp && mv -f exit_code.tmp exit_code; ${STAMP} > finished_at; exit "$1"; }
fail_check() { printf '%s\\n%s\\n' "$node" "$1" > check_failed; finish ${CHECK_FAILED_EXIT}; }
${shExports(options.env ?? {})}${setupScript}${check}${body}`;
}

/** sbatch options from the host's `slurm` settings. */
export function sbatchArgs(
  host: HostConfig,
  name: string,
  remoteDir: string,
  options: { requeueOnTimeLimit?: boolean } = {},
): string[] {
  const s = host.slurm ?? {};
  return [
    'sbatch',
    '--parsable',
    `--job-name=${name}`,
    `--chdir=${remoteDir}`,
    `--output=${remoteDir}/slurm.out`,
    ...(s.partition ? [`--partition=${s.partition}`] : []),
    // One task per node: torchrun, started by srun on each node, starts the per-GPU processes.
    ...(s.nodes && s.nodes > 1 ? [`--nodes=${s.nodes}`, '--ntasks-per-node=1'] : []),
    ...(s.gpus ? [`--gres=gpu:${s.gpus}`] : []),
    ...(s.cpus ? [`--cpus-per-task=${s.cpus}`] : []),
    ...(s.mem ? [`--mem=${s.mem}`] : []),
    ...(s.time ? [`--time=${s.time}`] : []),
    ...(s.account ? [`--account=${s.account}`] : []),
    // B: signals the batch shell (the wrapper), which passes it on to the trainer.
    ...(options.requeueOnTimeLimit ? ['--requeue', '--signal=B:USR1@120'] : []),
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
  const record = parseJobJson(text, file, id);
  assertSafeHost(record.host, record.hostConfig, `${file}: hostConfig`);
  return record;
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

/** A status the client decided without asking the host (a job refused before it started). */
function localStatus(record: JobRecord, state: JobState, reason: string): JobStatus {
  const now = new Date().toISOString();
  return {
    id: record.id,
    state,
    exitCode: null,
    progress: null,
    host: record.host,
    launcher: record.hostConfig.launcher ?? 'ssh',
    remoteDir: record.remoteDir,
    submittedAt: record.submittedAt,
    startedAt: null,
    finishedAt: now,
    slurmJobId: null,
    reason,
    checkedAt: now,
  };
}

/** Submits a command as a job; returns its record once the host has accepted it. */
export async function submitJob(options: SubmitOptions): Promise<JobRecord> {
  const { host, workspace, signal } = options;
  assertSafeHost(options.hostName, host, path.join(workspace, 'drag.config.json'));
  const transport = transportFor(host);
  const name = options.name ?? path.basename(options.command[0] ?? 'job');
  const id = newJobId(name);
  const say = options.onProgress ?? (() => undefined);
  for (const u of options.uploads ?? [])
    await fsp.access(u).catch(() => {
      throw new Error(`--upload ${u}: no such file or folder`);
    });

  say(`preparing ${transport.label}:${host.workdir}/${id}`);
  const jobDir = `${shRemotePath(host.workdir)}/${shQuote(id)}`;
  const prep = await transport.run(`set -e\nmkdir -p ${jobDir}\ncd ${jobDir}\npwd -P\n`, { signal });
  if (prep.code !== 0)
    throw new HostError(`${transport.label}: cannot create the job folder in ${host.workdir}: ${prep.stderr.trim()}`);
  const remoteDir = prep.stdout.trim().split('\n').pop() ?? '';
  if (!remoteDir.startsWith('/'))
    throw new HostError(`${transport.label}: unexpected answer for the job folder: ${JSON.stringify(prep.stdout)}`);

  const record: JobRecord = {
    version: 2,
    id,
    name,
    host: options.hostName,
    hostConfig: host,
    remoteDir,
    command: options.command,
    uploads: (options.uploads ?? []).map((u) => path.resolve(u)),
    submittedAt: new Date().toISOString(),
    ...(options.progressFile ? { progressFile: options.progressFile } : {}),
    meta: JobMeta.parse(options.meta ?? { kind: 'command' }),
  };
  // The record exists before anything starts, so a job is never running without one.
  await writeJob(workspace, record);

  for (const u of record.uploads) {
    say(`uploading ${u}`);
    await transport.upload(u, remoteDir, signal);
  }
  return startJob(workspace, record, transport, options);
}

/** Runs the preflight, writes run.sh and starts it (detached, or with sbatch); records the result. */
async function startJob(
  workspace: string,
  record: JobRecord,
  transport: Transport,
  options: Pick<SubmitOptions, 'preflight' | 'check' | 'requeueOnTimeLimit' | 'signal' | 'onProgress'>,
): Promise<JobRecord> {
  const { signal } = options;
  const host = record.hostConfig;
  const { id, remoteDir } = record;
  if (options.preflight) {
    try {
      await options.preflight(transport, remoteDir);
    } catch (err) {
      await writeJob(workspace, {
        ...record,
        last: localStatus(record, 'failed', `not started: ${(err as Error).message}`),
      });
      throw err;
    }
  }

  const slurm = (host.launcher ?? 'ssh') === 'slurm';
  const wrapper = wrapperScript(remoteDir, record.command, {
    env: host.env ?? {},
    setup: host.setup ?? [],
    ...(options.check ? { check: options.check } : {}),
    requeueOnUsr1: slurm && options.requeueOnTimeLimit === true,
  });
  const dir = shQuote(remoteDir);
  const write = `cd ${dir}\nprintf '%s' ${shQuote(wrapper)} > run.sh\nchmod +x run.sh\n: >> ${JOB_LOG}\n`;
  const started: JobRecord = { ...record };
  delete started.slurmJobId;
  if (slurm) {
    const sbatch = sbatchArgs(host, slug(record.name), remoteDir, { requeueOnTimeLimit: options.requeueOnTimeLimit });
    const res = await transport.run(`set -e\n${write}${shJoin(sbatch)}\n`, { signal });
    if (res.code !== 0)
      throw new HostError(`sbatch on ${transport.label} failed: ${res.stderr.trim() || res.stdout.trim()}`);
    const jobId = res.stdout.trim().split('\n').pop()?.split(';')[0] ?? '';
    if (!/^\d+$/.test(jobId)) throw new HostError(`sbatch on ${transport.label} gave no job id: ${res.stdout.trim()}`);
    started.slurmJobId = jobId;
    await transport.run(`echo ${jobId} > ${dir}/slurm_job_id\n`, { signal });
  } else {
    const res = await transport.run(
      `set -e\n${write}setsid nohup bash ./run.sh > /dev/null 2>&1 < /dev/null &\necho started\n`,
      { signal },
    );
    if (res.code !== 0 || !res.stdout.includes('started'))
      throw new HostError(`starting the job on ${transport.label} failed: ${res.stderr.trim()}`);
  }
  await writeJob(workspace, started);
  options.onProgress?.(`submitted ${id}${started.slurmJobId ? ` (SLURM job ${started.slurmJobId})` : ''}`);
  return started;
}

/**
 * Runs a failed or cancelled job again in its own folder (its files, checkpoints included, stay):
 * the earlier run is kept in `previousRuns`, the new command and host settings replace the old.
 */
export async function rerunJob(
  workspace: string,
  id: string,
  options: Pick<SubmitOptions, 'preflight' | 'check' | 'requeueOnTimeLimit' | 'signal' | 'onProgress'> & {
    command: string[];
    host?: HostConfig;
  },
): Promise<JobRecord> {
  const status = await jobStatus(workspace, id, options.signal);
  if (status.state !== 'failed' && status.state !== 'cancelled')
    throw new Error(`job ${id} is ${status.state}: only a failed or cancelled job can be resumed`);
  const old = await readJob(workspace, id);
  const host = options.host ?? old.hostConfig;
  assertSafeHost(old.host, host, path.join(workspace, 'drag.config.json'));
  const transport = transportFor(host);
  const clear = await transport.run(
    `cd ${shQuote(old.remoteDir)} || exit 3\nrm -f cancelled pid started_at ${RUN_FILES.join(' ')}\n`,
    { signal: options.signal },
  );
  if (clear.code !== 0)
    throw new HostError(`${transport.label}: the folder of job ${id} (${old.remoteDir}) is gone: it cannot be resumed`);
  const record: JobRecord = {
    ...old,
    hostConfig: host,
    command: options.command,
    submittedAt: new Date().toISOString(),
    previousRuns: [
      ...(old.previousRuns ?? []),
      {
        submittedAt: old.submittedAt,
        ...(old.slurmJobId ? { slurmJobId: old.slurmJobId } : {}),
        command: old.command,
        state: status.state,
        reason: status.reason,
      },
    ],
  };
  delete record.last;
  await writeJob(workspace, record);
  return startJob(workspace, record, transport, options);
}

/** Shell function: is process group $1 alive? Zombies (this host's init may not reap them) are not. */
const ALIVE_FN =
  'alive() { if command -v ps >/dev/null 2>&1; then ' +
  `ps -eo pgid=,stat= | awk -v g="$1" '$1==g && $2 !~ /^Z/ {f=1} END {exit !f}'; ` +
  'else kill -0 -- -"$1" 2>/dev/null; fi; }';

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
    ? `s=$(squeue -h -j ${record.slurmJobId} -o %T 2>/dev/null || true)\necho "slurm_state=$s"\n` +
      `if [ -z "$s" ]; then echo "slurm_final=$(scontrol show job ${record.slurmJobId} -o 2>/dev/null | ` +
      `sed -n 's/.*JobState=\\([A-Z_]*\\).*/\\1/p')"; fi\n`
    : '';
  return `cd ${shQuote(record.remoteDir)} 2>/dev/null || { echo missing=1; exit 0; }
${ALIVE_FN}
if [ -s pid ]; then echo has_pid=1; alive "$(cat pid)" && echo alive=1; fi
${slurm}[ -f exit_code ] && echo "exit_code=$(cat exit_code)"
[ -e cancelled ] && echo cancelled=1
if [ -f check_failed ]; then
  echo "check_node=$(head -n 1 check_failed)"
  echo "check_what=$(sed -n 2p check_failed)"
  [ -f env_check.json ] && echo "check_report=$(tail -n 1 env_check.json)"
  [ -f env_check.err ] && echo "check_err=$(tail -n 5 env_check.err | tr '\n' ' ')"
fi
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
  now: number,
): { state: JobState; exitCode: number | null; reason: string | null } {
  if (kv.has('missing')) return { state: 'failed', exitCode: null, reason: 'the job folder is gone from the host' };
  const exitText = kv.get('exit_code');
  const exitCode = exitText !== undefined && /^-?\d+$/.test(exitText.trim()) ? Number(exitText.trim()) : null;
  const cancelled = kv.has('cancelled');
  const alive = kv.has('alive');
  const slurmState = kv.get('slurm_state')?.trim() ?? '';
  const checkNode = kv.get('check_node')?.trim();
  if (checkNode !== undefined && exitCode !== null) {
    const what = kv.get('check_what')?.trim() ?? '';
    const words = what === 'check' ? envCheckReason(kv.get('check_report'), kv.get('check_err')) : what;
    return { state: 'failed', exitCode, reason: `environment check failed on node ${checkNode || '?'}: ${words}` };
  }
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
  const { state, exitCode, reason } = decideState(record, kv, Date.now());
  const status: JobStatus = {
    id,
    state,
    exitCode,
    progress: parseProgress(kv.get('progress')),
    host: record.host,
    launcher: record.hostConfig.launcher ?? 'ssh',
    remoteDir: record.remoteDir,
    submittedAt: record.submittedAt,
    startedAt: kv.get('started_at')?.trim() || null,
    finishedAt: kv.get('finished_at')?.trim() || null,
    slurmJobId: record.slurmJobId ?? null,
    reason,
    checkedAt: new Date().toISOString(),
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
export async function updateJobMeta(workspace: string, id: string, facts: JobFacts): Promise<JobRecord> {
  const record = await readJob(workspace, id);
  const next: JobRecord = { ...record, meta: { ...record.meta, ...facts } };
  await writeJob(workspace, next);
  return next;
}

/** Fetches a training job's adapter (meta.adapter, default out/final) into jobs/<id>/adapter/. */
export async function fetchAdapter(workspace: string, id: string, signal?: AbortSignal): Promise<string> {
  const record = await readJob(workspace, id);
  const remote = record.meta.kind === 'train' ? record.meta.adapter : TRAIN_ADAPTER_DIR;
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
