import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  cancelJob,
  decideState,
  fetchFromJob,
  jobStatus,
  listJobs,
  readJob,
  statusScript,
  submitJob,
  wrapperScript,
} from '../../src/core/jobs/engine';
import { monitorSnapshot, parseNvidiaSmi, parseTrainerLog } from '../../src/core/jobs/monitor';
import { shExports, shJoin, shQuote } from '../../src/core/jobs/quote';
import { HostError, type HostConfig, SshTransport } from '../../src/core/jobs/transport';
import { runCli } from '../../src/cli/main';
import { ROOT, useTempDir } from './helpers';
import { loadTestServices, SERVICES_FILE } from '../helpers/services.cjs';

/**
 * Remote jobs against real services started by scripts/start-test-services.sh (run by .ci/run):
 * Debian's sshd on 127.0.0.1 with checked host keys, and a single-node SLURM. A missing service
 * skips its tests with the reason printed.
 */
const services = loadTestServices();
const CLI = path.join(ROOT, 'dist', 'cli.js');

function need(ctx: Mocha.Context, what: 'ssh' | 'slurm') {
  if (!services?.[what]) {
    const service = what === 'ssh' ? 'sshd on 127.0.0.1' : 'single-node SLURM';
    const why = services ? `${SERVICES_FILE} exists but the service does not answer` : `${SERVICES_FILE} is missing`;
    console.log(`      skipped: no ${service} (run scripts/start-test-services.sh as root; ${why})`);
    ctx.skip();
  }
  process.env.DRAG_SSH_CONFIG = services!.sshConfig;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(workspace: string, id: string, states: string[], timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const s = await jobStatus(workspace, id);
    if (states.includes(s.state)) return s;
    if (Date.now() > until)
      throw new Error(`job ${id} still ${s.state} (${s.reason}) after ${timeoutMs} ms, wanted ${states.join('|')}`);
    await sleep(200);
  }
}

function cli(argv: string[]) {
  let out = '';
  let err = '';
  return runCli(
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
  ).then((code) => ({ code, out, err }));
}

/** Processes whose command line contains `marker` (the remote and local host are this machine). */
function processesWith(marker: string): string[] {
  return spawnSync('ps', ['-eo', 'pid=,stat=,args='], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((l) => l.includes(marker) && !/\sZ/.test(l.slice(0, 16)) && !l.includes('ps -eo'));
}

const NASTY = [
  "it's a file",
  'with "double" quotes',
  '$(touch /tmp/drag-pwned)',
  '`id`',
  'new\nline',
  '*.json',
  'tab\there',
  '',
  '-n',
  '~/home',
  'a;b|c&d',
];

describe('jobs: shell quoting (one function for every remote command line)', () => {
  it('gives bash back exactly the words it was given', () => {
    const r = spawnSync('bash', ['-c', `printf '%s\\0' ${NASTY.map(shQuote).join(' ')}`], { encoding: 'utf8' });
    assert.deepEqual(r.stdout.split('\0').slice(0, -1), NASTY);
    assert.equal(existsSync('/tmp/drag-pwned'), false);
  });
  it('leaves plain words alone, refuses NUL and bad variable names', () => {
    assert.equal(
      shJoin(['python', '-m', 'drag_trainer', '--lr=2e-4', 'a/b.jsonl']),
      'python -m drag_trainer --lr=2e-4 a/b.jsonl',
    );
    assert.throws(() => shQuote('a\0b'), /NUL/);
    assert.throws(() => shExports({ 'A B': '1' }), /invalid environment variable name/);
    assert.equal(shExports({ HF_HOME: "/data/hf cache's" }), `export HF_HOME='/data/hf cache'\\''s'\n`);
  });
  it('wraps a command so that it records pid, exit code and log', () => {
    const w = wrapperScript('/r/job 1', ['echo', 'a b'], { env: { X: '1' } });
    assert.match(w, /cd '\/r\/job 1' \|\| exit 97/);
    assert.match(w, /export X=1\necho 'a b' >> job\.log 2>&1 < \/dev\/null/);
  });
});

describe('jobs: deciding the state', () => {
  it('asks whether the job still runs before reading its exit code (a job ending in between is not "lost")', () => {
    // Found by a CI run: a SLURM job that finished between the two reads was reported failed.
    const base = {
      version: 2 as const,
      id: 'j',
      name: 'j',
      host: 'h',
      hostConfig: { workdir: '/w', launcher: 'ssh' as const },
      remoteDir: '/w/j',
      command: ['true'],
      uploads: [],
      submittedAt: '2026-11-26T03:15:00.000Z',
      meta: { kind: 'command' as const },
    };
    for (const record of [base, { ...base, slurmJobId: '42' }]) {
      const script = statusScript(record);
      const exitRead = script.indexOf('cat exit_code');
      assert.ok(exitRead > 0 && script.indexOf('alive "$(cat pid)"') < exitRead);
      if (record === base) continue;
      assert.ok(script.indexOf('squeue') < exitRead && script.indexOf('scontrol') < exitRead);
    }
  });

  // Time is passed in: the verdicts below never depend on when or how slowly the suite runs.
  const submitted = Date.parse('2026-11-26T03:15:00Z');
  const soon = submitted + 5_000;
  const rec = { id: 'j', submittedAt: new Date(submitted).toISOString() };
  const kv = (o: Record<string, string>) => new Map(Object.entries(o));
  it('exit codes: 0 succeeded, else failed; cancelled marker wins over a non-zero code', () => {
    assert.equal(decideState(rec, kv({ exit_code: '0' }), soon).state, 'succeeded');
    assert.deepEqual(decideState(rec, kv({ exit_code: '3' }), soon), {
      state: 'failed',
      exitCode: 3,
      reason: 'exit code 3',
    });
    assert.equal(decideState(rec, kv({ exit_code: '143', cancelled: '1' }), soon).state, 'cancelled');
  });
  it('ssh: alive is running, a dead process without exit code failed, no pid yet is queued only for a minute', () => {
    assert.equal(decideState(rec, kv({ has_pid: '1', alive: '1' }), soon).state, 'running');
    assert.match(decideState(rec, kv({ has_pid: '1' }), soon).reason!, /without an exit code/);
    assert.equal(decideState(rec, kv({}), soon).state, 'queued');
    assert.equal(decideState(rec, kv({}), submitted + 120_000).state, 'failed');
    assert.equal(decideState(rec, kv({ missing: '1' }), soon).state, 'failed');
  });
  it("slurm: PENDING queued, RUNNING running, gone without exit code failed with SLURM's state", () => {
    const s = { ...rec, slurmJobId: '7' };
    assert.equal(decideState(s, kv({ slurm_state: 'PENDING' }), soon).state, 'queued');
    assert.equal(decideState(s, kv({ slurm_state: 'RUNNING' }), soon).state, 'running');
    assert.deepEqual(decideState(s, kv({ slurm_state: '', slurm_final: 'TIMEOUT' }), soon), {
      state: 'failed',
      exitCode: null,
      reason: 'SLURM: TIMEOUT',
    });
    assert.equal(decideState(s, kv({ slurm_state: '', slurm_final: 'CANCELLED' }), soon).state, 'cancelled');
  });
  it('a failed setup line or environment check reads in words, with the node', () => {
    const report = JSON.stringify({
      packages: { torch: null, transformers: '5.17.0', peft: null },
      problems: ["missing packages: pip install 'torch>=2.4' 'peft>=0.17'"],
      ok: false,
    });
    assert.deepEqual(
      decideState(rec, kv({ exit_code: '3', check_node: 'n1', check_what: 'check', check_report: report }), soon),
      {
        state: 'failed',
        exitCode: 3,
        reason: 'environment check failed on node n1: torch is not importable; peft is not importable',
      },
    );
    assert.equal(
      decideState(
        rec,
        kv({ exit_code: '3', check_node: 'n2', check_what: 'setup line 1 failed: module load cuda' }),
        soon,
      ).reason,
      'environment check failed on node n2: setup line 1 failed: module load cuda',
    );
    assert.match(
      decideState(
        rec,
        kv({ exit_code: '3', check_node: 'n1', check_what: 'check', check_err: 'python3.12: command not found' }),
        soon,
      ).reason!,
      /on node n1: the Python interpreter was not found/,
    );
  });
});

describe('jobs over SSH (real sshd on 127.0.0.1)', function () {
  this.timeout(90_000);
  const tmp = useTempDir();
  let host: HostConfig;
  let ws: string;
  beforeEach(function () {
    need(this, 'ssh');
    ws = tmp();
    host = { ssh: services!.sshHost, workdir: path.join(tmp(), "remote work dir's"), launcher: 'ssh' };
    writeFileSync(
      path.join(ws, 'drag.config.json'),
      JSON.stringify({
        hosts: {
          box: host,
          cluster: { ssh: services!.sshHost, workdir: path.join(tmp(), 'slurm-jobs'), launcher: 'slurm' },
        },
      }),
    );
  });

  it('runs a command detached, reports progress from trainer_log.jsonl, keeps the log and the exit code', async () => {
    writeFileSync(path.join(ws, NASTY[0]!), 'uploaded content\n');
    // The job blocks until the test creates "go" in its folder: it is certainly seen running first.
    const script =
      'cat "$1"; printf "%s|" "$@"; echo; ' +
      'for i in 1 2 3; do ' +
      'echo "{\\"current_steps\\": $i, \\"total_steps\\": 3, \\"loss\\": 0.$i}" >> trainer_log.jsonl; done; ' +
      'while [ ! -e go ]; do sleep 0.1; done; exit 3';
    const job = await submitJob({
      workspace: ws,
      hostName: 'box',
      host,
      command: ['bash', '-c', script, 'x', ...NASTY],
      uploads: [path.join(ws, NASTY[0]!)],
    });
    assert.match(job.remoteDir, /remote work dir's\//);
    const running = await waitFor(ws, job.id, ['running']);
    assert.equal(running.exitCode, null);
    writeFileSync(path.join(job.remoteDir, 'go'), '');
    const done = await waitFor(ws, job.id, ['failed', 'succeeded']);
    assert.deepEqual([done.state, done.exitCode], ['failed', 3]);
    assert.deepEqual(done.progress, { current_steps: 3, total_steps: 3, loss: 0.3 });
    const logs = await cli(['jobs', 'logs', job.id, '--workspace', ws]);
    assert.equal(logs.out, `uploaded content\n${NASTY.join('|')}|\n`);
    assert.equal(existsSync('/tmp/drag-pwned'), false);
    // a fresh CLI process reattaches from job.json alone
    const st = await cli(['jobs', 'status', job.id, '--json', '--workspace', ws]);
    assert.equal(st.code, 1);
    assert.equal(JSON.parse(st.out).exitCode, 3);
  });

  it("logs --follow streams until the end and exits with the job's exit code", async () => {
    const sub = await cli([
      'jobs',
      'submit',
      '--host',
      'box',
      '--workspace',
      ws,
      '--json',
      '--',
      'bash',
      '-c',
      'for i in 1 2 3; do echo line $i; sleep 0.3; done; exit 5',
    ]);
    assert.equal(sub.code, 0, sub.err);
    const { id } = JSON.parse(sub.out) as { id: string };
    const follow = await cli(['jobs', 'logs', id, '--follow', '--workspace', ws]);
    assert.equal(follow.out, 'line 1\nline 2\nline 3\n');
    assert.equal(follow.code, 5);
  });

  it('survives the client: the submitting process is killed, a new one sees the job finish', async function () {
    if (!existsSync(CLI)) {
      console.log('      skipped: dist/cli.js is not built (npm run build)');
      this.skip();
    }
    const child = spawn(
      process.execPath,
      [
        CLI,
        'jobs',
        'submit',
        '--host',
        'box',
        '--workspace',
        ws,
        '--json',
        '--',
        'bash',
        '-c',
        'sleep 2; echo survived > result.txt',
      ],
      { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await new Promise((r) => child.on('close', r));
    const { id } = JSON.parse(out) as { id: string };
    const done = await waitFor(ws, id, ['succeeded', 'failed']);
    assert.equal(done.state, 'succeeded');
    const fetched = await fetchFromJob(ws, id, 'result.txt', path.join(ws, 'jobs', id, 'files'));
    assert.equal(readFileSync(fetched, 'utf8'), 'survived\n');
    const ls = await cli(['jobs', 'ls', '--json', '--workspace', ws]);
    assert.deepEqual(
      (JSON.parse(ls.out) as { id: string; state: string }[]).map((j) => [j.id, j.state]),
      [[id, 'succeeded']],
    );
  });

  it('cancel kills the whole process group, children included', async () => {
    const marker = `drag-cancel-${process.pid}-${Date.now()}`;
    const job = await submitJob({
      workspace: ws,
      hostName: 'box',
      host,
      command: ['bash', '-c', `sleep 300 & sleep 301; wait # ${marker}`],
    });
    await waitFor(ws, job.id, ['running']);
    assert.ok(processesWith(marker).length >= 1, 'the job should be running');
    const s = await cancelJob(ws, job.id);
    assert.equal(s.state, 'cancelled');
    await sleep(300);
    assert.deepEqual(processesWith(marker), []);
    assert.equal((await readJob(ws, job.id)).last?.state, 'cancelled');
  });

  it('uploads and fetches with scp where there is no rsync, odd names included', async () => {
    const name = 'data set\'s "v1" $(x).jsonl';
    writeFileSync(path.join(ws, name), 'line\n');
    process.env.DRAG_NO_RSYNC = '1';
    try {
      const job = await submitJob({
        workspace: ws,
        hostName: 'box',
        host,
        command: ['bash', '-c', 'cat "$1" > "copy of $1"', 'x', name],
        uploads: [path.join(ws, name)],
      });
      assert.equal((await waitFor(ws, job.id, ['succeeded', 'failed'])).state, 'succeeded');
      const got = await fetchFromJob(ws, job.id, `copy of ${name}`, path.join(ws, 'fetched'));
      assert.equal(readFileSync(got, 'utf8'), 'line\n');
    } finally {
      delete process.env.DRAG_NO_RSYNC;
    }
  });

  it('says what is missing when a host has launcher ssh but no ssh alias', async () => {
    await assert.rejects(
      submitJob({ workspace: ws, hostName: 'x', host: { workdir: '/tmp/x', launcher: 'ssh' }, command: ['true'] }),
      /launcher "ssh" needs "ssh"/,
    );
  });

  it("clean deletes a finished job's folder on the host and keeps the record; a running job is refused", async () => {
    const running = await submitJob({ workspace: ws, hostName: 'box', host, command: ['sleep', '30'] });
    await waitFor(ws, running.id, ['running']);
    const refused = await cli(['jobs', 'clean', running.id, '--workspace', ws]);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /is running: cancel it before deleting its files/);
    assert.ok(existsSync(running.remoteDir));
    await cancelJob(ws, running.id);
    const r = await cli(['jobs', 'clean', running.id, '--workspace', ws]);
    assert.equal(r.code, 0, r.err);
    assert.equal(existsSync(running.remoteDir), false);
    assert.equal(existsSync(path.dirname(running.remoteDir)), true);
    assert.ok(typeof (await readJob(ws, running.id)).meta.remoteCleanedAt === 'string');
  });

  it("shares one SSH connection between calls (ControlMaster), unless the user's config already does", async () => {
    const t = new SshTransport(services!.sshHost);
    const t0 = performance.now();
    assert.equal((await t.run('echo one\n')).stdout, 'one\n');
    const first = performance.now() - t0;
    const controlPath = (await t.muxOptions()).find((o) => o.startsWith('ControlPath='))!;
    assert.match(controlPath, /^ControlPath=.*drag-studio\/ssh\/%C$/);
    const check = spawnSync('ssh', ['-F', services!.sshConfig, '-o', controlPath, '-O', 'check', services!.sshHost], {
      encoding: 'utf8',
    });
    assert.equal(check.status, 0, check.stderr);
    const t1 = performance.now();
    for (let i = 0; i < 5; i++) assert.equal((await t.run(`echo ${i}\n`)).stdout, `${i}\n`);
    console.log(
      `      first call ${first.toFixed(0)} ms (opens the master), ` +
        `then ${((performance.now() - t1) / 5).toFixed(0)} ms per call`,
    );
    // a config that sets its own ControlPath is left alone
    const own = path.join(tmp(), 'own_config');
    const config = readFileSync(services!.sshConfig, 'utf8');
    writeFileSync(own, config.replace('ControlMaster no', `ControlMaster auto\n  ControlPath ${tmp()}/cm-%C`));
    process.env.DRAG_SSH_CONFIG = own;
    try {
      assert.deepEqual(await new SshTransport(services!.sshHost).muxOptions(), []);
    } finally {
      process.env.DRAG_SSH_CONFIG = services!.sshConfig;
    }
  });

  it('never accepts an unknown host key', async () => {
    const unknown: HostConfig = { ...host, ssh: services!.sshUnknownKeyHost };
    await assert.rejects(
      submitJob({ workspace: ws, hostName: 'unknown', host: unknown, command: ['true'] }),
      (err: Error) => err instanceof HostError && /host key is not known or has changed/.test(err.message),
    );
    assert.equal(readFileSync(path.join(path.dirname(services!.sshConfig), 'empty_known_hosts'), 'utf8'), '');
  });

  it('names the configured hosts when --host is wrong', async () => {
    const r = await cli(['jobs', 'submit', '--host', 'nope', '--workspace', ws, '--', 'true']);
    assert.equal(r.code, 2);
    assert.match(r.err, /no host "nope" .* \(configured: box, cluster\)/);
  });

  const uploadTitle =
    'drag train uploads the dataset and the trainer, checks the host, and records a failed check without starting';
  it(uploadTitle, async function () {
    const ds = path.join(ws, 'datasets', 'curated');
    mkdirSync(ds, { recursive: true });
    writeFileSync(
      path.join(ds, 'trl_sft_train.jsonl'),
      `${JSON.stringify({
        messages: [
          { role: 'user', content: 'q' },
          { role: 'assistant', content: '<search>a</search>' },
        ],
      })}\n`,
    );
    const probe = spawnSync('python3', ['-c', 'import torch, transformers, peft'], { encoding: 'utf8' });
    const r = await cli([
      'train',
      'sft',
      '--host',
      'box',
      '--dataset',
      'datasets/curated',
      '--workspace',
      ws,
      '--epochs',
      '1',
      '--',
      '--mask-strategy',
      'search-only',
    ]);
    const { jobs } = await listJobs(ws);
    assert.equal(jobs.length, 1);
    const job = jobs[0]!;
    assert.deepEqual(job.command.slice(0, 6), ['env', 'PYTHONPATH=trainer', 'python3', '-m', 'drag_trainer', 'sft']);
    assert.ok(
      job.command.includes('curated/trl_sft_train.jsonl') &&
        job.command.includes('search-only') &&
        job.command.join(' ').includes('--epochs 1'),
    );
    assert.ok(existsSync(path.join(job.remoteDir, 'trainer', 'drag_trainer', '__init__.py')));
    assert.ok(existsSync(path.join(job.remoteDir, 'curated', 'trl_sft_train.jsonl')));
    if (probe.status === 0) {
      console.log('      (this host has torch: the check passed only if it also has a CUDA GPU)');
      return;
    }
    assert.equal(r.code, 1);
    assert.match(r.err, /is not ready for training: torch is not importable; transformers is not importable/);
    assert.equal(job.last?.state, 'failed');
    assert.match(job.last!.reason!, /^not started: /);
    assert.equal(existsSync(path.join(job.remoteDir, 'run.sh')), false);
  });
  it("drag train dpo --from-job continues a finished SFT job's adapter on its host, with its base model", async () => {
    const ds = path.join(ws, 'datasets', 'curated');
    mkdirSync(ds, { recursive: true });
    const turn = (q: string) => [{ role: 'assistant', content: `<search>${q}</search>` }];
    writeFileSync(
      path.join(ds, 'trl_dpo_train.jsonl'),
      `${JSON.stringify({ prompt: [{ role: 'user', content: 'q' }], chosen: turn('a'), rejected: turn('b') })}\n`,
    );
    const sft = async (makeAdapter: boolean) => {
      const job = await submitJob({
        workspace: ws,
        hostName: 'box',
        host,
        name: 'sft',
        command: ['bash', '-c', makeAdapter ? 'mkdir -p out/final && echo {} > out/final/adapter_config.json' : 'true'],
        meta: { kind: 'train', task: 'sft', dataset: 'datasets/curated', model: 'Qwen/Qwen2.5-VL-3B-Instruct' },
      });
      assert.equal((await waitFor(ws, job.id, ['succeeded', 'failed'])).state, 'succeeded');
      return job;
    };
    const source = await sft(true);
    // no --host: the adapter's host; no --model: the adapter's base model
    const r = await cli([
      'train',
      'dpo',
      '--dataset',
      'datasets/curated',
      '--workspace',
      ws,
      '--from-job',
      source.id,
      '--no-check',
      '--json',
    ]);
    assert.equal(r.code, 0, r.err);
    const started = JSON.parse(r.out) as { id: string; host: string; command: string[] };
    assert.equal(started.host, 'box');
    const args = started.command.join(' ');
    assert.ok(args.includes(`--sft-adapter ${source.remoteDir}/out/final`), args);
    assert.ok(args.includes('--model Qwen/Qwen2.5-VL-3B-Instruct'), args);
    const startedMeta = (await readJob(ws, started.id)).meta;
    assert.equal(startedMeta.kind === 'train' && startedMeta.fromJob, source.id);

    const wrongHost = await cli([
      'train',
      'dpo',
      '--host',
      'cluster',
      '--dataset',
      'datasets/curated',
      '--workspace',
      ws,
      '--from-job',
      source.id,
      '--no-check',
    ]);
    assert.equal(wrongHost.code, 2);
    assert.match(wrongHost.err, /was trained on host "box", where its adapter is: train with --host box/);
    const withSft = await cli([
      'train',
      'sft',
      '--dataset',
      'datasets/curated',
      '--workspace',
      ws,
      '--from-job',
      source.id,
    ]);
    assert.equal(withSft.code, 2);
    assert.match(withSft.err, /use it with "drag train dpo"/);

    // a finished job without an adapter: recorded as not started, nothing launched
    const empty = await sft(false);
    const missing = await cli([
      'train',
      'dpo',
      '--dataset',
      'datasets/curated',
      '--workspace',
      ws,
      '--from-job',
      empty.id,
      '--no-check',
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, new RegExp(`--from-job ${empty.id}: no adapter at .*out/final`));
    const failed = (await listJobs(ws)).jobs.find((j) => j.meta.kind === 'train' && j.meta.fromJob === empty.id)!;
    assert.match(failed.last!.reason!, /^not started: /);
    assert.equal(existsSync(path.join(failed.remoteDir, 'run.sh')), false);
  });
});

describe('evaluating an adapter: vLLM as a job, port forwarded over SSH, drag eval, compare', function () {
  this.timeout(120_000);
  const tmp = useTempDir();
  let ws: string;
  let host: HostConfig;
  let vllm: string;
  beforeEach(function () {
    need(this, 'ssh');
    ws = path.join(tmp(), 'ws');
    cpSync(path.join(ROOT, 'test', 'fixtures', 'workspace'), ws, { recursive: true });
    host = { ssh: services!.sshHost, workdir: path.join(tmp(), 'remote'), launcher: 'ssh' };
    // The stand-in for vLLM (test/helpers/fakeVllm.mjs) behind a `vllm`-like executable.
    vllm = path.join(tmp(), 'bin', 'vllm');
    mkdirSync(path.dirname(vllm), { recursive: true });
    writeFileSync(
      vllm,
      `#!/bin/sh\nexec ${shQuote(process.execPath)} ` +
        `${shQuote(path.join(ROOT, 'test', 'helpers', 'fakeVllm.mjs'))} "$@"\n`,
      { mode: 0o755 },
    );
  });

  async function trainingJob(withAdapter: boolean) {
    const job = await submitJob({
      workspace: ws,
      hostName: 'box',
      host,
      name: 'sft-test',
      // Rank 40 is not one vLLM accepts: eval-adapter must round it up to 64.
      command: [
        'bash',
        '-c',
        withAdapter ? `mkdir -p out/final && echo '{"r": 40}' > out/final/adapter_config.json` : 'true',
      ],
      meta: { kind: 'train', task: 'sft', dataset: 'datasets/x', model: 'Qwen/Qwen2.5-VL-7B-Instruct' },
    });
    assert.equal((await waitFor(ws, job.id, ['succeeded', 'failed'])).state, 'succeeded');
    return job;
  }

  const serveTitle =
    'serves the adapter, evaluates through the forwarded port, stops the server and writes the comparison';
  it(serveTitle, async () => {
    const questions = path.join(ws, 'questions.jsonl');
    const ocr = path.join(ws, 'corpus', 'ocr_output.jsonl');
    const base = await cli([
      'eval',
      '--agent',
      'keyword',
      '--questions',
      questions,
      '--ocr',
      ocr,
      '--out',
      path.join(ws, 'evals', 'base'),
    ]);
    assert.equal(base.code, 0, base.err);
    const train = await trainingJob(true);
    const port = String(20000 + (process.pid % 20000));
    const r = await cli([
      'eval-adapter',
      train.id,
      '--workspace',
      ws,
      '--vllm',
      vllm,
      '--port',
      port,
      '--compare-with',
      path.join(ws, 'evals', 'base'),
      '--',
      '--questions',
      questions,
      '--ocr',
      ocr,
      '--out',
      path.join(ws, 'evals', 'sft'),
      '--concurrency',
      '2',
    ]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /forwarding http:\/\/127\.0\.0\.1:\d+\/v1 -> drag-test:127\.0\.0\.1:\d+/);
    const summary = JSON.parse(readFileSync(path.join(ws, 'evals', 'sft', 'summary.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const nQuestions = readFileSync(questions, 'utf8').trim().split('\n').length;
    assert.equal(summary.total_questions, nQuestions);
    const { jobs } = await listJobs(ws);
    const serve = jobs.find((j) => j.meta.kind === 'serve')!;
    assert.deepEqual(serve.command.slice(1, 3), ['serve', 'Qwen/Qwen2.5-VL-7B-Instruct']);
    assert.ok(serve.command.includes(`drag-${train.id}=${train.remoteDir}/out/final`));
    // the adapter's rank 40, read from its adapter_config.json on the host, rounded up to one vLLM accepts
    const words = serve.command.join(' ');
    assert.ok(words.includes('--max-lora-rank 64') && words.includes('--max-model-len 32768'), words);
    // every chat request reached the LoRA module, through vLLM's server, and the server is gone
    const requests = readFileSync(path.join(serve.remoteDir, 'requests.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { model: string });
    assert.ok(requests.length >= nQuestions);
    assert.deepEqual([...new Set(requests.map((q) => q.model))], [`drag-${train.id}`]);
    assert.equal((await jobStatus(ws, serve.id)).state, 'cancelled');
    assert.deepEqual(
      processesWith(serve.remoteDir.split('/').pop()!).filter((l) => l.includes('fakeVllm')),
      [],
    );
    assert.match(readFileSync(path.join(ws, 'evals', 'sft', 'comparison.md'), 'utf8'), /Hit@1/);
    assert.deepEqual(JSON.parse(readFileSync(path.join(ws, 'evals', 'sft', 'comparison.json'), 'utf8')).runs, [
      'base',
      'sft',
    ]);
    assert.equal((await readJob(ws, train.id)).meta.evaluation, path.join('evals', 'sft'));
  });

  it('on a SLURM cluster behind SSH: vLLM on the compute node, forwarded through the login host', async function () {
    need(this, 'slurm');
    host = { ...host, launcher: 'slurm', slurm: { cpus: 1 } };
    const train = await trainingJob(true);
    assert.match(train.slurmJobId ?? '', /^\d+$/);
    const r = await cli([
      'eval-adapter',
      train.id,
      '--workspace',
      ws,
      '--vllm',
      vllm,
      '--port',
      String(21000 + (process.pid % 9000)),
      '--',
      '--questions',
      path.join(ws, 'questions.jsonl'),
      '--ocr',
      path.join(ws, 'corpus', 'ocr_output.jsonl'),
      '--out',
      path.join(ws, 'evals', 'slurm'),
      '--limit',
      '2',
    ]);
    assert.equal(r.code, 0, r.err);
    const node = spawnSync('hostname', ['-s'], { encoding: 'utf8' }).stdout.trim();
    assert.match(r.err, new RegExp(`-> drag-test:${node}:\\d+`));
    const serve = (await listJobs(ws)).jobs.find((j) => j.meta.kind === 'serve')!;
    assert.ok(serve.slurmJobId && serve.command.includes('0.0.0.0'));
    assert.equal((await jobStatus(ws, serve.id)).state, 'cancelled');
    assert.equal(JSON.parse(readFileSync(path.join(ws, 'evals', 'slurm', 'summary.json'), 'utf8')).total_questions, 2);
  });

  it('says why when vLLM cannot start (adapter rank above --max-lora-rank), and leaves nothing running', async () => {
    const train = await trainingJob(true);
    const r = await cli([
      'eval-adapter',
      train.id,
      '--workspace',
      ws,
      '--vllm',
      vllm,
      '--port',
      '29876',
      // given after ours, this one wins (argparse): 32 is below the adapter's rank 40
      '--vllm-arg',
      '--max-lora-rank',
      '32',
      '--',
      '--questions',
      'questions.jsonl',
      '--ocr',
      'corpus/ocr_output.jsonl',
      '--out',
      path.join(ws, 'evals', 'x'),
    ]);
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      /vLLM stopped before it was ready \(exit code 1\): .*LoRA rank 40 is greater than max_lora_rank 32/,
    );
    const serve = (await listJobs(ws)).jobs.find((j) => j.meta.kind === 'serve')!;
    assert.deepEqual(processesWith(serve.remoteDir.split('/').pop()!), []);
    // without an adapter nothing is started at all
    const empty = await trainingJob(false);
    const none = await cli(['eval-adapter', empty.id, '--workspace', ws, '--vllm', vllm, '--', '--out', 'evals/y']);
    assert.equal(none.code, 1);
    assert.match(none.err, /no adapter at .*out\/final\/adapter_config\.json/);
    assert.equal((await listJobs(ws)).jobs.filter((j) => j.meta.kind === 'serve').length, 1);
  });
});

describe('jobs on SLURM (real single-node cluster)', function () {
  this.timeout(90_000);
  const tmp = useTempDir();
  let ws: string;
  let host: HostConfig;
  beforeEach(function () {
    need(this, 'slurm');
    ws = tmp();
    host = { workdir: path.join(tmp(), 'slurm jobs'), launcher: 'slurm', slurm: { cpus: 1, time: '00:10:00' } };
  });

  it('submits with sbatch, goes queued/running -> succeeded, reads progress and the log', async () => {
    const job = await submitJob({
      workspace: ws,
      hostName: 'cluster',
      host,
      command: [
        'bash',
        '-c',
        'echo "{\\"current_steps\\": 1, \\"total_steps\\": 1}" > trainer_log.jsonl; echo "on $SLURM_JOB_ID"',
      ],
    });
    assert.match(job.slurmJobId!, /^\d+$/);
    const done = await waitFor(ws, job.id, ['succeeded', 'failed']);
    assert.equal(done.state, 'succeeded', `${done.reason}`);
    assert.equal(done.slurmJobId, job.slurmJobId);
    assert.deepEqual(done.progress, { current_steps: 1, total_steps: 1 });
    const logs = await cli(['jobs', 'logs', job.id, '--workspace', ws]);
    // the cluster's job id reached the job: it ran under SLURM, not beside it
    assert.equal(logs.out, `on ${job.slurmJobId}\n`);
  });

  it('propagates a non-zero exit code', async () => {
    const job = await submitJob({ workspace: ws, hostName: 'cluster', host, command: ['bash', '-c', 'exit 7'] });
    const done = await waitFor(ws, job.id, ['succeeded', 'failed']);
    assert.deepEqual([done.state, done.exitCode], ['failed', 7]);
  });

  it('cancel scancels the job and its processes are gone', async () => {
    const marker = `drag-slurm-cancel-${process.pid}-${Date.now()}`;
    const job = await submitJob({
      workspace: ws,
      hostName: 'cluster',
      host,
      command: ['bash', '-c', `sleep 300 & wait # ${marker}`],
    });
    await waitFor(ws, job.id, ['running']);
    await sleep(300);
    assert.ok(processesWith(marker).length >= 1);
    const s = await cancelJob(ws, job.id);
    assert.equal(s.state, 'cancelled');
    for (let i = 0; i < 50 && processesWith(marker).length; i++) await sleep(200);
    assert.deepEqual(processesWith(marker), []);
    assert.equal(spawnSync('squeue', ['-h', '-j', job.slurmJobId!], { encoding: 'utf8' }).stdout.trim(), '');
  });

  const gpuSamplingTitle =
    "samples GPU use on the job's compute node (srun --overlap inside the allocation), not the login node";
  it(gpuSamplingTitle, async () => {
    const bin = path.join(tmp(), 'bin');
    mkdirSync(bin);
    writeFileSync(path.join(bin, 'nvidia-smi'), '#!/bin/sh\necho "0, Node GPU $SLURM_JOB_ID, 88, 2048, 8192"\n', {
      mode: 0o755,
    });
    const job = await submitJob({ workspace: ws, hostName: 'cluster', host, command: ['bash', '-c', 'sleep 30'] });
    const old = process.env.PATH;
    try {
      await waitFor(ws, job.id, ['running']);
      process.env.PATH = `${bin}:${old}`;
      const snap = await monitorSnapshot(ws, job.id);
      // $SLURM_JOB_ID is set only inside the allocation: the sample came from the job's step
      assert.deepEqual(snap.gpus, [
        { index: 0, name: `Node GPU ${job.slurmJobId}`, utilization: 88, memoryUsedMiB: 2048, memoryTotalMiB: 8192 },
      ]);
    } finally {
      process.env.PATH = old;
      await cancelJob(ws, job.id);
    }
  });

  it('reaches a cluster through SSH as well', async function () {
    need(this, 'ssh');
    const viaSsh: HostConfig = { ...host, ssh: services!.sshHost };
    const job = await submitJob({ workspace: ws, hostName: 'login', host: viaSsh, command: ['hostname'] });
    const done = await waitFor(ws, job.id, ['succeeded', 'failed']);
    assert.equal(done.state, 'succeeded');
  });
});

describe('jobs: what the Training Monitor reads', () => {
  it('loss points from trainer_log.jsonl, skipping half-written and foreign lines', () => {
    const text =
      '{"current_steps": 10, "loss": 1.5, "learning_rate": 0.0002, "epoch": 0.1}\nnot json\n' +
      '{"current_steps": 20, "loss": 1.2, "eval_loss": 1.4, "learning_rate": 0.00019, "epoch": 0.2}\n' +
      '{"other": 1}\n{"current_steps": 30, "lo';
    assert.deepEqual(parseTrainerLog(text), [
      { step: 10, loss: 1.5, evalLoss: null, lr: 0.0002, epoch: 0.1 },
      { step: 20, loss: 1.2, evalLoss: 1.4, lr: 0.00019, epoch: 0.2 },
    ]);
  });
  it('GPU use from nvidia-smi csv', () => {
    assert.deepEqual(
      parseNvidiaSmi('0, NVIDIA H100 80GB HBM3, 97, 61234, 81559\n1, NVIDIA H100 80GB HBM3, 3, 1, 81559\n[N/A]\n'),
      [
        { index: 0, name: 'NVIDIA H100 80GB HBM3', utilization: 97, memoryUsedMiB: 61234, memoryTotalMiB: 81559 },
        { index: 1, name: 'NVIDIA H100 80GB HBM3', utilization: 3, memoryUsedMiB: 1, memoryTotalMiB: 81559 },
      ],
    );
  });
  const snapshotTitle =
    'a snapshot gathers status, curve, GPUs and the log tail in one round trip (nvidia-smi on the PATH)';
  it(snapshotTitle, async function () {
    const ws = mkdtempSync(path.join(tmpdir(), 'drag-mon-'));
    const bin = path.join(ws, 'bin');
    mkdirSync(bin);
    writeFileSync(path.join(bin, 'nvidia-smi'), '#!/bin/sh\necho "0, Test GPU, 55, 1024, 8192"\n', { mode: 0o755 });
    const host: HostConfig = {
      workdir: path.join(ws, 'remote'),
      launcher: 'local',
      env: { PATH: `${bin}:${process.env.PATH}` },
    };
    const job = await submitJob({
      workspace: ws,
      hostName: 'here',
      host,
      command: ['bash', '-c', 'echo \'{"current_steps": 1, "loss": 2}\' > trainer_log.jsonl; echo hello; sleep 30'],
    });
    try {
      await waitFor(ws, job.id, ['running']);
      await sleep(300);
      // the monitor's own script runs outside the job, so give it the same PATH as the job
      const old = process.env.PATH;
      process.env.PATH = `${bin}:${old}`;
      const snap = await monitorSnapshot(ws, job.id).finally(() => {
        process.env.PATH = old;
      });
      assert.equal(snap.status.state, 'running');
      assert.deepEqual(
        snap.points.map((p) => [p.step, p.loss]),
        [[1, 2]],
      );
      assert.deepEqual(snap.gpus, [
        { index: 0, name: 'Test GPU', utilization: 55, memoryUsedMiB: 1024, memoryTotalMiB: 8192 },
      ]);
      assert.equal(snap.logTail, 'hello\n');
    } finally {
      await cancelJob(ws, job.id);
    }
  });
});
