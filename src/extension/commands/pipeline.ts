import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { corpusPaths, loadConfig } from '../../core/workspace/layout';
import { runCliJob } from '../jobs/cliJob';
import { workspaceRoot } from '../workspace';

/** Arguments for running without UI (tests, keybindings). */
export interface PipelineArgs {
  runs?: string[];
  name?: string;
  formats?: string;
}

function cli(context: vscode.ExtensionContext): string {
  return context.asAbsolutePath('dist/cli.js');
}

/** "DRAG: Build Corpus from PDFs": drag corpus build over corpus/pdfs, with per-file progress. */
export async function buildCorpusCommand(
  context: vscode.ExtensionContext,
  log: vscode.LogOutputChannel,
  force = false,
): Promise<number | null> {
  const root = workspaceRoot();
  const paths = corpusPaths(root, (await loadConfig(root)).config);
  if (!existsSync(paths.pdfDir))
    throw new Error(
      `no PDF folder at ${vscode.workspace.asRelativePath(paths.pdfDir)}: ` +
        'put the corpus PDFs there, or set corpus.pdfDir in drag.config.json',
    );
  const args = [
    ...['corpus', 'build', paths.pdfDir, '--out', paths.ocrFile, '--cache-dir', paths.cacheDir, '--json'],
    ...(force ? ['--force'] : []),
  ];
  const result = await runCliJob(cli(context), args, {
    title: 'DRAG: building the corpus',
    log,
    onEvent: (e, progress) => {
      if (e.type === 'file')
        progress.report({
          increment: 100 / Math.max(1, Number(e.total)),
          message: `${e.done}/${e.total} ${e.file}: ${e.status}`,
        });
      else if (e.type === 'indexing') progress.report({ message: 'building the search index' });
    },
  });
  const done = result.events.find((e) => (e as { type?: string }).type === 'done') as
    { pages?: number; failed?: Array<{ file: string; message: string }> } | undefined;
  if (result.code === 0 && done) void vscode.window.showInformationMessage(`DRAG: corpus built: ${done.pages} pages.`);
  else if (done?.failed?.length)
    void vscode.window.showWarningMessage(
      `DRAG: corpus built; ${done.failed.length} PDF(s) failed: ` +
        done.failed.map((f) => `${f.file} (${f.message})`).join('; '),
    );
  else if (!result.cancelled) {
    const choice = await vscode.window.showErrorMessage(
      'DRAG: building the corpus failed; see the DRAG Studio log (an OCR file made by another tool is left as it is).',
      'Rebuild Anyway',
      'Show Log',
    );
    if (choice === 'Show Log') log.show();
    if (choice === 'Rebuild Anyway') return buildCorpusCommand(context, log, true);
  }
  return result.code;
}

/**
 * "DRAG: Build Training Data…": drag process over the chosen runs (pairs mined across them),
 * writing processed.jsonl and the formats into datasets/<name>/, as a cancellable child process.
 */
export async function buildTrainingData(
  context: vscode.ExtensionContext,
  log: vscode.LogOutputChannel,
  args: PipelineArgs = {},
): Promise<{ dataset: string; code: number | null } | undefined> {
  const root = workspaceRoot();
  const runsDir = path.join(root, 'runs');
  const available = existsSync(runsDir)
    ? readdirSync(runsDir)
        .filter((d) => existsSync(path.join(runsDir, d, 'trajectories.jsonl')))
        .sort()
    : [];
  if (available.length === 0) throw new Error('no runs/*/trajectories.jsonl to build from: collect trajectories first');
  let runs = args.runs;
  if (!runs) {
    const picks = await vscode.window.showQuickPick(
      available.map((r) => ({ label: r, picked: true })),
      {
        canPickMany: true,
        title: 'Build training data from which runs? (pairs are mined across them)',
        ignoreFocusOut: true,
      },
    );
    if (!picks?.length) return undefined;
    runs = picks.map((p) => p.label);
  }
  const name =
    args.name ??
    (await vscode.window.showInputBox({
      title: 'Dataset name',
      value: `data-${new Date().toISOString().slice(0, 10)}`,
      ignoreFocusOut: true,
      validateInput: (v) => (/^[\w.-]+$/.test(v) ? null : 'letters, digits, . _ - only'),
    }));
  if (!name) return undefined;
  const dataset = path.join(root, 'datasets', name);
  const processed = path.join(dataset, 'processed.jsonl');
  // One pass (drag process writes the dataset too): the trajectories are parsed once.
  const processArgs = [
    'process',
    ...runs.flatMap((r) => ['--input', path.join(runsDir, r, 'trajectories.jsonl')]),
    ...['--output', processed, '--stats', path.join(dataset, 'process_stats.json')],
    ...['--output-dir', dataset, '--formats', args.formats ?? 'all'],
  ];
  const result = await runCliJob(cli(context), processArgs, { title: `DRAG: building ${name}`, log });
  if (result.code === 0) void vscode.window.showInformationMessage(`DRAG: training data in datasets/${name}/.`);
  else if (!result.cancelled)
    void vscode.window.showErrorMessage(
      `DRAG: building ${name} failed or skipped bad lines (they are named in the DRAG Studio log).`,
    );
  return { dataset, code: result.code };
}
