import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { formatFieldPath, type LineError } from '../io/errors';
import { DragConfig } from '../schema/config';

/** The conventional layout of a DRAG workspace (DESIGN.md): works with no drag.config.json at all. */
export const CONVENTIONS = {
  configFile: 'drag.config.json',
  runsGlob: 'runs/*/trajectories.jsonl',
  ocrFile: 'corpus/ocr_output.jsonl',
  pdfDir: 'corpus/pdfs',
  cacheDir: 'corpus/.cache',
  evalsGlob: 'evals/*/',
  datasetsGlob: 'datasets/*/',
  curationLog: 'curation/decisions.jsonl',
} as const;

/** What drag demo writes into its folder; `drag demo --force` deletes exactly these before rebuilding. */
export const DEMO_OUTPUTS = [
  'questions.jsonl',
  'questions_train.jsonl',
  'questions_heldout.jsonl',
  'drag.config.json',
  'corpus',
  'runs',
  'datasets',
  'models',
  'evals',
];

/** Whether a folder holds a workspace an earlier drag demo made (its config and question files). */
export function isDemoWorkspace(dir: string): boolean {
  return DEMO_OUTPUTS.filter((f) => f.endsWith('.json') || f.endsWith('.jsonl')).every((f) =>
    existsSync(path.join(dir, f)),
  );
}

export interface LoadedConfig {
  config: DragConfig;
  /** Problems in drag.config.json; the defaults are used for what could not be read. */
  errors: LineError[];
  exists: boolean;
}

/** Finds the 1-based line of `"key"` for a field path's last key, so errors point somewhere useful. */
function lineOfKey(text: string, key: string | undefined): number {
  if (!key) return 1;
  const at = text.indexOf(`"${key}"`);
  if (at < 0) return 1;
  return text.slice(0, at).split('\n').length;
}

/** Reads `drag.config.json` from a workspace folder; a missing file means "all defaults". */
export async function loadConfig(workspace: string): Promise<LoadedConfig> {
  const file = path.join(workspace, CONVENTIONS.configFile);
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { config: {}, errors: [], exists: false };
    throw err;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return {
      config: {},
      errors: [{ file, line: 1, fieldPath: '', message: `invalid JSON: ${(err as Error).message}` }],
      exists: true,
    };
  }
  const parsed = DragConfig.safeParse(raw);
  if (parsed.success) return { config: parsed.data, errors: [], exists: true };
  return {
    config: {},
    exists: true,
    errors: parsed.error.issues.map((i) => ({
      file,
      line: lineOfKey(
        text,
        [...i.path].reverse().find((p): p is string => typeof p === 'string'),
      ),
      fieldPath: formatFieldPath(i.path),
      message: i.message,
    })),
  };
}

/** Trajectory file globs for a workspace: the config's `runs`, else the convention. */
export function trajectoryGlobs(config: DragConfig): string[] {
  return config.runs && config.runs.length > 0 ? config.runs : [CONVENTIONS.runsGlob];
}

export interface CorpusPaths {
  ocrFile: string;
  pdfDir: string;
  cacheDir: string;
}

/** Absolute corpus paths of a workspace: the config's, else the conventional ones. */
export function corpusPaths(workspace: string, config: DragConfig): CorpusPaths {
  const c = config.corpus ?? {};
  return {
    ocrFile: path.resolve(workspace, c.ocrFile ?? CONVENTIONS.ocrFile),
    pdfDir: path.resolve(workspace, c.pdfDir ?? CONVENTIONS.pdfDir),
    cacheDir: path.resolve(workspace, c.cacheDir ?? CONVENTIONS.cacheDir),
  };
}
