import * as vscode from 'vscode';
import { cancelJob, cleanJob, fetchAdapter, type JobRecord, listJobs, readJob } from '../../core/jobs/engine';
import { TrainingMonitorPanel } from '../panels/monitorPanel';
import { workspaceRoot } from '../workspace';
import { buildTrainingData, type PipelineArgs } from './pipeline';
import { type CommandDeps, type Commands, objectArg } from './registry';
import { evaluateAdapter, startTraining, type TrainArgs } from './training';

/** Training data, training jobs and what follows them: monitor, cancel, clean, fetch, evaluate, DPO. */
export function jobCommands({ api, context, log }: CommandDeps): Commands {
  return {
    'drag.buildTrainingData': async (args?: PipelineArgs) => {
      const result = await buildTrainingData(context, log, objectArg(args));
      api.datasets?.refresh();
      return result;
    },
    'drag.startTraining': (args?: TrainArgs) => startTraining(context, log, objectArg(args)),
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
        `Delete the files of ${job.name} on ${job.host} (${job.remoteDir})? Checkpoints and an adapter not fetched yet are lost; the job stays listed.`,
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
