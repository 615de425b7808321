import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { jobStatus, readJob, submitJob } from '../../core/jobs/engine';
import { shQuote } from '../../core/jobs/quote';
import { HostError, type Transport } from '../../core/jobs/transport';
import { type CliCommand, UsageError } from '../args';
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
    `${datasetDir} has no ${TRAIN_FILES[task].map((f) => f[0]).join(' or ')}: run "drag format --formats all" into it first`,
  );
}

/** Checks the host can train: Python >= 3.10 with torch, transformers, peft and a CUDA GPU. */
export async function checkTrainingHost(
  transport: Transport,
  remoteDir: string,
  python: string,
): Promise<Record<string, unknown>> {
  const res = await transport.run(
    `cd ${shQuote(remoteDir)} && PYTHONPATH=trainer ${shQuote(python)} -m drag_trainer env --json\n`,
  );
  if (res.code === 127 || /command not found|No such file/.test(res.stderr))
    throw new HostError(
      `${transport.label}: "${python}" is not installed there: set "python" for the host in drag.config.json`,
    );
  let report: { ok?: boolean; problems?: string[] };
  try {
    report = JSON.parse(res.stdout.trim().split('\n').pop() ?? '') as typeof report;
  } catch {
    throw new HostError(
      `${transport.label}: the trainer's environment check failed: ${res.stderr.trim() || res.stdout.trim()}`,
    );
  }
  if (!report.ok)
    throw new HostError(
      `${transport.label} is not ready for training: ${(report.problems ?? []).join('; ')} (or pass --no-check)`,
    );
  return report as Record<string, unknown>;
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
  if (source.meta?.kind !== 'train') throw new UsageError(`--from-job ${id}: not a training job`);
  if (host && host !== source.host)
    throw new UsageError(
      `--from-job ${id} was trained on host "${source.host}", where its adapter is: train with --host ${source.host}`,
    );
  const status = await jobStatus(workspace, id, signal);
  if (status.state !== 'succeeded')
    throw new UsageError(
      `--from-job ${id} is ${status.state}: its adapter is complete only once the job has succeeded`,
    );
  const adapter = `${source.remoteDir}/${typeof source.meta.adapter === 'string' ? source.meta.adapter : 'out/final'}`;
  return { host: source.host, adapter, model: typeof source.meta.model === 'string' ? source.meta.model : undefined };
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
] as const;

export const trainCommand: CliCommand = {
  name: 'train',
  summary: 'upload a dataset and the trainer to a GPU host and start LoRA SFT or DPO as a job',
  usage: `drag train sft|dpo --host H --dataset datasets/<name> [--name N] [--nproc N] [--data-file F] [--no-check] [--json]
                [--from-job ID] (dpo: continue that finished SFT job's adapter; its frozen copy is the reference)
                [--model M] [--epochs E] [--max-steps S] [--batch-size B] [--grad-accum A] [--lr LR]
                [--lora-r R] [--lora-alpha A] [--lora-dropout D] [--lora-targets T] [--max-length L]
                [--mask-strategy none|assistant|search-only|search-think] [--weight-scheme none|rank-score|rank-sq|inv-effort|binary]
                [--beta B] [--seed S] [--save-steps N] [--logging-steps N] [-- <more trainer options>]

Uploads the dataset folder and trainer/ into the job folder, checks the host (python -m drag_trainer
env: Python, torch, transformers, peft, CUDA; --no-check skips it), then runs
  python -m drag_trainer <sft|dpo> --train-data <dataset>/trl_<task>_train.jsonl --output-dir out ...
(torchrun --nproc_per_node N with --nproc N > 1). Progress: drag jobs status|logs <id>; the adapter
ends in out/final/ on the host: drag jobs fetch <id> out/final jobs/<id>/adapter. With --from-job, DPO
starts from that job's adapter on the same host (--host defaults to it, --model to its base model).`,
  async run(argv, io, signal) {
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
    const python = host.python ?? 'python3';
    const ds = path.basename(datasetDir);
    const nproc = Number(values.nproc ?? '1');
    if (!Number.isInteger(nproc) || nproc < 1) throw new UsageError('--nproc must be a positive integer');
    const launcher =
      nproc > 1
        ? [python, '-m', 'torch.distributed.run', `--nproc_per_node=${nproc}`, '-m', 'drag_trainer']
        : [python, '-m', 'drag_trainer'];
    const trainerArgs = [
      task,
      '--train-data',
      `${ds}/${files.train}`,
      ...(files.val ? ['--val-data', `${ds}/${files.val}`] : []),
      '--output-dir',
      'out',
      ...PASS_THROUGH.flatMap((k) => (values[k] !== undefined ? [`--${k}`, String(values[k])] : [])),
      ...(from ? ['--sft-adapter', from.adapter] : []),
      ...extra,
    ];
    const command = ['env', 'PYTHONPATH=trainer', ...launcher, ...trainerArgs];
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
        model: values.model ?? 'Qwen/Qwen3-VL-8B-Thinking',
        adapter: 'out/final',
        trainData: files.train,
        loraRank: Number(values['lora-r'] ?? 16),
        ...(from ? { fromJob: values['from-job'] } : {}),
      },
      onProgress: (m) => {
        if (!values.json) io.stderr(`${m}\n`);
      },
      preflight:
        values['no-check'] && !from
          ? undefined
          : async (transport, remoteDir) => {
              if (from) {
                const found = await transport.run(
                  `test -f ${shQuote(`${from.adapter}/adapter_config.json`)} && echo found\n`,
                  { signal },
                );
                if (!found.stdout.includes('found'))
                  throw new HostError(
                    `--from-job ${values['from-job']}: no adapter at ${transport.label}:${from.adapter} (deleted with "drag jobs clean"?)`,
                  );
              }
              if (values['no-check']) return;
              if (!values.json) io.stderr(`checking ${transport.label} for training (python -m drag_trainer env)\n`);
              await checkTrainingHost(transport, remoteDir, python);
            },
    });
    io.stdout(
      values.json
        ? `${JSON.stringify({ id: record.id, host: record.host, remote_dir: record.remoteDir, command })}\n`
        : `${record.id}\n`,
    );
    return 0;
  },
};
