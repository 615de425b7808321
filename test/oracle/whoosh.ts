/** Runs the Whoosh oracle (Debian python3-whoosh) from tests and benchmarks. */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

export const WHOOSH_PYTHON = process.env.DRAG_WHOOSH_PYTHON ?? '/usr/bin/python3';
const SCRIPT = path.join(__dirname, 'whoosh_oracle.py');

/** Null when Whoosh can be run; otherwise why not. */
export function whooshUnavailable(): string | null {
  const r = spawnSync(WHOOSH_PYTHON, ['-c', 'import whoosh'], { encoding: 'utf8' });
  if (r.error) return `${WHOOSH_PYTHON} not found (${r.error.message})`;
  if (r.status !== 0) return `Whoosh is not importable by ${WHOOSH_PYTHON}: apt-get install python3-whoosh`;
  return null;
}

export interface OracleResult {
  query: string;
  parsed: string;
  results: Array<{ file: string; page_number: number; total_pages: number; score: number }>;
  ms: number;
}

export interface OracleStats {
  build_s: number | null;
  load_s: number;
  queries: number;
  p50_ms: number;
  p95_ms: number;
  peak_rss_mb: number;
}

export function runWhoosh(
  ocr: string,
  indexDir: string,
  queriesFile: string,
  outFile: string,
  topK: number,
  rebuild = false,
): { results: OracleResult[]; stats: OracleStats } {
  const args = [
    SCRIPT,
    '--ocr',
    ocr,
    '--index-dir',
    indexDir,
    '--queries',
    queriesFile,
    '--top-k',
    String(topK),
    '--out',
    outFile,
  ];
  if (rebuild) args.push('--rebuild');
  const stdout = execFileSync(WHOOSH_PYTHON, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const stats = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as OracleStats;
  const results = readFileSync(outFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as OracleResult);
  return { results, stats };
}
