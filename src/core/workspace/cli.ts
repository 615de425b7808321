import { existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { formatLineError, type LineError } from '../io/errors';
import type { DragConfig } from '../schema/config';
import { CONVENTIONS, corpusPaths, type CorpusPaths, loadConfig } from './layout';

/**
 * How the `drag` CLI meets a workspace: the folder holding drag.config.json (found from the current
 * directory or its parents, or given with --workspace) supplies the defaults of flags left out, and
 * endpoints by name. Explicit flags always win; paths in the config are relative to the workspace.
 */
export interface CliWorkspace {
  root: string;
  /** The config file (it may not exist when --workspace names a folder without one). */
  file: string;
  config: DragConfig;
  /** Problems in the config; its values are then not used (loadConfig falls back to the defaults). */
  errors: LineError[];
}

/** Words joined into lines of at most `width` characters, for help texts. */
function wrap(text: string, width = 96): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line].join('\n');
}

/**
 * The help paragraph of the commands that read the workspace: the agent's (collect, eval) or search's
 * (search, index).
 */
export function workspaceHelp(kind: 'agent' | 'search'): string {
  const flags =
    kind === 'agent'
      ? '--questions from "questions"; --ocr, --pdf-dir and --cache-dir from "corpus" (default ' +
        'corpus/ocr_output.jsonl, corpus/pdfs, corpus/.cache; with --ocr given, the PDFs and cache beside it); ' +
        '--top-k from "search.topK"; --max-iterations and --sampling-config from "agent"'
      : '--ocr and --cache-dir from "corpus" (default corpus/ocr_output.jsonl, corpus/.cache; with --ocr ' +
        'given, the cache beside it); --top-k from "search.topK"';
  return wrap(
    'In a workspace (the folder holding drag.config.json, found from the current folder or its parents, ' +
      `or --workspace DIR), flags left out come from drag.config.json: ${flags}. Paths there are relative ` +
      'to the workspace. Explicit flags always win.',
  );
}

/** How the model server is chosen, for collect and eval. */
export const ENDPOINT_HELP = `The model server: --base-url, --model and --api-key when given; else --endpoint NAME, the
endpoint of drag.config.json's "endpoints" (its baseUrl, model, and the key in the environment
variable its apiKeyEnv names); else VLLM_BASE_URL or OPENAI_BASE_URL, and DRAG_API_KEY,
VLLM_API_KEY or OPENAI_API_KEY, as the openai client reads them.`;

/** The nearest folder at or above `start` holding drag.config.json, or null. */
export function findWorkspaceRoot(start: string): string | null {
  let dir = path.resolve(start);
  for (;;) {
    if (existsSync(path.join(dir, CONVENTIONS.configFile))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/**
 * The workspace of a CLI run: `--workspace DIR` when given (it must be a folder; a missing config
 * there means the conventional layout), else the nearest drag.config.json from `cwd` up, else null.
 * Problems in the config go to `warn`, a line each.
 */
export async function openCliWorkspace(
  explicit: string | undefined,
  cwd: string,
  warn: (line: string) => void,
): Promise<CliWorkspace | null> {
  let root: string | null;
  if (explicit !== undefined) {
    root = path.resolve(cwd, explicit);
    if (!existsSync(root) || !statSync(root).isDirectory()) throw new Error(`--workspace ${explicit}: no such folder`);
  } else root = findWorkspaceRoot(cwd);
  if (!root) return null;
  const loaded = await loadConfig(root);
  const file = path.join(root, CONVENTIONS.configFile);
  // A broken config is never silently ignored: each problem, then what happens instead.
  for (const e of loaded.errors) warn(`warning: ${formatLineError(e)}`);
  if (loaded.errors.length) warn(`warning: ${file} is not used until it is fixed`);
  return { root, file, config: loaded.config, errors: loaded.errors };
}

/** The flag defaults a workspace gives (besides the question set and the corpus, resolved below). */
export interface WorkspaceDefaults {
  corpus: CorpusPaths;
  topK?: number;
  maxIterations?: number;
  samplingPreset?: string;
}

export function workspaceDefaults(ws: CliWorkspace): WorkspaceDefaults {
  const c = ws.config;
  return {
    corpus: corpusPaths(ws.root, c),
    topK: c.search?.topK,
    maxIterations: c.agent?.maxIterations,
    samplingPreset: c.agent?.samplingPreset,
  };
}

/**
 * The OCR file a command uses: the flag, else the workspace's (the config's corpus.ocrFile or the
 * conventional corpus/ocr_output.jsonl), which must then exist. `pdfDir` and `cacheDir` come from the
 * workspace only when the OCR file does: a corpus given by flag keeps its own neighbours.
 */
export function resolveCorpus(
  flags: { ocr?: string; pdfDir?: string; cacheDir?: string },
  ws: CliWorkspace | null,
): { ocr?: string; pdfDir?: string; cacheDir?: string } {
  if (flags.ocr !== undefined || !ws) return flags;
  const corpus = corpusPaths(ws.root, ws.config);
  if (!existsSync(corpus.ocrFile)) {
    const field = ws.config.corpus?.ocrFile ? `corpus.ocrFile` : `corpus.ocrFile (default ${CONVENTIONS.ocrFile})`;
    throw new Error(
      `${ws.file}: ${field}: no such file: ${corpus.ocrFile} (build it with drag corpus build, or give --ocr)`,
    );
  }
  return { ocr: corpus.ocrFile, pdfDir: flags.pdfDir ?? corpus.pdfDir, cacheDir: flags.cacheDir ?? corpus.cacheDir };
}

/** The question set: the flag, else the config's `questions`, which must then exist. */
export function resolveQuestions(flag: string | undefined, ws: CliWorkspace | null): string | undefined {
  if (flag !== undefined || !ws?.config.questions) return flag;
  const file = path.resolve(ws.root, ws.config.questions);
  if (!existsSync(file)) throw new Error(`${ws.file}: questions: no such file: ${file}`);
  return file;
}

export interface EndpointChoice {
  baseUrls: string[];
  model?: string;
  apiKey?: string;
  /** Where each value came from, for the run's log line. */
  notes: string[];
}

type Env = Record<string, string | undefined>;
const envValue = (env: Env, name: string): string | undefined => {
  const v = env[name]?.trim();
  return v ? v : undefined;
};

/**
 * The model server of a run. Each value: the flag, else the named endpoint of drag.config.json
 * (`--endpoint gpu`: its baseUrl, model and the env var its apiKeyEnv names), else the environment
 * (VLLM_BASE_URL or OPENAI_BASE_URL; DRAG_API_KEY, VLLM_API_KEY or OPENAI_API_KEY), as the openai
 * client reads OPENAI_BASE_URL and OPENAI_API_KEY when it is given nothing.
 */
export function resolveEndpoint(
  flags: { baseUrls?: string[]; model?: string; apiKey?: string; endpoint?: string },
  ws: CliWorkspace | null,
  env: Env,
): EndpointChoice {
  const notes: string[] = [];
  let endpoint: { baseUrl: string; model?: string; apiKeyEnv?: string } | undefined;
  if (flags.endpoint !== undefined) {
    if (!ws)
      throw new Error(
        `--endpoint ${flags.endpoint}: no ${CONVENTIONS.configFile} in this folder or its parents ` +
          '(give --workspace DIR)',
      );
    const known = Object.keys(ws.config.endpoints ?? {});
    endpoint = ws.config.endpoints?.[flags.endpoint];
    if (!endpoint)
      throw new Error(
        `${ws.file}: endpoints.${flags.endpoint}: no such endpoint ` +
          `(known: ${known.length ? known.join(', ') : 'none'}` +
          `${ws.errors.length ? `; the file has errors, see above` : ''})`,
      );
  }
  const envUrl = envValue(env, 'VLLM_BASE_URL') ?? envValue(env, 'OPENAI_BASE_URL');
  const baseUrls = flags.baseUrls?.length ? flags.baseUrls : endpoint ? [endpoint.baseUrl] : envUrl ? [envUrl] : [];
  let apiKey = flags.apiKey;
  if (apiKey === undefined && endpoint?.apiKeyEnv) {
    apiKey = envValue(env, endpoint.apiKeyEnv);
    if (apiKey === undefined)
      notes.push(
        `${ws!.file}: endpoints.${flags.endpoint}.apiKeyEnv: ${endpoint.apiKeyEnv} is not set; ` +
          'trying DRAG_API_KEY, VLLM_API_KEY, OPENAI_API_KEY',
      );
  }
  apiKey ??= envValue(env, 'DRAG_API_KEY') ?? envValue(env, 'VLLM_API_KEY') ?? envValue(env, 'OPENAI_API_KEY');
  return { baseUrls, model: flags.model ?? endpoint?.model, apiKey, notes };
}
