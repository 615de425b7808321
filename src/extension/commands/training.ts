import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { listEvaluations } from '../../core/eval/discover';
import { listJobs } from '../../core/jobs/engine';
import { corpusPaths, loadConfig } from '../../core/workspace/layout';
import { runCliJob } from '../jobs/cliJob';
import { workspaceRoot } from '../workspace';

/** What "DRAG: Start Training…" can be given directly (tests, other commands), else it asks. */
export interface TrainArgs {
  dataset?: string;
  task?: 'sft' | 'dpo';
  host?: string;
  preset?: string;
  /** DPO only: continue this finished SFT job's adapter (`drag train dpo --from-job`); null = the base model. */
  fromJob?: string | null;
  /** Extra `drag train` options, e.g. ['--max-steps', '20']. */
  extra?: string[];
  noCheck?: boolean;
}

/** The end of the CLI's message when its environment check before submission failed. */
const NO_CHECK_HINT = ' (or pass --no-check)';
/** The choice that submits again without the environment check (`drag train --no-check`). */
const START_ANYWAY = 'Start Anyway';

/**
 * Presets: LoRA rank, learning rate and epochs (`args`) in one choice, with the mask strategy and
 * weight scheme (`sft`) that only SFT takes.
 */
export const TRAINING_PRESETS: Record<string, { detail: string; args: string[]; sft: string[] }> = {
  'DRAG defaults': {
    detail: "LoRA r 16, lr 2e-4, 3 epochs, every token learned, no weights (as DRAG's finetune.py)",
    args: ['--lora-r', '16', '--lr', '2e-4', '--epochs', '3'],
    sft: ['--mask-strategy', 'none', '--weight-scheme', 'none'],
  },
  'Search queries, weighted': {
    detail: 'LoRA r 16, lr 2e-4, 3 epochs, learn the search calls only, weight by rank score',
    args: ['--lora-r', '16', '--lr', '2e-4', '--epochs', '3'],
    sft: ['--mask-strategy', 'search-only', '--weight-scheme', 'rank-score'],
  },
  'Quick check': {
    detail: 'LoRA r 8, lr 2e-4, 1 epoch, assistant turns: a first run to see the loss move',
    args: ['--lora-r', '8', '--lr', '2e-4', '--epochs', '1'],
    sft: ['--mask-strategy', 'assistant', '--weight-scheme', 'none'],
  },
  'Larger adapter': {
    detail: 'LoRA r 64 (alpha 128), lr 1e-4, 2 epochs, search and reasoning learned',
    args: ['--lora-r', '64', '--lora-alpha', '128', '--lr', '1e-4', '--epochs', '2'],
    sft: ['--mask-strategy', 'search-think', '--weight-scheme', 'rank-score'],
  },
};

async function pick<T extends vscode.QuickPickItem>(items: T[], placeHolder: string): Promise<T | undefined> {
  if (items.length === 1) return items[0];
  return vscode.window.showQuickPick(items, { placeHolder, ignoreFocusOut: true });
}

/**
 * "DRAG: Start Training…": dataset, SFT or DPO, host (for DPO: the base model or a finished SFT
 * job's adapter to continue) and preset, then `drag train` as a job; opens the monitor.
 */
export async function startTraining(
  context: vscode.ExtensionContext,
  log: vscode.LogOutputChannel,
  args: TrainArgs = {},
): Promise<string | undefined> {
  const root = workspaceRoot();
  const { config, errors } = await loadConfig(root);
  if (errors.length) throw new Error(`drag.config.json: ${errors[0]!.message} (line ${errors[0]!.line})`);
  const hosts = Object.entries(config.hosts ?? {});
  if (hosts.length === 0) {
    const choice = await vscode.window.showErrorMessage(
      'DRAG: no GPU host in drag.config.json. Add one under "hosts", ' +
        'e.g. {"gpu": {"ssh": "my-gpu-box", "workdir": "~/drag-jobs", "launcher": "ssh"}}.',
      'Open drag.config.json',
    );
    if (choice)
      await vscode.commands.executeCommand('vscode.open', vscode.Uri.file(path.join(root, 'drag.config.json')));
    return undefined;
  }
  const datasetsDir = path.join(root, 'datasets');
  const datasets = existsSync(datasetsDir)
    ? readdirSync(datasetsDir, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
    : [];
  const dataset =
    args.dataset ??
    (
      await pick(
        datasets.map((d) => {
          const files = readdirSync(path.join(datasetsDir, d));
          return {
            label: d,
            description:
              ['trl_sft_train.jsonl', 'trl_dpo_train.jsonl', 'sft_query_train.jsonl', 'dpo_train.jsonl']
                .filter((f) => files.includes(f))
                .join(', ') || 'no training files',
          };
        }),
        'Dataset to train on (datasets/)',
      )
    )?.label;
  if (!dataset) {
    if (datasets.length === 0)
      void vscode.window.showErrorMessage(
        'DRAG: no dataset yet: run "DRAG: Build Training Data…" or "DRAG: Export Curated Dataset" first.',
      );
    return undefined;
  }
  const task =
    args.task ??
    (
      await vscode.window.showQuickPick(
        [
          { label: 'SFT', description: 'supervised finetuning on the best searches', value: 'sft' as const },
          { label: 'DPO', description: 'preference pairs: better vs worse query', value: 'dpo' as const },
        ],
        { placeHolder: 'Training method', ignoreFocusOut: true },
      )
    )?.value;
  if (!task) return undefined;
  const host =
    args.host ??
    (
      await pick(
        hosts.map(([name, h]) => ({
          label: name,
          description: `${h.launcher ?? 'ssh'}${h.ssh ? ` ${h.ssh}` : ''} · ${h.workdir}`,
        })),
        'GPU host',
      )
    )?.label;
  if (!host) return undefined;
  let fromJob = args.fromJob;
  if (task === 'dpo' && fromJob === undefined) {
    // SFT then DPO is the usual order: offer the SFT jobs trained on this host (the adapter stays there).
    const sftJobs = (await listJobs(root)).jobs.filter(
      (j) =>
        j.host === host &&
        j.meta?.kind === 'train' &&
        j.meta?.task === 'sft' &&
        j.last?.state !== 'failed' &&
        j.last?.state !== 'cancelled',
    );
    if (sftJobs.length) {
      const choice = await vscode.window.showQuickPick(
        [
          {
            label: 'Base model',
            description: 'DPO from the base model; the reference is the base model',
            id: null as string | null,
          },
          ...sftJobs.map((j) => ({
            label: `Continue ${j.id}`,
            description: `${String(j.meta?.model ?? '')} · ${j.last?.state ?? 'not checked'}`,
            detail: 'DPO continues this SFT adapter; a frozen copy of it is the reference',
            id: j.id as string | null,
          })),
        ],
        { placeHolder: 'Start DPO from', ignoreFocusOut: true },
      );
      if (!choice) return undefined;
      fromJob = choice.id;
    }
  }
  const presetName =
    args.preset ??
    (
      await vscode.window.showQuickPick(
        Object.entries(TRAINING_PRESETS).map(([label, p]) => ({ label, detail: p.detail })),
        { placeHolder: 'Preset', ignoreFocusOut: true },
      )
    )?.label;
  if (!presetName) return undefined;
  const preset = TRAINING_PRESETS[presetName];
  if (!preset) throw new Error(`unknown preset "${presetName}"`);
  const argv = [
    'train',
    task,
    '--host',
    host,
    '--dataset',
    path.join('datasets', dataset),
    '--workspace',
    root,
    '--json',
    ...preset.args,
    ...(task === 'sft' ? preset.sft : []),
    ...(fromJob ? ['--from-job', fromJob] : []),
    ...(args.noCheck ? ['--no-check'] : []),
    ...(args.extra ?? []),
  ];
  const result = await runCliJob(context.asAbsolutePath('dist/cli.js'), argv, {
    title: `DRAG: starting ${task.toUpperCase()} on ${host}`,
    log,
    cwd: root,
  });
  const submitted = result.events.find((e): e is { id: string } => typeof (e as { id?: unknown }).id === 'string');
  if (result.cancelled) return undefined;
  if (result.code !== 0 || !submitted) {
    await vscode.commands.executeCommand('drag.refreshJobs');
    const last = result.stderrTail
      .filter((l) => l.startsWith('drag '))
      .pop()
      ?.replace(/^drag train: /, '');
    // The CLI ends the message of a failed environment check before submission (SSH hosts) with
    // this hint: the person may know better (a torch that imports only inside the job's shell).
    const checkFailed = last?.endsWith(NO_CHECK_HINT) ?? false;
    const why = last?.replace(NO_CHECK_HINT, '');
    if (!checkFailed) throw new Error(`training did not start on ${host}: ${why ?? 'see the DRAG Studio log'}`);
    const choice = await vscode.window.showErrorMessage(
      `DRAG: training did not start on ${host}: ${why}`,
      START_ANYWAY,
      'Show Log',
    );
    if (choice === 'Show Log') log.show();
    if (choice !== START_ANYWAY) return undefined;
    return startTraining(context, log, { ...args, dataset, task, host, preset: presetName, fromJob, noCheck: true });
  }
  await vscode.commands.executeCommand('drag.refreshJobs');
  await vscode.commands.executeCommand('drag.openTrainingMonitor', submitted.id);
  return submitted.id;
}

/**
 * "Evaluate this adapter": drag eval-adapter (vLLM with the adapter on the job's host, port
 * forwarded, drag eval, server stopped) on the workspace's questions, compared with a base
 * evaluation the person picks; opens the comparison.
 */
export async function evaluateAdapter(
  context: vscode.ExtensionContext,
  log: vscode.LogOutputChannel,
  jobId: string,
  options: { base?: string | null; questions?: string; vllm?: string } = {},
): Promise<string | undefined> {
  const root = workspaceRoot();
  const { config } = await loadConfig(root);
  let questions = options.questions ?? config.questions;
  if (!questions) {
    const picked = await vscode.window.showOpenDialog({
      title: 'Question set to evaluate on',
      filters: { 'Questions (JSONL/JSON)': ['jsonl', 'json'] },
      defaultUri: vscode.Uri.file(root),
    });
    questions = picked?.[0]?.fsPath;
    if (!questions) return undefined;
  }
  let base = options.base;
  if (base === undefined) {
    const evals = await listEvaluations(root);
    const choice = await vscode.window.showQuickPick(
      [
        ...evals.map((e) => ({
          label: e.label,
          description: `${e.model ?? ''} · ${e.date.slice(0, 16).replace('T', ' ')}`,
          target: e.target as string | null,
        })),
        { label: 'No comparison', description: 'evaluate only', target: null },
      ],
      { placeHolder: "Compare the adapter with which evaluation (the base model's)?", ignoreFocusOut: true },
    );
    if (!choice) return undefined;
    base = choice.target;
  }
  const out = path.join(root, 'evals', `adapter-${jobId}`);
  const argv = [
    'eval-adapter',
    jobId,
    '--workspace',
    root,
    ...(options.vllm ? ['--vllm', options.vllm] : []),
    ...(base ? ['--compare-with', base] : []),
    '--',
    '--questions',
    path.resolve(root, questions),
    '--ocr',
    corpusPaths(root, config).ocrFile,
    '--out',
    out,
    '--sampling-config',
    'greedy',
    '--json',
  ];
  const result = await runCliJob(context.asAbsolutePath('dist/cli.js'), argv, {
    title: `DRAG: evaluating the adapter of ${jobId}`,
    log,
    cwd: root,
    onEvent: (e, progress) => {
      if (e.type === 'progress' && typeof e.done === 'number' && typeof e.total === 'number')
        progress.report({ message: `${e.done}/${e.total} questions` });
    },
  });
  if (result.cancelled) return undefined;
  if (result.code !== 0) {
    const why = result.stderrTail
      .filter((l) => l.startsWith('drag '))
      .pop()
      ?.replace(/^drag eval-adapter: /, '');
    throw new Error(`evaluating the adapter of ${jobId} failed: ${why ?? 'see the DRAG Studio log'}`);
  }
  await vscode.commands.executeCommand('drag.refreshJobs');
  if (base)
    await vscode.commands.executeCommand('drag.compareEvaluations', [
      { target: base, label: path.basename(base) },
      { target: out, label: path.basename(out) },
    ]);
  else void vscode.window.showInformationMessage(`DRAG: adapter evaluated: ${vscode.workspace.asRelativePath(out)}.`);
  return out;
}
