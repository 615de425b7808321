import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import * as path from 'node:path';
import { ModelName } from '../schema/config';
import {
  cancelJob,
  FINAL_STATES,
  jobStatus,
  type JobRecord,
  type JobStatus,
  readJob,
  readJobLog,
  submitJob,
  TRAIN_ADAPTER_DIR,
} from './engine';
import { shQuote } from './quote';
import { HostError, SshTransport, type Transport, transportFor } from './transport';

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
  /** Extra vLLM options, e.g. ["--max-model-len", "16384"]; `--max-model-len` replaces the default. */
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

/**
 * The ranks vLLM accepts for `--max-lora-rank` (vLLM's LoRA config allows only these values; its
 * server refuses to start with another one).
 */
export const VLLM_LORA_RANKS = [1, 8, 16, 32, 64, 128, 256, 320, 512] as const;

/** The smallest rank vLLM accepts that fits an adapter of rank `rank` (an adapter above the maximum is refused). */
export function vllmMaxLoraRank(rank: number): number {
  const fit = VLLM_LORA_RANKS.find((r) => r >= rank);
  if (fit === undefined)
    throw new Error(
      `the adapter's LoRA rank ${rank} is above ${VLLM_LORA_RANKS.at(-1)}, the most vLLM serves: merge it`,
    );
  return fit;
}

/**
 * The context length eval-adapter asks vLLM for unless `--vllm-arg --max-model-len N` says otherwise:
 * without it Qwen3-VL reserves its full 262,144-token context in KV cache and does not start on a
 * 40-48 GB GPU; 32,768 holds a multi-turn search with its page images and a Thinking model's answer.
 */
export const DEFAULT_MAX_MODEL_LEN = 32768;

/** What eval-adapter needs from an adapter's adapter_config.json (PEFT's LoraConfig as saved). */
export interface AdapterFacts {
  /** The largest rank in the adapter: `r`, or a larger one from `rank_pattern`. */
  rank: number;
  /** Modules saved whole beside the LoRA weights (vLLM refuses such adapters as LoRA modules). */
  modulesToSave: string[];
}

/** Reads rank and modules_to_save from adapter_config.json text; names the file and field when it cannot. */
export function parseAdapterConfig(text: string, file: string): AdapterFacts {
  let config: { r?: unknown; rank_pattern?: unknown; modules_to_save?: unknown };
  try {
    config = JSON.parse(text) as typeof config;
  } catch (err) {
    throw new Error(`${file}: invalid JSON: ${(err as Error).message}`);
  }
  // PEFT writes every LoraConfig field; one without `r` has PEFT's default rank, 8.
  const r = config.r === undefined ? 8 : config.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1)
    throw new Error(`${file}: r: expected the LoRA rank (a positive whole number), got ${JSON.stringify(r)}`);
  const pattern =
    config.rank_pattern && typeof config.rank_pattern === 'object'
      ? Object.values(config.rank_pattern as Record<string, unknown>).filter((v): v is number => typeof v === 'number')
      : [];
  const modules = Array.isArray(config.modules_to_save)
    ? config.modules_to_save.filter((m): m is string => typeof m === 'string')
    : [];
  return { rank: Math.max(r, ...pattern), modulesToSave: modules };
}

/** Reads the adapter's facts from its adapter_config.json on the host. */
export async function adapterFacts(
  transport: Transport,
  adapterPath: string,
  signal?: AbortSignal,
): Promise<AdapterFacts> {
  const file = `${adapterPath}/adapter_config.json`;
  const res = await transport.run(`cat -- ${shQuote(file)}\n`, { signal });
  if (res.code !== 0)
    throw new HostError(`${transport.label}: no adapter at ${file}: ${res.stderr.trim() || `exit code ${res.code}`}`);
  return parseAdapterConfig(res.stdout, `${transport.label}:${file}`);
}

/** Whether `--max-model-len` is among vLLM options (`--max-model-len N` or `--max-model-len=N`). */
function hasOption(args: readonly string[], name: string): boolean {
  return args.some((a) => a === name || a.startsWith(`${name}=`));
}

/** What vLLM serves: the base model with one LoRA module, or a merged model under the module's name. */
export type ServedModel =
  | { kind: 'lora'; baseModel: string; loraName: string; adapterPath: string; maxLoraRank: number }
  | { kind: 'merged'; modelPath: string; name: string };

/** The vLLM command line that serves a model (see ServedModel). */
export function vllmCommand(
  vllm: string,
  served: ServedModel,
  port: number,
  extra: readonly string[] = [],
  bindHost = '127.0.0.1',
): string[] {
  return [
    vllm,
    'serve',
    served.kind === 'lora' ? served.baseModel : served.modelPath,
    '--host',
    bindHost,
    '--port',
    String(port),
    '--enable-auto-tool-choice',
    '--tool-call-parser',
    'hermes',
    ...(served.kind === 'lora'
      ? [
          '--enable-lora',
          '--lora-modules',
          `${served.loraName}=${served.adapterPath}`,
          '--max-lora-rank',
          String(served.maxLoraRank),
        ]
      : ['--served-model-name', served.name]),
    ...(hasOption(extra, '--max-model-len') ? [] : ['--max-model-len', String(DEFAULT_MAX_MODEL_LEN)]),
    ...extra,
  ];
}

/** The last lines of a finished job's log, on one line, for an error message. */
async function lastLogLines(workspace: string, id: string): Promise<string> {
  const log = await readJobLog(workspace, id, 0, { final: true }).catch(() => ({ text: '' }));
  return log.text.trim().split('\n').slice(-5).join(' | ');
}

/** Waits until a job is final; returns its status. */
async function waitUntilFinal(
  workspace: string,
  id: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<JobStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await jobStatus(workspace, id, signal);
    if (FINAL_STATES.has(s.state)) return s;
    if (Date.now() > deadline)
      throw new HostError(`job ${id} did not finish within ${Math.round(timeoutMs / 1000)} s (drag jobs logs ${id})`);
    await sleep(2000, signal);
  }
}

/**
 * Merges the adapter into its base model on the host, as a job of its own, unless an earlier merge
 * is there: adapters with `modules_to_save` (a tuned merger or vision tower) cannot be LoRA modules.
 */
async function mergeAdapter(
  options: AdapterServerOptions,
  train: JobRecord,
  baseModel: string,
  adapterPath: string,
): Promise<string> {
  const { workspace, signal } = options;
  const say = options.onProgress ?? (() => undefined);
  const host = train.hostConfig;
  const output = path.posix.join(train.remoteDir, 'out', 'merged');
  const done = await transportFor(host).run(`test -f ${shQuote(`${output}/config.json`)} && echo merged\n`, { signal });
  if (done.stdout.includes('merged')) {
    say(`using the merged model in ${output}`);
    return output;
  }
  say(
    `the adapter saves whole modules (modules_to_save), which vLLM cannot load as LoRA: merging it into ${baseModel}`,
  );
  const job = await submitJob({
    workspace,
    hostName: train.host,
    host,
    name: `merge-${train.name}`,
    signal,
    command: [
      'env',
      `PYTHONPATH=${train.remoteDir}/trainer`,
      host.python ?? 'python3',
      '-m',
      'drag_trainer',
      'merge',
      '--adapter-path',
      adapterPath,
      '--output-path',
      output,
      '--model',
      baseModel,
    ],
    meta: { kind: 'merge', trainJob: train.id, model: baseModel, output },
  });
  const s = await waitUntilFinal(workspace, job.id, options.readyTimeoutMs ?? 15 * 60_000, signal);
  if (s.state !== 'succeeded') {
    throw new HostError(
      `merging the adapter failed (${s.reason ?? s.state}): ${await lastLogLines(workspace, job.id)}`,
    );
  }
  return output;
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
  const meta = train.meta.kind === 'train' ? train.meta : null;
  const baseModel = options.baseModel ?? meta?.model;
  if (!baseModel) throw new Error(`job ${train.id} does not say which base model it trained: pass --base-model`);
  const loraName = options.loraName ?? `drag-${train.id}`;
  for (const [flag, value] of [
    ['--base-model', baseModel],
    ['--lora-name', loraName],
  ] as const) {
    const ok = ModelName.safeParse(value);
    if (!ok.success) throw new Error(`${flag} ${JSON.stringify(value)}: ${ok.error.issues[0]?.message}`);
  }
  const adapterRel = meta?.adapter ?? TRAIN_ADAPTER_DIR;
  const adapterPath = path.posix.isAbsolute(adapterRel) ? adapterRel : path.posix.join(train.remoteDir, adapterRel);
  const port = options.port ?? 8001;
  const host = train.hostConfig;
  // The rank the adapter really has (DPO from an SFT adapter keeps the SFT rank, not --lora-r).
  const facts = await adapterFacts(transportFor(host), adapterPath, signal);
  const served: ServedModel = facts.modulesToSave.length
    ? { kind: 'merged', modelPath: await mergeAdapter(options, train, baseModel, adapterPath), name: loraName }
    : { kind: 'lora', baseModel, loraName, adapterPath, maxLoraRank: vllmMaxLoraRank(facts.rank) };

  say(
    served.kind === 'lora'
      ? `starting vLLM on ${train.host}: ${baseModel} + ${loraName} ` +
          `(LoRA rank ${facts.rank}, --max-lora-rank ${served.maxLoraRank})`
      : `starting vLLM on ${train.host}: the merged model as ${loraName}`,
  );
  const job = await submitJob({
    workspace,
    hostName: train.host,
    host,
    name: `vllm-${train.name}`,
    signal,
    command: vllmCommand(
      options.vllm ?? host.vllm ?? 'vllm',
      served,
      port,
      options.vllmArgs ?? [],
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
        throw new HostError(
          `vLLM stopped before it was ready (${s.reason ?? s.state}): ${await lastLogLines(workspace, job.id)}`,
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
          `vLLM on ${train.host} was not ready within ${Math.round((options.readyTimeoutMs ?? 900_000) / 1000)} s ` +
            `(drag jobs logs ${job.id})`,
        );
      await sleep(1000, signal);
    }
  } catch (err) {
    await stop();
    throw err;
  }
}
