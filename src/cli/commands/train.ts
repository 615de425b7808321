import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { jobStatus, readJob, rerunJob, type SubmitOptions, submitJob, TRAIN_ADAPTER_DIR } from '../../core/jobs/engine';
import { envCheckReason, setupLines } from '../../core/jobs/hostCheck';
import { shJoin, shQuote } from '../../core/jobs/quote';
import { HostError, type HostConfig, type Transport } from '../../core/jobs/transport';
import { ModelName } from '../../core/schema/config';
import { type CliCommand, type CliIO, UsageError } from '../args';
import { resolveHost, workspaceOf } from './jobs';

/** The trainer folder shipped beside the CLI (repository checkout or installed extension). */
export function trainerDir(): string {
  for (const candidate of [
    path.resolve(__dirname, '..', 'trainer'),
    path.resolve(__dirname, '..', '..', '..', 'trainer'),
  ]) {
    if (existsSync(path.join(candidate, 'drag_trainer', '__init__.py'))) return candidate;
  }
  throw new Error(`the trainer (trainer/drag_trainer) was not found beside ${__dirname}`);
}

/** Training files of a dataset folder, preferring the TRL exports (the agent's real prompt). */
export const TRAIN_FILES = {
  sft: [
    ['trl_sft_train.jsonl', 'trl_sft_val.jsonl'],
    ['sft_query_train.jsonl', 'sft_query_val.jsonl'],
  ],
  dpo: [
    ['trl_dpo_train.jsonl', 'trl_dpo_val.jsonl'],
    ['dpo_train.jsonl', 'dpo_val.jsonl'],
  ],
} as const;

export function pickTrainFiles(
  datasetDir: string,
  task: 'sft' | 'dpo',
  override?: string,
): { train: string; val?: string } {
  if (override) {
    if (!existsSync(path.join(datasetDir, override)))
      throw new UsageError(`--data-file ${override}: not in ${datasetDir}`);
    return { train: override };
  }
  for (const [train, val] of TRAIN_FILES[task]) {
    if (existsSync(path.join(datasetDir, train)))
      return { train, ...(existsSync(path.join(datasetDir, val)) ? { val } : {}) };
  }
  throw new UsageError(
    `${datasetDir} has no ${TRAIN_FILES[task].map((f) => f[0]).join(' or ')}: ` +
      'run "drag format --formats all" into it first',
  );
}

/** The trainer's own environment check, as a command run in the job folder (where trainer/ is uploaded). */
export function envCheckCommand(python: string): string[] {
  return ['env', 'PYTHONPATH=trainer', python, '-m', 'drag_trainer', 'env', '--json'];
}

/**
 * Checks the host can train, before submitting (SSH and local hosts): the host's setup lines, then
 * the trainer's check (Python >= 3.10 with torch, transformers, peft and a CUDA GPU). SLURM hosts
 * run the same check as the first step of the batch job instead, on the node that trains.
 */
export async function checkTrainingHost(
  transport: Transport,
  remoteDir: string,
  python: string,
  setup: readonly string[] = [],
): Promise<Record<string, unknown>> {
  const setupScript = setupLines(
    setup,
    (i, line) => `{ echo ${shQuote(`setup line ${i + 1} failed: ${line}`)} >&2; exit 96; }`,
  );
  const res = await transport.run(
    `cd ${shQuote(remoteDir)} || exit 97\n${setupScript}${shJoin(envCheckCommand(python))}\n`,
  );
  if (res.code === 96)
    throw new HostError(
      `${transport.label}: ${res.stderr.trim().split('\n').pop()} (fix "setup" for the host in drag.config.json)`,
    );
  const last = res.stdout.trim().split('\n').pop() ?? '';
  let report: { ok?: boolean } | null = null;
  try {
    report = JSON.parse(last) as { ok?: boolean };
  } catch {
    report = null;
  }
  if (!report) {
    if (res.code === 127 || /command not found|No such file/.test(res.stderr))
      throw new HostError(
        `${transport.label}: "${python}" is not installed there: ` +
          'set "python" or "setup" for the host in drag.config.json',
      );
    throw new HostError(
      `${transport.label}: the trainer's environment check failed: ${envCheckReason(last, res.stderr)}`,
    );
  }
  if (!report.ok)
    throw new HostError(
      `${transport.label} is not ready for training: ${envCheckReason(last, res.stderr)} (or pass --no-check)`,
    );
  return report as Record<string, unknown>;
}

/**
 * The port torchrun's rendezvous listens on, on the first node (varied by job so that two jobs on a
 * node do not collide).
 */
const RDZV_PORT = '$((29500 + SLURM_JOB_ID % 1000))';

/**
 * How the trainer is started: `python -m drag_trainer`, torchrun for several GPUs, and on a SLURM
 * host with `slurm.nodes` > 1, `srun` starting torchrun once per node with a c10d rendezvous on the
 * allocation's first node (the job folder must be on a filesystem every node sees).
 */
export function trainLauncher(python: string, host: HostConfig, nproc: number): string[] {
  const nodes = host.launcher === 'slurm' ? (host.slurm?.nodes ?? 1) : 1;
  if (nodes > 1) {
    const perNode = host.slurm?.gpus || nproc;
    const torchrun = [
      `exec ${shQuote(python)} -m torch.distributed.run`,
      '--nnodes "$SLURM_NNODES"',
      `--nproc_per_node ${perNode}`,
      '--rdzv_id "$SLURM_JOB_ID"',
      '--rdzv_backend c10d',
      `--rdzv_endpoint "$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1):${RDZV_PORT}"`,
      '-m drag_trainer "$@"',
    ].join(' ');
    return ['srun', '--ntasks-per-node=1', '--kill-on-bad-exit=1', 'bash', '-c', torchrun, 'drag-torchrun'];
  }
  return nproc > 1
    ? [python, '-m', 'torch.distributed.run', `--nproc_per_node=${nproc}`, '-m', 'drag_trainer']
    : [python, '-m', 'drag_trainer'];
}

/**
 * `--from-job ID`: the adapter of a finished training job, to continue with DPO. It stays on the
 * host it was trained on (the new job runs there too) and keeps its base model.
 */
export async function sourceAdapter(
  workspace: string,
  id: string,
  host: string | undefined,
  signal?: AbortSignal,
): Promise<{ host: string; adapter: string; model: string | undefined }> {
  const source = await readJob(workspace, id).catch(() => {
    throw new UsageError(`--from-job ${id}: no such job in ${path.join(workspace, 'jobs')}`);
  });
  if (source.meta.kind !== 'train') throw new UsageError(`--from-job ${id}: not a training job`);
  if (host && host !== source.host)
    throw new UsageError(
      `--from-job ${id} was trained on host "${source.host}", where its adapter is: train with --host ${source.host}`,
    );
  const status = await jobStatus(workspace, id, signal);
  if (status.state !== 'succeeded')
    throw new UsageError(
      `--from-job ${id} is ${status.state}: its adapter is complete only once the job has succeeded`,
    );
  return { host: source.host, adapter: `${source.remoteDir}/${source.meta.adapter}`, model: source.meta.model };
}

const DEFAULT_MODEL = 'Qwen/Qwen3-VL-8B-Thinking';

/**
 * Where the environment check runs: over SSH (and here) before the job is submitted, so a host
 * that cannot train never gets a job; on SLURM as the first step of the batch job, on the node that
 * trains, because the login node that submits usually has no GPU and often no torch.
 */
function checks(
  host: HostConfig,
  python: string,
  noCheck: boolean,
  say: (m: string) => void,
  before: (transport: Transport) => Promise<void>,
): Pick<SubmitOptions, 'preflight' | 'check' | 'requeueOnTimeLimit'> {
  if (host.launcher === 'slurm')
    return {
      preflight: before,
      requeueOnTimeLimit: true,
      ...(noCheck ? {} : { check: envCheckCommand(python) }),
    };
  return {
    preflight: async (transport, remoteDir) => {
      await before(transport);
      if (noCheck) return;
      say(`checking ${transport.label} for training (python -m drag_trainer env)`);
      await checkTrainingHost(transport, remoteDir, python, host.setup ?? []);
    },
  };
}

/**
 * `drag train --resume <job-id>`: a failed or cancelled training job again, in its folder, from its
 * last checkpoint.
 */
async function resumeTraining(argv: string[], io: CliIO, signal: AbortSignal): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      resume: { type: 'string' },
      workspace: { type: 'string' },
      'no-check': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const id = values.resume;
  if (!id) throw new UsageError('--resume needs the id of a failed or cancelled training job (drag jobs ls)');
  const workspace = workspaceOf(values.workspace);
  const old = await readJob(workspace, id);
  if (old.meta.kind !== 'train') throw new UsageError(`--resume ${id}: not a training job`);
  // The host as configured now (setup lines added since the failure count), else as recorded.
  const host = await resolveHost(workspace, old.host).then(
    (h) => h.host,
    () => old.hostConfig,
  );
  const command = old.command.includes('--resume') ? old.command : [...old.command, '--resume', 'auto'];
  const say = (m: string) => {
    if (!values.json) io.stderr(`${m}\n`);
  };
  const record = await rerunJob(workspace, id, {
    host,
    command,
    signal,
    onProgress: say,
    ...checks(host, host.python ?? 'python3', values['no-check'] ?? false, say, async () => undefined),
  });
  io.stdout(
    values.json
      ? `${JSON.stringify({ id: record.id, host: record.host, remoteDir: record.remoteDir, command })}\n`
      : `${record.id}\n`,
  );
  return 0;
}

const PASS_THROUGH = [
  'model',
  'epochs',
  'max-steps',
  'batch-size',
  'grad-accum',
  'lr',
  'lora-r',
  'lora-alpha',
  'lora-dropout',
  'lora-targets',
  'max-length',
  'mask-strategy',
  'weight-scheme',
  'beta',
  'seed',
  'save-steps',
  'logging-steps',
  'report-to',
] as const;

export const trainCommand: CliCommand = {
  name: 'train',
  summary: 'upload a dataset and the trainer to a GPU host and start LoRA SFT or DPO as a job',
  usage:
    'drag train sft|dpo --host H --dataset datasets/<name> [--name N] [--nproc N] [--data-file F] ' +
    `[--no-check] [--json]
                [--from-job ID] (dpo: continue that finished SFT job's adapter; its frozen copy is the reference)
                [--model M] [--epochs E] [--max-steps S] [--batch-size B] [--grad-accum A] [--lr LR]
                [--lora-r R] [--lora-alpha A] [--lora-dropout D] [--lora-targets T] [--max-length L]
                [--mask-strategy none|assistant|search-only|search-think] ` +
    `[--weight-scheme none|rank-score|rank-sq|inv-effort|binary]
                [--beta B] [--seed S] [--save-steps N] [--logging-steps N] [--report-to R] [-- <more trainer options>]
       drag train --resume <job id> [--no-check] [--json] [--workspace DIR]

Uploads the dataset folder and trainer/ into the job folder, checks the host after its "setup" lines
(python -m drag_trainer env: Python, torch, transformers, peft, CUDA; --no-check skips it), then runs
  python -m drag_trainer <sft|dpo> --train-data <dataset>/trl_<task>_train.jsonl --output-dir out ...
(torchrun --nproc_per_node N with --nproc N > 1). SSH and local hosts are checked before the job is
submitted; SLURM hosts as the first step of the batch job, on the node that trains (the login node
needs no torch), and a failed check ends the job at once with its reason in drag jobs status. On
SLURM, slurm.nodes > 1 runs srun torchrun on every node (slurm.gpus per node), and the job is
submitted with --requeue --signal=B:USR1@120 and runs with --resume auto: at its time limit the
trainer writes a checkpoint, and the requeued job continues from it. --resume <job id> reruns a
failed or cancelled training job in its own folder with --resume auto (from its last checkpoint).
Progress: drag jobs status|logs <id>; the adapter ends in out/final/ on the host: drag jobs fetch
<id> out/final jobs/<id>/adapter. With --from-job, DPO starts from that job's adapter on the same
host (--host defaults to it, --model to its base model).`,
  async run(argv, io, signal) {
    if (argv[0] === '--resume' || argv[0]?.startsWith('--resume=')) return resumeTraining(argv, io, signal);
    const [task, ...rest] = argv;
    if (task !== 'sft' && task !== 'dpo') throw new UsageError('expected "drag train sft" or "drag train dpo"');
    const dash = rest.indexOf('--');
    const extra = dash >= 0 ? rest.slice(dash + 1) : [];
    const options = Object.fromEntries(PASS_THROUGH.map((k) => [k, { type: 'string' as const }]));
    const { values: parsed } = parseArgs({
      args: dash >= 0 ? rest.slice(0, dash) : rest,
      options: {
        ...options,
        workspace: { type: 'string' },
        host: { type: 'string' },
        dataset: { type: 'string' },
        name: { type: 'string' },
        nproc: { type: 'string' },
        'data-file': { type: 'string' },
        'from-job': { type: 'string' },
        'no-check': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
    });
    const values = parsed as typeof parsed & Partial<Record<(typeof PASS_THROUGH)[number], string>>;
    if (!values.dataset)
      throw new UsageError('--dataset is required (a folder written by drag format, e.g. datasets/curated)');
    const workspace = workspaceOf(values.workspace);
    const datasetDir = path.resolve(workspace, values.dataset);
    if (!existsSync(datasetDir)) throw new UsageError(`--dataset ${values.dataset}: no such folder`);
    if (values['from-job'] && task !== 'dpo')
      throw new UsageError('--from-job continues a finished SFT adapter with DPO: use it with "drag train dpo"');
    const files = pickTrainFiles(datasetDir, task, values['data-file']);
    const from = values['from-job']
      ? await sourceAdapter(workspace, values['from-job'], values.host, signal)
      : undefined;
    if (from && !values.model && from.model) values.model = from.model;
    const { name: hostName, host } = await resolveHost(workspace, values.host ?? from?.host);
    const model = values.model ?? DEFAULT_MODEL;
    const modelOk = ModelName.safeParse(model);
    if (!modelOk.success) throw new UsageError(`--model ${JSON.stringify(model)}: ${modelOk.error.issues[0]?.message}`);
    const python = host.python ?? 'python3';
    const ds = path.basename(datasetDir);
    const nproc = Number(values.nproc ?? (host.launcher === 'slurm' ? (host.slurm?.gpus ?? 1) || 1 : 1));
    if (!Number.isInteger(nproc) || nproc < 1) throw new UsageError('--nproc must be a positive integer');
    const slurm = host.launcher === 'slurm';
    const trainerArgs = [
      task,
      '--train-data',
      `${ds}/${files.train}`,
      ...(files.val ? ['--val-data', `${ds}/${files.val}`] : []),
      '--output-dir',
      'out',
      ...PASS_THROUGH.flatMap((k) => (values[k] !== undefined ? [`--${k}`, String(values[k])] : [])),
      ...(from ? ['--sft-adapter', from.adapter] : []),
      // A SLURM job is requeued at its time limit and runs this command again: it must pick up its checkpoint.
      ...(slurm && !extra.includes('--resume') ? ['--resume', 'auto'] : []),
      ...extra,
    ];
    const command = ['env', 'PYTHONPATH=trainer', ...trainLauncher(python, host, nproc), ...trainerArgs];
    const say = (m: string) => {
      if (!values.json) io.stderr(`${m}\n`);
    };
    const record = await submitJob({
      workspace,
      hostName,
      host,
      command,
      name: values.name ?? `${task}-${ds}`,
      uploads: [datasetDir, trainerDir()],
      progressFile: 'out/trainer_log.jsonl',
      signal,
      meta: {
        kind: 'train',
        task,
        dataset: path.relative(workspace, datasetDir),
        model,
        adapter: TRAIN_ADAPTER_DIR,
        trainData: files.train,
        loraRank: Number(values['lora-r'] ?? 16),
        ...(from ? { fromJob: values['from-job'] } : {}),
      },
      onProgress: say,
      ...checks(host, python, values['no-check'] ?? false, say, async (transport) => {
        if (!from) return;
        const found = await transport.run(`test -f ${shQuote(`${from.adapter}/adapter_config.json`)} && echo found\n`, {
          signal,
        });
        if (!found.stdout.includes('found'))
          throw new HostError(
            `--from-job ${values['from-job']}: no adapter at ${transport.label}:${from.adapter} ` +
              '(deleted with "drag jobs clean"?)',
          );
      }),
    });
    io.stdout(
      values.json
        ? `${JSON.stringify({ id: record.id, host: record.host, remoteDir: record.remoteDir, command })}\n`
        : `${record.id}\n`,
    );
    return 0;
  },
};
