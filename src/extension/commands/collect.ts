import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { checkEndpoint } from '../../core/agent/health';
import { SAMPLING_PRESETS } from '../../core/agent/sampling';
import { corpusPaths, loadConfig } from '../../core/workspace/layout';
import { runCliJob } from '../jobs/cliJob';
import { workspaceRoot } from '../workspace';
import { type CommandDeps, type Commands, objectArg } from './registry';

/** Arguments for running the command without UI (tests, other extensions, keybindings). */
export interface CollectArgs {
  agent?: 'keyword' | 'openai' | 'writer';
  writerModel?: string;
  endpoint?: string;
  baseUrl?: string;
  model?: string;
  preset?: string;
  limit?: number;
  concurrency?: number;
  questions?: string;
  runName?: string;
}

const secretKey = (endpoint: string) => `drag.apiKey.${endpoint}`;

/** "DRAG: Set API Key…": keys live in SecretStorage only, never in settings or files. */
export async function setApiKey(context: vscode.ExtensionContext): Promise<void> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  const config = folder ? (await loadConfig(folder.uri.fsPath)).config : {};
  const names = Object.keys(config.endpoints ?? {});
  const endpoint = names.length
    ? await vscode.window.showQuickPick([...names, 'default'], { title: 'API key for which endpoint?' })
    : 'default';
  if (!endpoint) return;
  const key = await vscode.window.showInputBox({
    title: `API key for ${endpoint}`,
    password: true,
    prompt: "Stored in VS Code's SecretStorage; passed to collection runs as DRAG_API_KEY.",
  });
  if (key === undefined) return;
  if (key) await context.secrets.store(secretKey(endpoint), key);
  else await context.secrets.delete(secretKey(endpoint));
  void vscode.window.showInformationMessage(
    key ? `DRAG: API key for ${endpoint} saved.` : `DRAG: API key for ${endpoint} removed.`,
  );
}

/**
 * "DRAG: Collect Trajectories…": the embedded keyword agent or an endpoint (checked first: server
 * up, model served, tool calling on), a model from /v1/models, a preset and a limit; runs
 * `drag collect` as a cancellable child process. The run appears in the Trajectories view and
 * grows live.
 */
export async function collectTrajectories(
  context: vscode.ExtensionContext,
  log: vscode.LogOutputChannel,
  initial: CollectArgs = {},
  mode: 'collect' | 'eval' = 'collect',
): Promise<{ runDir: string; code: number | null; cancelled: boolean } | undefined> {
  let args = initial;
  const root = workspaceRoot();
  const { config } = await loadConfig(root);
  const paths = corpusPaths(root, config);
  if (!existsSync(paths.ocrFile))
    throw new Error(
      `no corpus at ${vscode.workspace.asRelativePath(paths.ocrFile)}: build it with "drag corpus build" first`,
    );
  const endpoints = config.endpoints ?? {};
  let agent = args.agent;
  let endpointName = args.endpoint;
  if (!agent) {
    const modelsDir = path.join(root, 'models');
    const writers = existsSync(modelsDir)
      ? readdirSync(modelsDir)
          .filter((f) => f.endsWith('.json'))
          .sort()
      : [];
    const picks = [
      {
        label: '$(symbol-keyword) Embedded keyword agent',
        description: 'no model server needed',
        agent: 'keyword' as const,
        name: '',
      },
      ...writers.map((w) => ({
        label: `$(mortar-board) Local query writer ${w}`,
        description: 'trained with drag writer train',
        agent: 'writer' as const,
        name: w,
      })),
      ...Object.entries(endpoints).map(([name, e]) => ({
        label: `$(server) ${name}`,
        description: e.baseUrl,
        agent: 'openai' as const,
        name,
      })),
      {
        label: '$(link) Other OpenAI-compatible URL…',
        description: 'e.g. http://localhost:8001/v1',
        agent: 'openai' as const,
        name: '',
      },
    ];
    const pick = await vscode.window.showQuickPick(picks, {
      title: mode === 'eval' ? 'Evaluate which model?' : 'Collect trajectories with…',
      ignoreFocusOut: true,
    });
    if (!pick) return undefined;
    agent = pick.agent;
    if (pick.agent === 'writer') args = { ...args, writerModel: path.join(modelsDir, pick.name) };
    else endpointName = pick.name || undefined;
  }
  let baseUrl = args.baseUrl ?? (endpointName ? endpoints[endpointName]?.baseUrl : undefined);
  let model = args.model ?? (endpointName ? endpoints[endpointName]?.model : undefined);
  let apiKey: string | undefined;
  if (agent === 'openai') {
    if (!baseUrl)
      baseUrl = await vscode.window.showInputBox({
        title: 'OpenAI-compatible base URL',
        value: 'http://localhost:8001/v1',
        ignoreFocusOut: true,
      });
    if (!baseUrl) return undefined;
    const envName = endpointName ? endpoints[endpointName]?.apiKeyEnv : undefined;
    apiKey =
      (await context.secrets.get(secretKey(endpointName ?? 'default'))) ??
      (envName ? process.env[envName] : undefined) ??
      process.env.DRAG_API_KEY ??
      'abc123';
    let health = await checkEndpoint(baseUrl, apiKey, model);
    if (!model && health.models.length) {
      model =
        health.models.length === 1
          ? health.models[0]
          : await vscode.window.showQuickPick(health.models, { title: 'Model or LoRA adapter', ignoreFocusOut: true });
      if (!model) return undefined;
      health = await checkEndpoint(baseUrl, apiKey, model);
    }
    if (!health.ok) throw new Error(health.problems.join('; '));
  }
  const preset =
    args.preset ??
    (await vscode.window.showQuickPick(Object.keys(SAMPLING_PRESETS), {
      title: 'Sampling preset',
      placeHolder: 'default',
      ignoreFocusOut: true,
    }));
  if (!preset) return undefined;
  let limit = args.limit;
  if (limit === undefined && !args.preset) {
    const text = await vscode.window.showInputBox({
      title: 'How many questions? (empty: all)',
      ignoreFocusOut: true,
      validateInput: (v) => (v === '' || /^\d+$/.test(v) ? null : 'a whole number, or empty'),
    });
    if (text === undefined) return undefined;
    limit = text ? Number(text) : undefined;
  }
  let questions = args.questions
    ? path.resolve(root, args.questions)
    : config.questions
      ? path.resolve(root, config.questions)
      : undefined;
  if (!questions && !args.agent) {
    const picked = await vscode.window.showOpenDialog({
      title: "Question set (JSONL or JSON, DRAG's shapes)",
      canSelectMany: false,
      filters: { Questions: ['jsonl', 'json'] },
      defaultUri: vscode.Uri.file(root),
    });
    questions = picked?.[0]?.fsPath;
    if (!questions) return undefined;
  }
  if (!questions || !existsSync(questions)) throw new Error('no question set: set "questions" in drag.config.json');
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const agentName =
    agent === 'keyword'
      ? 'keyword'
      : agent === 'writer'
        ? path.basename(args.writerModel ?? 'writer', '.json')
        : (model ?? 'model');
  const runName = args.runName ?? `${stamp}-${agentName.replace(/[^\w.-]+/g, '_')}`;
  const runDir = path.join(root, mode === 'eval' ? 'evals' : 'runs', runName);
  const cliArgs = [
    mode,
    '--questions',
    questions,
    '--ocr',
    paths.ocrFile,
    '--pdf-dir',
    paths.pdfDir,
    '--cache-dir',
    paths.cacheDir,
    '--out',
    runDir,
    '--agent',
    agent,
    '--sampling-config',
    preset,
    '--concurrency',
    String(args.concurrency ?? vscode.workspace.getConfiguration('drag').get<number>('collect.concurrency', 8)),
    '--json',
  ];
  if (agent === 'openai') cliArgs.push('--base-url', baseUrl!, ...(model ? ['--model', model] : []));
  if (agent === 'writer') {
    if (!args.writerModel) throw new Error('no writer model: train one with "DRAG: Train Local Query Writer…"');
    cliArgs.push('--writer-model', args.writerModel);
  }
  if (limit !== undefined) cliArgs.push('--limit', String(limit));
  const result = await runCliJob(context.asAbsolutePath('dist/cli.js'), cliArgs, {
    title: `DRAG: ${mode === 'eval' ? 'evaluating' : 'collecting'} ${runName}`,
    log,
    env: apiKey ? { DRAG_API_KEY: apiKey } : {},
    onEvent: (e, progress) => {
      if (e.type === 'progress') {
        const total = Number(e.total) || 1;
        progress.report({
          increment: 100 / total,
          message:
            `${e.done}/${e.total} · GT found ${e.gtFound} · errors ${e.errors}` +
            `${e.etaSeconds != null ? ` · ETA ${Math.round(Number(e.etaSeconds))} s` : ''}`,
        });
      }
    },
  });
  const what = mode === 'eval' ? 'evaluation' : 'collection';
  if (result.cancelled)
    void vscode.window.showWarningMessage(
      `DRAG: ${what} ${runName} cancelled; what was collected is kept (--resume continues it).`,
    );
  else if (result.code !== 0)
    void vscode.window
      .showWarningMessage(`DRAG: ${what} ${runName} finished with errors; see the DRAG Studio log.`, 'Show Log')
      .then((c) => c && log.show());
  else void vscode.window.showInformationMessage(`DRAG: ${mode === 'eval' ? 'evaluated' : 'collected'} ${runName}.`);
  return { runDir, code: result.code, cancelled: result.cancelled };
}

/** Collection: trajectories from the keyword agent, a local writer or an endpoint; the endpoint's key. */
export function collectionCommands({ api, context, log }: CommandDeps): Commands {
  return {
    'drag.collectTrajectories': async (args?: CollectArgs) => {
      const result = await collectTrajectories(context, log, objectArg(args));
      if (result) await api.store.rescan();
      return result;
    },
    'drag.setApiKey': () => setApiKey(context),
  };
}
