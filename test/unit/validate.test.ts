import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { runCli } from '../../src/cli/main';
import { BROKEN_RUN, FIXTURE_RUN, ROOT, SHARED_DATA, useTempDir } from './helpers';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(
    argv,
    {
      stdout: (t) => {
        out += t;
      },
      stderr: (t) => {
        err += t;
      },
    },
    new AbortController().signal,
  );
  return { code, out, err };
}

describe('drag validate', () => {
  const tmp = useTempDir();

  it('exits 0 and reports the kind for a valid DRAG trajectories file', async () => {
    const r = await cli('validate', FIXTURE_RUN);
    assert.equal(r.code, 0);
    assert.equal(r.out, '');
    assert.match(r.err, /trajectories, 8 valid records, no problems/);
  });

  it('names every bad line as file:line: field: message and exits 1', async () => {
    const r = await cli('validate', BROKEN_RUN);
    assert.equal(r.code, 1);
    const lines = r.out.trim().split('\n');
    assert.equal(lines.length, 5);
    assert.match(
      lines[0],
      new RegExp(`^${BROKEN_RUN.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: \\(line\\): invalid JSON`),
    );
    assert.match(lines[1], /:3: question: Invalid input: expected string, received number$/);
    assert.match(
      lines[2],
      /:6: iterations\[1\]\.results\[0\]\.page_number: Invalid input: expected number, received string$/,
    );
    assert.match(lines[3], /:7: \(line\): expected a JSON object, found an array$/);
    assert.match(lines[4], /:8: \(line\): truncated last line/);
  });

  it('prints a JSON report with --json', async () => {
    const r = await cli('validate', BROKEN_RUN, '--json');
    const report = JSON.parse(r.out) as {
      kind: string;
      records: number;
      errors: Array<{ line: number; fieldPath: string }>;
    };
    assert.equal(report.kind, 'trajectories');
    assert.equal(report.records, 2);
    assert.deepEqual(
      report.errors.map((e) => e.line),
      [2, 3, 6, 7, 8],
    );
  });

  it('checks against a forced kind', async () => {
    const r = await cli('validate', FIXTURE_RUN, '--kind', 'ocr');
    assert.equal(r.code, 1);
    assert.match(r.out, /:1: file: /);
  });

  it('validates an evaluation summary JSON', async () => {
    const file = path.join(tmp(), 'eval_base_summary.json');
    writeFileSync(file, JSON.stringify({ model: 'm', total_questions: 3, hit_at_1: 'x' }, null, 2));
    const r = await cli('validate', file);
    assert.equal(r.code, 1);
    assert.match(r.out, /hit_at_1: Invalid input: expected number/);
  });

  it('says which records it cannot classify', async () => {
    const file = path.join(tmp(), 'x.jsonl');
    writeFileSync(file, '{"foo":1}\n');
    const r = await cli('validate', file);
    assert.equal(r.code, 1);
    assert.match(r.out, /cannot tell the file kind.*--kind/);
  });

  it('exits 2 on usage errors and 1 on a missing file', async () => {
    assert.equal((await cli('validate')).code, 2);
    assert.equal((await cli('validate', 'x', '--kind', 'pdf')).code, 2);
    const missing = await cli('validate', path.join(tmp(), 'nope.jsonl'));
    assert.equal(missing.code, 1);
    assert.match(missing.err, /no such file/);
  });

  it('validates the shared financebench OCR and question files', async function () {
    if (!existsSync(SHARED_DATA)) {
      console.log(`      skipped: ${SHARED_DATA} is absent`);
      this.skip();
    }
    const ocr = await cli('validate', path.join(SHARED_DATA, 'ocr_output.jsonl'));
    assert.equal(ocr.code, 0, ocr.out);
    assert.match(ocr.err, /ocr, 1003 valid records/);
    const questions = await cli('validate', path.join(SHARED_DATA, 'questions.jsonl'));
    assert.equal(questions.code, 0, questions.out);
    assert.match(questions.err, /questions, 30 valid records/);
  });

  it('works as the built dist/cli.js binary with exit codes', function () {
    const bin = path.join(ROOT, 'dist', 'cli.js');
    if (!existsSync(bin)) {
      console.log('      skipped: dist/cli.js is not built (npm run build)');
      this.skip();
    }
    assert.match(execFileSync(process.execPath, [bin, '--help'], { encoding: 'utf8' }), /validate/);
    const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(execFileSync(process.execPath, [bin, '--version'], { encoding: 'utf8' }).trim(), version);
    const r = spawnSync(process.execPath, [bin, 'validate', BROKEN_RUN], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.equal(r.stdout.trim().split('\n').length, 5);
  });
});
