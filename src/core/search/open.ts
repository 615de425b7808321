import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';
import type { LineError } from '../io/errors';
import { WhooshCompatibleEngine } from './engine';
import { loadOrBuildIndex } from './index';

export interface OpenedEngine {
  engine: WhooshCompatibleEngine;
  source: 'cache' | 'built';
  cacheFile: string;
  errors: LineError[];
  ms: number;
  /** Set when the preferred cache folder was not writable and another was used. */
  fallbackNote?: string;
}

/** The conventional cache folder for an OCR file: `<its folder>/.cache` (corpus/.cache in a workspace). */
export function defaultCacheDir(ocrFile: string): string {
  return path.join(path.dirname(path.resolve(ocrFile)), '.cache');
}

/** Per-user fallback when the corpus folder is read-only (a shared data set, say). */
export function userCacheDir(): string {
  return path.join(process.env.XDG_CACHE_HOME || path.join(homedir(), '.cache'), 'drag-studio');
}

function isReadOnlyFolder(dir: string): boolean {
  try {
    return (statSync(dir).mode & 0o222) === 0;
  } catch {
    return false;
  }
}

/** Opens the search engine for an OCR file, from the cache when the file is unchanged. */
export async function openSearchEngine(
  ocrFile: string,
  options: { cacheDir?: string; rebuild?: boolean; signal?: AbortSignal; onProgress?: (pages: number) => void } = {},
): Promise<OpenedEngine> {
  const started = performance.now();
  let cacheDir = options.cacheDir ?? defaultCacheDir(ocrFile);
  let fallbackNote: string | undefined;
  if (!options.cacheDir && isReadOnlyFolder(path.dirname(path.resolve(ocrFile)))) {
    // A read-only data set (mode bits, which even root should respect): never write beside it.
    fallbackNote = `${path.dirname(path.resolve(ocrFile))} is read-only; caching the index in ${userCacheDir()}`;
    cacheDir = userCacheDir();
  }
  let loaded;
  try {
    loaded = await loadOrBuildIndex(ocrFile, cacheDir, options);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (options.cacheDir || !(code === 'EACCES' || code === 'EROFS' || code === 'EPERM')) throw err;
    const fallback = userCacheDir();
    fallbackNote = `${cacheDir} is not writable; caching the index in ${fallback}`;
    loaded = await loadOrBuildIndex(ocrFile, fallback, options);
  }
  return {
    engine: new WhooshCompatibleEngine(loaded.index),
    source: loaded.source,
    cacheFile: loaded.cacheFile,
    errors: loaded.errors,
    ms: performance.now() - started,
    fallbackNote,
  };
}
