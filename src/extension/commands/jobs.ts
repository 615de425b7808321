import * as vscode from 'vscode';
import { cancelJob, cleanJob, fetchAdapter, type JobRecord, listJobs, readJob } from '../../core/jobs/engine';
import { formatHostCheck, type HostCheckReport } from '../../core/jobs/hostCheck';
import { loadConfig } from '../../core/workspace/layout';
import { runCliJob } from '../jobs/cliJob';
import { TrainingMonitorPanel } from '../panels/monitorPanel';
import { workspaceRoot } from '../workspace';
import { buildTrainingData, type PipelineArgs } from './pipeline';
import { type CommandDeps, type Commands, objectArg } from './registry';
import { evaluateAdapter, startTraining, type TrainArgs } from './training';

/** What "DRAG: Check GPU Host…" found: the CLI's report and the Markdown shown for it. */
export interface GpuHostCheck {
  report: HostCheckReport;
  markdown: string;
}

/** The host check as a readable Markdown document: the verdict, then the report `drag hosts check` prints. */
function hostCheckMarkdown(r: HostCheckReport): string {
  const verdict = r.ok ? 'Ready for training.' : `Not ready for training: ${r.problems.join('; ')}.`;
  return `# GPU host ${r.host}\n\n${verdict}\n\n\`\`\`text\n${formatHostCheck(r)}\`\`\`\n`;
}

/**
 * "DRAG: Check GPU Host…": `drag hosts check <host> --json` as a cancellable child process (setup lines,
 * Python, torch, CUDA, GPUs, packages, vLLM, disk; SLURM hosts on a compute node), then a notice saying
 * ready or why not, with the report a click away. `{ host }` skips the pick.
 */
async function checkGpuHost(
  context: vscode.ExtensionContext,
  log: vscode.LogOutputChannel,
  args: { host?: string },
): Promise<GpuHostCheck | undefined> {
  const root = workspaceRoot();
  const { config, errors } = await loadConfig(root);
  if (errors.length) throw new Error(`drag.config.json: ${errors[0]!.message} (line ${errors[0]!.line})`);
  const hosts = Object.entries(config.hosts ?? {});
  let host = args.host;
  if (!host) {
    if (hosts.length === 0)
      throw new Error(
        'no GPU host in drag.config.json: add one under "hosts", ' +
          'e.g. {"gpu": {"ssh": "my-gpu-box", "workdir": "~/drag-jobs"}}',
      );
    host = (
      await vscode.window.showQuickPick(
        hosts.map(([name, h]) => ({
          label: name,
          description: `${h.launcher ?? 'ssh'}${h.ssh ? ` · ${h.ssh}` : ''} · ${h.workdir}`,
        })),
        { placeHolder: 'GPU host to check (drag.config.json "hosts")' },
      )
    )?.label;
    if (!host) return undefined;
  }
  const result = await runCliJob(
    context.asAbsolutePath('dist/cli.js'),
    ['hosts', 'check', host, '--workspace', root, '--json'],
    { title: `DRAG: checking GPU host ${host}`, log, cwd: root },
  );
  if (result.cancelled) return undefined;
  const report = result.events.find(
    (e): e is HostCheckReport => typeof (e as Partial<HostCheckReport>).ok === 'boolean',
  );
  if (!report) {
    const why = result.stderrTail
      .filter((l) => l.startsWith('drag '))
      .pop()
      ?.replace(/^drag hosts: /, '');
    throw new Error(`could not check ${host}: ${why ?? 'see the DRAG Studio log'}`);
  }
  const markdown = hostCheckMarkdown(report);
  const notice = report.ok
    ? vscode.window.showInformationMessage(`DRAG: GPU host ${host}: ready`, 'Show Report')
    : vscode.window.showWarningMessage(
        `DRAG: GPU host ${host}: not ready: ${report.problems.join('; ')}`,
        'Show Report',
      );
  void notice.then(async (choice) => {
    if (!choice) return;
    const doc = await vscode.workspace.openTextDocument({ language: 'markdown', content: markdown });
    await vscode.window.showTextDocument(doc);
  });
  return { report, markdown };
}

/** Training data, training jobs and what follows them: monitor, cancel, clean, fetch, evaluate, DPO, host checks. */
export function jobCommands({ api, context, log }: CommandDeps): Commands {
  return {
    'drag.buildTrainingData': async (args?: PipelineArgs) => {
      const result = await buildTrainingData(context, log, objectArg(args));
      api.datasets?.refresh();
      return result;
    },
    'drag.startTraining': (args?: TrainArgs) => startTraining(context, log, objectArg(args)),
    'drag.checkGpuHost': (args?: { host?: string }) => checkGpuHost(context, log, objectArg(args)),
    'drag.refreshJobs': async () => {
      await api.jobs?.poll();
      api.jobs?.refresh();
    },
    'drag.openTrainingMonitor': async (job?: JobRecord | string) => {
      const root = workspaceRoot();
      let id = typeof job === 'string' ? job : job?.id;
      if (!id) {
        const { jobs } = await listJobs(root);
        if (jobs.length === 0)
          throw new Error('no jobs yet: start one with "DRAG: Start Training…" or drag jobs submit');
        id = (
          await vscode.window.showQuickPick(
            jobs.map((j) => ({
              label: j.name,
              description: `${j.last?.state ?? '?'} · ${j.host}`,
              detail: j.id,
              id: j.id,
            })),
            { placeHolder: 'Job to monitor' },
          )
        )?.id;
        if (!id) return undefined;
      }
      const panel = TrainingMonitorPanel.show(context, log, root, id, () => api.jobs?.refresh());
      void panel.refresh();
      return panel;
    },
    'drag.cancelJob': async (job?: JobRecord) => {
      if (!job?.id) return vscode.commands.executeCommand('drag.openTrainingMonitor');
      const ok = await vscode.window.showWarningMessage(
        `Cancel job ${job.name} (${job.id})?`,
        { modal: true },
        'Cancel Job',
      );
      if (ok !== 'Cancel Job') return undefined;
      const s = await cancelJob(workspaceRoot(), job.id);
      api.jobs?.refresh();
      void vscode.window.showInformationMessage(`DRAG: job ${job.name} ${s.state}.`);
      return s;
    },
    'drag.evaluateAdapter': async (
      job?: JobRecord | string,
      options?: { base?: string | null; questions?: string; vllm?: string },
    ) => {
      const id = typeof job === 'string' ? job : job?.id;
      if (!id) throw new Error('choose a finished training job in the Jobs view');
      const out = await evaluateAdapter(context, log, id, objectArg(options));
      api.evaluations?.refresh();
      return out;
    },
    'drag.continueWithDpo': async (job?: JobRecord | string, args?: TrainArgs) => {
      const record = typeof job === 'string' ? await readJob(workspaceRoot(), job) : job;
      if (!record?.id) throw new Error('choose a finished SFT job in the Jobs view');
      return startTraining(context, log, { ...objectArg(args), task: 'dpo', host: record.host, fromJob: record.id });
    },
    'drag.cleanJob': async (job?: JobRecord) => {
      if (!job?.id) throw new Error('choose a finished job in the Jobs view');
      const ok = await vscode.window.showWarningMessage(
        `Delete the files of ${job.name} on ${job.host} (${job.remoteDir})? ` +
          'Checkpoints and an adapter not fetched yet are lost; the job stays listed.',
        { modal: true },
        'Delete Remote Files',
      );
      if (ok !== 'Delete Remote Files') return undefined;
      const record = await cleanJob(workspaceRoot(), job.id);
      api.jobs?.refresh();
      return record;
    },
    'drag.fetchAdapter': async (job?: JobRecord | string) => {
      const id = typeof job === 'string' ? job : job?.id;
      if (!id) throw new Error('choose a finished training job in the Jobs view');
      const target = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `DRAG: fetching the adapter of ${id}` },
        () => fetchAdapter(workspaceRoot(), id),
      );
      api.jobs?.refresh();
      void vscode.window
        .showInformationMessage(`DRAG: adapter in ${vscode.workspace.asRelativePath(target)}.`, 'Reveal')
        .then((c) => c && vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(target)));
      return target;
    },
  };
}
