import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import * as path from 'node:path';
import { cancelJob, FINAL_STATES, jobStatus, type JobRecord, readJob, readJobLog, submitJob } from './engine';
import { shQuote } from './quote';
import { HostError, SshTransport, transportFor } from './transport';

/**
 * "Evaluate this adapter": vLLM serves the base model with a training job's LoRA adapter on the
 * same host, as a job of its own; its port is forwarded over SSH (to the compute node on SLURM);
 * the caller evaluates against the forwarded URL and then stops both.
 */

export interface AdapterServer {
  job: JobRecord;
  /** OpenAI-compatible base URL on this machine, e.g. http://127.0.0.1:41234/v1 */
  baseUrl: string;
  /** The model name to request: the LoRA module's name. */
  model: string;
  baseModel: string;
  stop(): Promise<void>;
}

export interface AdapterServerOptions {
  workspace: string;
  /** The training job whose adapter is served. */
  trainJobId: string;
  baseModel?: string;
  loraName?: string;
  /** Port of vLLM on the host. */
  port?: number;
  /** The vLLM command on the host (default "vllm"), e.g. "/opt/venv/bin/vllm". */
  vllm?: string;
  /** Extra vLLM options, e.g. ["--max-model-len", "16384"]. */
  vllmArgs?: string[];
  readyTimeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: (message: string) => void;
}

export function freeLocalPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Waits, or rejects at once when cancelled (node's timer removes its abort listener itself). */
const sleep = (ms: number, signal?: AbortSignal) => delay(ms, undefined, { signal });

/** The vLLM command line that serves `baseModel` with one LoRA module. */
export function vllmCommand(
  vllm: string,
  baseModel: string,
  loraName: string,
  adapterPath: string,
  port: number,
  extra: readonly string[] = [],
  maxLoraRank = 64,
  bindHost = '127.0.0.1',
): string[] {
  return [
    vllm,
    'serve',
    baseModel,
    '--host',
    bindHost,
    '--port',
    String(port),
    '--enable-auto-tool-choice',
    '--tool-call-parser',
    'hermes',
    '--enable-lora',
    '--lora-modules',
    `${loraName}=${adapterPath}`,
    '--max-lora-rank',
    String(maxLoraRank),
    ...extra,
  ];
}

async function modelsAt(baseUrl: string): Promise<string[] | null> {
  try {
    const res = await fetch(`${baseUrl}/models`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) return null;
    const body = (await res.json()) as { data?: Array<{ id?: string }> };
    return (body.data ?? []).map((m) => String(m.id));
  } catch {
    return null;
  }
}

export async function startAdapterServer(options: AdapterServerOptions): Promise<AdapterServer> {
  const { workspace, signal } = options;
  const say = options.onProgress ?? (() => undefined);
  const train = await readJob(workspace, options.trainJobId);
  const trained = await jobStatus(workspace, train.id, signal);
  if (trained.state !== 'succeeded')
    throw new Error(`job ${train.id} is ${trained.state}: only a finished training job has an adapter to serve`);
  const baseModel = options.baseModel ?? (typeof train.meta?.model === 'string' ? train.meta.model : undefined);
  if (!baseModel) throw new Error(`job ${train.id} does not say which base model it trained: pass --base-model`);
  const adapterRel = typeof train.meta?.adapter === 'string' ? train.meta.adapter : 'out/final';
  const adapterPath = path.posix.isAbsolute(adapterRel) ? adapterRel : path.posix.join(train.remoteDir, adapterRel);
  const loraName = options.loraName ?? `drag-${train.id}`;
  const port = options.port ?? 8001;
  const host = train.hostConfig;
  const loraRank = train.meta?.loraRank;
  const rank = typeof loraRank === 'number' ? Math.max(16, loraRank) : 64;

  say(`starting vLLM on ${train.host}: ${baseModel} + ${loraName}`);
  const job = await submitJob({
    workspace,
    hostName: train.host,
    host,
    name: `vllm-${train.name}`,
    signal,
    command: vllmCommand(
      options.vllm ?? host.vllm ?? 'vllm',
      baseModel,
      loraName,
      adapterPath,
      port,
      options.vllmArgs ?? [],
      rank,
      // On SLURM the server runs on a compute node and the login node forwards to it: listen there.
      host.launcher === 'slurm' ? '0.0.0.0' : '127.0.0.1',
    ),
    meta: { kind: 'serve', trainJob: train.id, model: baseModel, lora: loraName, port },
  });
  let forward: ChildProcess | null = null;
  const stop = async () => {
    forward?.kill('SIGTERM');
    forward = null;
    try {
      await cancelJob(workspace, job.id);
    } catch {
      // already gone
    }
  };
  try {
    // Where vLLM listens, seen from the SSH host: itself, or the compute node on SLURM.
    let target = '127.0.0.1';
    const deadline = Date.now() + (options.readyTimeoutMs ?? 15 * 60_000);
    let baseUrl = '';
    for (;;) {
      const s = await jobStatus(workspace, job.id, signal);
      if (FINAL_STATES.has(s.state)) {
        const log = await readJobLog(workspace, job.id, 0, { final: true }).catch(() => ({ text: '' }));
        throw new HostError(
          `vLLM stopped before it was ready (${s.reason ?? s.state}): ${log.text.trim().split('\n').slice(-5).join(' | ')}`,
        );
      }
      if (s.state === 'running' && !baseUrl) {
        if (job.slurmJobId) {
          const node = await transportFor(host).run(`squeue -h -j ${shQuote(job.slurmJobId)} -o %N\n`, { signal });
          target = node.stdout.trim() || target;
        }
        if (host.ssh) {
          const localPort = await freeLocalPort();
          const ssh = new SshTransport(host.ssh, host.port);
          // Its own connection (not a shared master, where the forward would outlive this process).
          forward = spawn(
            'ssh',
            [
              ...ssh.sshCommand().slice(1),
              '-o',
              'ControlPath=none',
              '-N',
              '-o',
              'ExitOnForwardFailure=yes',
              '-L',
              `127.0.0.1:${localPort}:${target}:${port}`,
              '--',
              host.ssh,
            ],
            { stdio: 'ignore' },
          );
          baseUrl = `http://127.0.0.1:${localPort}/v1`;
          say(`forwarding ${baseUrl} -> ${host.ssh}:${target}:${port}`);
        } else baseUrl = `http://${target}:${port}/v1`;
      }
      if (baseUrl) {
        const models = await modelsAt(baseUrl);
        if (models?.includes(loraName)) {
          say(`vLLM ready: ${models.join(', ')}`);
          return { job, baseUrl, model: loraName, baseModel, stop };
        }
        if (forward && forward.exitCode !== null)
          throw new HostError(
            `the SSH port forward to ${host.ssh} exited (${forward.exitCode}): is port ${port} free on the host?`,
          );
      }
      if (Date.now() > deadline)
        throw new HostError(
          `vLLM on ${train.host} was not ready within ${Math.round((options.readyTimeoutMs ?? 900_000) / 1000)} s (drag jobs logs ${job.id})`,
        );
      await sleep(1000, signal);
    }
  } catch (err) {
    await stop();
    throw err;
  }
}
