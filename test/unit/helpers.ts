import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');
export const FIXTURE_RUN = path.join(FIXTURES, 'workspace', 'runs', 'qwen-base', 'trajectories.jsonl');
export const BROKEN_RUN = path.join(FIXTURES, 'workspace', 'runs', 'broken', 'trajectories.jsonl');
/** The shared real corpus; CI always has it, a user's clone may not. */
export const SHARED_DATA = path.resolve(ROOT, '..', 'shared', 'data', 'financebench-mini');

/** A fresh temp folder per test, removed afterwards. */
export function useTempDir(): () => string {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'drag-test-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  return () => dir;
}
