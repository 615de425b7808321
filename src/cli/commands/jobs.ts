import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { formatLineError } from '../../core/io/errors';
import {
  cancelJob,
  cleanJob,
  fetchFromJob,
  FINAL_STATES,
  type JobStatus,
  jobStatus,
  listJobs,
  logReadScript,
  probeJob,
  readJobLog,
  submitJob,
  takeLogChunk,
} from '../../core/jobs/engine';
import type { HostConfig } from '../../core/jobs/transport';
import { findWorkspaceRoot } from '../../core/workspace/cli';
import { loadConfig } from '../../core/workspace/layout';
import { type CliCommand, type CliIO, UsageError } from '../args';

/**
 * The workspace the job commands work in: `--workspace DIR`, else the nearest folder with a
 * drag.config.json from the current directory up (as the other commands find it), else the current
 * directory.
 */
export function workspaceOf(value: string | undefined): string {
  return path.resolve(value ?? findWorkspaceRoot(process.cwd()) ?? process.cwd());
}

/** A host from the workspace's drag.config.json, with a message that lists the ones there are. */
export async function resolveHost(
  workspace: string,
  name: string | undefined,
): Promise<{ name: string; host: HostConfig }> {
  const loaded = await loadConfig(workspace);
  if (loaded.errors.length) throw new Error(loaded.errors.map(formatLineError).join('\n'));
  const hosts = loaded.config.hosts ?? {};
  const names = Object.keys(hosts);
  if (!name) {
    if (names.length === 1) return { name: names[0]!, host: hosts[names[0]!]! };
    throw new UsageError(
      names.length
        ? `--host is required (configured: ${names.join(', ')})`
        : `--host is required, and ${path.join(workspace, 'drag.config.json')} has no "hosts"`,
    );
  }
  const host = hosts[name];
  if (!host)
    throw new UsageError(
      `no host "${name}" in ${path.join(workspace, 'drag.config.json')} (configured: ${names.join(', ') || 'none'})`,
    );
  return { name, host };
}

function describe(s: JobStatus): string {
  const p = s.progress;
  const progress =
    p && typeof p.current_steps === 'number'
      ? ` step ${p.current_steps}/${String(p.total_steps ?? '?')}` +
        `${typeof p.loss === 'number' ? ` loss ${p.loss.toFixed(4)}` : ''}` +
        `${typeof p.remaining_time === 'string' ? ` eta ${p.remaining_time}` : ''}`
      : '';
  const exit = s.exitCode !== null ? ` (exit ${s.exitCode})` : '';
  const reason = s.reason && s.state !== 'succeeded' ? ` - ${s.reason}` : '';
  return `${s.id}  ${s.state}${exit}${reason}${progress}  [${s.launcher} ${s.host}]`;
}

const sleep = (ms: number, signal: AbortSignal) => delay(ms, undefined, { signal }).catch(() => undefined);

/** Prints a job's log, and with `follow` keeps printing until the job ends; returns the final status. */
export async function followLog(
  workspace: string,
  id: string,
  io: CliIO,
  signal: AbortSignal,
  follow: boolean,
  intervalMs = 1000,
): Promise<JobStatus | null> {
  let offset = 0;
  for (;;) {
    // Following: the status and the next lines come in one round trip.
    const probe = follow ? await probeJob(workspace, id, { extra: () => logReadScript(offset), signal }) : null;
    const status = probe?.status ?? null;
    const done = !follow || (status !== null && FINAL_STATES.has(status.state));
    // After the job ends, read everything, the last partial line included.
    let chunk = probe
      ? takeLogChunk(probe.extra, offset, done)
      : await readJobLog(workspace, id, offset, { final: done, signal });
    while (chunk.offset !== offset) {
      if (chunk.text) io.stdout(chunk.text);
      offset = chunk.offset;
      chunk = await readJobLog(workspace, id, offset, { final: done, signal });
    }
    if (done || signal.aborted) return status;
    await sleep(intervalMs, signal);
  }
}

const USAGE = `drag jobs submit --host H [--name N] [--upload PATH ...] [--progress-file F] [--json] -- <command ...>
drag jobs status <id> [--json]
drag jobs logs <id> [--follow]
drag jobs cancel <id> [--json]
drag jobs fetch <id> <remote path> <local dir>
drag jobs ls [--refresh] [--json]
drag jobs clean <id>            delete a finished job's folder on the host (the local record stays)

Every subcommand takes --workspace DIR (default: the nearest folder with a drag.config.json from the
current directory up, else the current directory), whose drag.config.json names the hosts:
{"hosts": {"gpu": {"ssh": "gpu-box", "workdir": "~/drag-jobs", "launcher": "ssh",
"setup": ["source ~/venvs/drag/bin/activate"]}}} (setup lines run in the job's shell before the command)
launcher "ssh" starts the job detached (setsid + nohup), "slurm" submits it with sbatch, "local"
runs it on this machine. The job runs in <workdir>/<job-id>/ (its cwd, where --upload copies go);
its record is jobs/<job-id>/job.json, so any later process can reattach. Exit codes: status exits
1 for a failed job; logs --follow exits with the job's exit code.`;

export const jobsCommand: CliCommand = {
  name: 'jobs',
  summary: 'run, watch, cancel and collect jobs on SSH hosts and SLURM clusters',
  usage: USAGE,
  async run(argv, io, signal) {
    const [sub, ...rest] = argv;
    const dash = rest.indexOf('--');
    const optionArgs = dash >= 0 ? rest.slice(0, dash) : rest;
    const command = dash >= 0 ? rest.slice(dash + 1) : [];
    const { values, positionals } = parseArgs({
      args: optionArgs,
      allowPositionals: true,
      options: {
        workspace: { type: 'string' },
        host: { type: 'string' },
        name: { type: 'string' },
        upload: { type: 'string', multiple: true },
        'progress-file': { type: 'string' },
        json: { type: 'boolean', default: false },
        follow: { type: 'boolean', short: 'f', default: false },
        refresh: { type: 'boolean', default: false },
      },
    });
    const workspace = workspaceOf(values.workspace);
    const needId = () => {
      const id = positionals[0];
      if (!id) throw new UsageError(`drag jobs ${sub} needs a job id (see "drag jobs ls")`);
      return id;
    };
    switch (sub) {
      case 'submit': {
        if (command.length === 0)
          throw new UsageError('give the command after "--", e.g. drag jobs submit --host gpu -- python train.py');
        const { name, host } = await resolveHost(workspace, values.host);
        const record = await submitJob({
          workspace,
          hostName: name,
          host,
          command,
          name: values.name,
          uploads: values.upload,
          progressFile: values['progress-file'],
          signal,
          onProgress: (m) => {
            if (!values.json) io.stderr(`${m}\n`);
          },
        });
        const submitted = {
          id: record.id,
          host: record.host,
          remoteDir: record.remoteDir,
          slurmJobId: record.slurmJobId ?? null,
        };
        io.stdout(values.json ? `${JSON.stringify(submitted)}\n` : `${record.id}\n`);
        return 0;
      }
      case 'status': {
        const s = await jobStatus(workspace, needId(), signal);
        io.stdout(values.json ? `${JSON.stringify(s)}\n` : `${describe(s)}\n`);
        return s.state === 'failed' ? 1 : 0;
      }
      case 'logs': {
        const s = await followLog(workspace, needId(), io, signal, values.follow);
        if (!s) return 0;
        if (s.state === 'cancelled') return 130;
        return s.exitCode ?? (s.state === 'failed' ? 1 : 0);
      }
      case 'cancel': {
        const s = await cancelJob(workspace, needId(), signal);
        io.stdout(values.json ? `${JSON.stringify(s)}\n` : `${describe(s)}\n`);
        return 0;
      }
      case 'fetch': {
        const [id, remote, local] = positionals;
        if (!id || !remote || !local) throw new UsageError('drag jobs fetch <id> <remote path> <local dir>');
        const to = await fetchFromJob(workspace, id, remote, path.resolve(local), signal);
        io.stdout(`${to}\n`);
        return 0;
      }
      case 'clean': {
        const id = needId();
        const record = await cleanJob(workspace, id, signal);
        io.stdout(`deleted ${record.host}:${record.remoteDir}\n`);
        return 0;
      }
      case 'ls': {
        const { jobs, errors } = await listJobs(workspace);
        for (const e of errors) io.stderr(`${e}\n`);
        const rows: JobStatus[] = [];
        for (const j of jobs) {
          if (values.refresh || !j.last) {
            try {
              rows.push(await jobStatus(workspace, j.id, signal));
              continue;
            } catch (err) {
              io.stderr(`${j.id}: ${(err as Error).message}\n`);
            }
          }
          if (j.last) rows.push(j.last);
        }
        if (values.json) io.stdout(`${JSON.stringify(rows)}\n`);
        else if (rows.length === 0) io.stdout(`no jobs in ${path.join(workspace, 'jobs')}\n`);
        else for (const r of rows) io.stdout(`${describe(r)}\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown subcommand "${sub ?? ''}": submit, status, logs, cancel, fetch, clean or ls`);
    }
  },
};
