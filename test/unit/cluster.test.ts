import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import * as path from 'node:path';
import { jobDir, jobStatus, listJobs, readJob, sbatchArgs, submitJob, wrapperScript } from '../../src/core/jobs/engine';
import {
  checkHost,
  envCheckReason,
  type HostCheckReport,
  srunCheckCommand,
  versionVerdict,
} from '../../src/core/jobs/hostCheck';
import { parseJobJson, upgradeJobJson } from '../../src/core/jobs/record';
import { parseAdapterConfig, vllmCommand, vllmMaxLoraRank } from '../../src/core/jobs/serve';
import { HostError, type HostConfig, SshTransport } from '../../src/core/jobs/transport';
import { dragConfigJsonSchema } from '../../src/core/schema/config';
import { runCli } from '../../src/cli/main';
import { takeVllmArgs } from '../../src/cli/commands/evalAdapter';
import { trainLauncher } from '../../src/cli/commands/train';
import { ROOT, useTempDir } from './helpers';
import { loadTestServices, SERVICES_FILE } from '../helpers/services.cjs';

/**
 * Training on real clusters: host setup lines, the environment check where the job runs, `drag
 * hosts check`, multi-node batch scripts, resume, eval-adapter's serving flags, and hostile values
 * refused before anything runs. Jobs run on this machine (launcher "local"), over the test sshd and
 * on the single-node SLURM started by scripts/start-test-services.sh; a missing service skips its
 * tests with the reason printed.
 */
const services = loadTestServices();

function need(ctx: Mocha.Context, what: 'ssh' | 'slurm') {
  if (!services?.[what]) {
    const service = what === 'ssh' ? 'sshd on 127.0.0.1' : 'single-node SLURM';
    const why = services ? `${SERVICES_FILE} exists but the service does not answer` : `${SERVICES_FILE} is missing`;
    console.log(`      skipped: no ${service} (run scripts/start-test-services.sh as root; ${why})`);
    ctx.skip();
  }
  process.env.DRAG_SSH_CONFIG = services!.sshConfig;
}

async function cli(argv: string[]) {
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

/** Polls a job until it is in one of `states` (waits on the job's files, with a generous cap). */
async function waitFor(workspace: string, id: string, states: string[], timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const s = await jobStatus(workspace, id);
    if (states.includes(s.state)) return s;
    if (Date.now() > until) throw new Error(`job ${id} still ${s.state} (${s.reason}), wanted ${states.join('|')}`);
    await delay(200);
  }
}

/** Waits until a file exists (the job says it got somewhere), with a generous cap. */
async function waitForFile(file: string, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  while (!existsSync(file)) {
    if (Date.now() > until) throw new Error(`${file} never appeared`);
    await delay(50);
  }
}

function writeConfig(ws: string, hosts: Record<string, unknown>) {
  writeFileSync(path.join(ws, 'drag.config.json'), JSON.stringify({ hosts }, null, 2));
}

function dataset(ws: string) {
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
}

const torchHere = spawnSync('python3', ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

describe('hostile values are refused before anything runs, trusted or not', function () {
  this.timeout(60_000);
  const tmp = useTempDir();
  let ws: string;
  let marker: string;
  beforeEach(() => {
    ws = tmp();
    marker = path.join(tmp(), 'pwned');
  });

  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    [
      'an ssh value that is an ssh option',
      { ssh: '-oProxyCommand=touch MARKER', workdir: '/tmp/x' },
      /hosts\.h\.ssh: must not start with "-"/,
    ],
    [
      'a newline in the ssh host',
      { ssh: 'box\ntouch MARKER', workdir: '/tmp/x' },
      /hosts\.h\.ssh: contains a control character/,
    ],
    [
      'a newline in the workdir',
      { launcher: 'local', workdir: '/tmp/x\ntouch MARKER' },
      /hosts\.h\.workdir: contains a control character/,
    ],
    [
      'an escape sequence in the workdir',
      { launcher: 'local', workdir: '/tmp/\u001b[2Jx' },
      /hosts\.h\.workdir: contains a control character/,
    ],
    [
      'a python that is an option',
      { launcher: 'local', workdir: '/tmp/x', python: '-c' },
      /hosts\.h\.python: must not start with "-"/,
    ],
    [
      'a newline in a setup line',
      { launcher: 'local', workdir: '/tmp/x', setup: ['true\ntouch MARKER'] },
      /hosts\.h\.setup\[0\]: contains a control character/,
    ],
  ];
  for (const [what, host, message] of cases) {
    it(`${what}: drag.config.json names the file and field, and no job is submitted`, async () => {
      const h = JSON.parse(JSON.stringify(host).replace('MARKER', marker.replace(/\\/g, '\\\\'))) as Record<
        string,
        unknown
      >;
      writeConfig(ws, { h });
      const r = await cli(['jobs', 'submit', '--host', 'h', '--workspace', ws, '--', 'touch', marker]);
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, new RegExp(`drag\\.config\\.json:\\d+: ${message.source}`));
      assert.equal(existsSync(marker), false);
      assert.equal(existsSync(path.join(ws, 'jobs')), false);
      // the core refuses the same host when a caller hands it over directly
      await assert.rejects(
        submitJob({ workspace: ws, hostName: 'h', host: h as HostConfig, command: ['touch', marker] }),
        (err: Error) => err instanceof HostError && message.test(err.message) && /nothing was run/.test(err.message),
      );
      assert.equal(existsSync(marker), false);
    });
  }

  it('host names with a control character or a leading "-" are refused in drag.config.json', async () => {
    writeConfig(ws, {
      'gpu\nbox': { launcher: 'local', workdir: '/tmp/x' },
      '-F': { launcher: 'local', workdir: '/tmp/x' },
    });
    const r = await cli(['hosts', 'check', 'gpu\nbox', '--workspace', ws]);
    assert.equal(r.code, 1);
    assert.match(r.err, /drag\.config\.json:\d+: hosts\.gpu\nbox: host name contains a control character/);
    assert.match(r.err, /drag\.config\.json:\d+: hosts\.-F: host name must not start with "-"/);
  });

  it('ssh never sees a host that starts with "-", even from a caller that skips the schema', () => {
    assert.throws(() => new SshTransport('-oProxyCommand=touch x'), /must not start with "-"/);
  });

  const hostileJobTitle =
    'a job.json whose id does not match its folder, or whose host is hostile, is refused by name; nothing runs';
  it(hostileJobTitle, async () => {
    const good = await submitJob({
      workspace: ws,
      hostName: 'here',
      host: { launcher: 'local', workdir: path.join(tmp(), 'remote') },
      command: ['true'],
    });
    await waitFor(ws, good.id, ['succeeded']);
    const file = path.join(jobDir(ws, good.id), 'job.json');
    const record = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify({ ...record, id: 'another-job' }));
    await assert.rejects(
      readJob(ws, good.id),
      new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: id: "another-job" does not match its folder`),
    );
    const status = await cli(['jobs', 'status', good.id, '--workspace', ws]);
    assert.equal(status.code, 1);
    assert.match(status.err, /does not match its folder/);

    writeFileSync(
      file,
      JSON.stringify({
        ...record,
        hostConfig: { ssh: `-oProxyCommand=touch ${marker}`, workdir: '/tmp' },
        last: undefined,
      }),
    );
    await assert.rejects(readJob(ws, good.id), /job\.json: hostConfig\.ssh: must not start with "-"/);
    const ls = await cli(['jobs', 'ls', '--refresh', '--workspace', ws]);
    assert.match(ls.err, /must not start with "-"/);
    assert.equal(existsSync(marker), false);

    writeFileSync(file, JSON.stringify({ ...record, remoteDir: '/tmp/x\nrm -rf ~' }));
    await assert.rejects(readJob(ws, good.id), /job\.json: remoteDir: contains a control character/);
    writeFileSync(
      file,
      JSON.stringify({ ...record, meta: { kind: 'train', task: 'sft', dataset: 'd', model: '--trust-remote-code' } }),
    );
    await assert.rejects(readJob(ws, good.id), /job\.json: meta\.model: must not start with "-"/);
  });

  it('job ids with a newline, a slash or a leading dash are refused', async () => {
    for (const id of ['a\nb', '../x', '-rf', '.hidden', 'a b']) {
      assert.throws(() => jobDir(ws, id), /invalid job id/);
      if (id.startsWith('-')) continue; // the CLI's parser takes it for an option
      const r = await cli(['jobs', 'status', id, '--workspace', ws]);
      assert.equal(r.code, 1);
      assert.match(r.err, /invalid job id/);
    }
  });

  it('model names from the command line: --model, --base-model and --lora-name', async () => {
    writeConfig(ws, { here: { launcher: 'local', workdir: path.join(tmp(), 'remote') } });
    dataset(ws);
    for (const model of ['--help', 'Qwen/Qwen3-VL\nrm -rf ~']) {
      const r = await cli(['train', 'sft', '--dataset', 'datasets/curated', '--workspace', ws, `--model=${model}`]);
      assert.equal(r.code, 2, r.err);
      assert.match(r.err, /--model .*(must not start with "-"|contains a control character)/);
    }
    assert.equal(existsSync(path.join(ws, 'jobs')), false);
    const train = await submitJob({
      workspace: ws,
      hostName: 'here',
      host: { launcher: 'local', workdir: path.join(tmp(), 'remote') },
      command: ['true'],
      meta: { kind: 'train', task: 'sft', dataset: 'datasets/curated', model: 'Qwen/Qwen3-VL-8B-Instruct' },
    });
    await waitFor(ws, train.id, ['succeeded']);
    for (const flag of ['--base-model', '--lora-name']) {
      const r = await cli(['eval-adapter', train.id, '--workspace', ws, `${flag}=--enable-lora`, '--', '--out', 'e']);
      assert.equal(r.code, 1);
      assert.match(r.err, new RegExp(`${flag} "--enable-lora": must not start with "-"`));
    }
    assert.deepEqual(
      (await listJobs(ws)).jobs.map((j) => j.meta.kind),
      ['train'],
    );
  });
});

describe('job.json: one naming on disk, typed meta, older files still read', () => {
  const v1 = {
    version: 1,
    id: '20261126-031500-sft-curated-a1b2',
    name: 'sft-curated',
    host: 'gpu',
    hostConfig: { ssh: 'gpu-box', workdir: '~/drag-jobs', launcher: 'ssh' },
    remoteDir: '/home/u/drag-jobs/20261126-031500-sft-curated-a1b2',
    command: ['env', 'PYTHONPATH=trainer', 'python3', '-m', 'drag_trainer', 'sft'],
    uploads: [],
    submittedAt: '2026-11-26T03:15:00.000Z',
    progressFile: 'out/trainer_log.jsonl',
    meta: {
      kind: 'train',
      task: 'sft',
      dataset: 'datasets/curated',
      model: 'Qwen/Qwen3-VL-8B-Thinking',
      adapter: 'out/final',
      trainData: 'trl_sft_train.jsonl',
      loraRank: 16,
      adapterFetched: '/ws/jobs/x/adapter',
    },
    last: {
      id: '20261126-031500-sft-curated-a1b2',
      state: 'failed',
      exit_code: 1,
      progress: { current_steps: 3 },
      host: 'gpu',
      launcher: 'ssh',
      remote_dir: '/home/u/drag-jobs/20261126-031500-sft-curated-a1b2',
      submitted_at: '2026-11-26T03:15:00.000Z',
      started_at: '2026-11-26T03:15:02Z',
      finished_at: '2026-11-26T04:00:00Z',
      slurm_job_id: null,
      reason: 'exit code 1',
      checked_at: '2026-11-26T04:00:05.000Z',
    },
  };

  it('reads a job.json written before (version 1, snake_case status) as version 2, camelCase', () => {
    const r = parseJobJson(JSON.stringify(v1), '/ws/jobs/x/job.json', v1.id);
    assert.equal(r.version, 2);
    assert.deepEqual(
      [r.last?.exitCode, r.last?.remoteDir, r.last?.startedAt, r.last?.finishedAt, r.last?.checkedAt],
      [1, v1.remoteDir, '2026-11-26T03:15:02Z', '2026-11-26T04:00:00Z', '2026-11-26T04:00:05.000Z'],
    );
    assert.equal(r.meta.kind, 'train');
    assert.equal(r.meta.kind === 'train' && r.meta.adapter, 'out/final');
    assert.equal(r.meta.adapterFetched, '/ws/jobs/x/adapter');
    assert.equal(JSON.stringify(upgradeJobJson(v1)).includes('exit_code'), false);
  });

  it('a record without meta, or with facts but no kind (drag jobs submit, then cleaned), is a plain command', () => {
    const bare = { ...v1, meta: undefined, last: undefined };
    assert.deepEqual(parseJobJson(JSON.stringify(bare), 'f', v1.id).meta, { kind: 'command' });
    const cleaned = { ...v1, meta: { remoteCleanedAt: '2026-11-27T00:00:00Z' } };
    assert.deepEqual(parseJobJson(JSON.stringify(cleaned), 'f', v1.id).meta, {
      kind: 'command',
      remoteCleanedAt: '2026-11-27T00:00:00Z',
    });
  });

  it('a training record without its model or with an unknown kind is refused with the field named', () => {
    assert.throws(
      () =>
        parseJobJson(JSON.stringify({ ...v1, meta: { kind: 'train', task: 'sft', dataset: 'd' } }), 'f.json', v1.id),
      /f\.json: meta\.model: /,
    );
    assert.throws(
      () => parseJobJson(JSON.stringify({ ...v1, meta: { kind: 'party' } }), 'f.json', v1.id),
      /f\.json: meta/,
    );
    assert.throws(() => parseJobJson('{"version": 1,', 'f.json', v1.id), /f\.json: invalid JSON/);
  });
});

describe('host setup lines and the environment check inside the job', function () {
  this.timeout(90_000);
  const tmp = useTempDir();
  let ws: string;
  beforeEach(() => {
    ws = tmp();
  });

  it('the config schema documents setup, nodes and gpus (what completion and the config reference show)', () => {
    const schema = JSON.stringify(dragConfigJsonSchema());
    assert.match(
      schema,
      /"setup":\{[^}]*"description":"Shell lines run in the job's shell before every job command and every host check/,
    );
    assert.match(schema, /"nodes":\{[^}]*"description":"Nodes per job/);
    assert.match(schema, /"gpus":\{[^}]*"description":"GPUs per node/);
  });

  it('setup lines run in the job shell before the command (a sourced file stays in effect), in order', async () => {
    const venv = path.join(tmp(), 'activate');
    writeFileSync(venv, 'export DRAG_VENV=active\n');
    const job = await submitJob({
      workspace: ws,
      hostName: 'here',
      host: {
        launcher: 'local',
        workdir: path.join(tmp(), 'remote'),
        setup: ['echo first setup line', `source ${venv}`],
      },
      command: ['bash', '-c', 'echo "command sees $DRAG_VENV"'],
    });
    assert.equal((await waitFor(ws, job.id, ['succeeded', 'failed'])).state, 'succeeded');
    assert.equal(readFileSync(path.join(job.remoteDir, 'job.log'), 'utf8'), 'first setup line\ncommand sees active\n');
  });

  it('a failing setup line ends the job at once; its status says which line, on which node', async () => {
    const marker = path.join(tmp(), 'command-ran');
    const job = await submitJob({
      workspace: ws,
      hostName: 'here',
      host: { launcher: 'local', workdir: path.join(tmp(), 'remote'), setup: ['module load cuda/12.4'] },
      command: ['touch', marker],
    });
    const s = await waitFor(ws, job.id, ['succeeded', 'failed']);
    const node = spawnSync('hostname', ['-s'], { encoding: 'utf8' }).stdout.trim();
    assert.equal(s.state, 'failed');
    assert.equal(s.reason, `environment check failed on node ${node}: setup line 1 failed: module load cuda/12.4`);
    assert.equal(existsSync(marker), false);
  });

  it('drag train on an SSH or local host checks after the setup lines, before submitting', async () => {
    dataset(ws);
    const bin = path.join(tmp(), 'venv-bin');
    mkdirSync(bin);
    // A "python3" that only the setup line puts on the PATH; its env check says the host is ready.
    writeFileSync(
      path.join(bin, 'python3'),
      `#!/bin/sh\necho "$*" >> ${path.join(tmp(), 'python-calls')}\n` +
        `echo '{"ok": true, "packages": {}, "problems": []}'\n`,
      { mode: 0o755 },
    );
    writeConfig(ws, {
      ready: { launcher: 'local', workdir: path.join(tmp(), 'remote'), setup: [`export PATH=${bin}:$PATH`] },
      broken: { launcher: 'local', workdir: path.join(tmp(), 'remote'), setup: ['module load cuda/12.4'] },
    });
    const ok = await cli(['train', 'sft', '--host', 'ready', '--dataset', 'datasets/curated', '--workspace', ws]);
    assert.equal(ok.code, 0, ok.err);
    assert.equal((await waitFor(ws, ok.out.trim(), ['succeeded', 'failed'])).state, 'succeeded');
    assert.deepEqual(readFileSync(path.join(tmp(), 'python-calls'), 'utf8').trim().split('\n'), [
      '-m drag_trainer env --json',
      '-m drag_trainer sft --train-data curated/trl_sft_train.jsonl --output-dir out',
    ]);
    const bad = await cli(['train', 'sft', '--host', 'broken', '--dataset', 'datasets/curated', '--workspace', ws]);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /local: setup line 1 failed: module load cuda\/12\.4 \(fix "setup" for the host/);
    const refused = (await listJobs(ws)).jobs.find((j) => j.host === 'broken')!;
    assert.match(refused.last!.reason!, /^not started: /);
    assert.equal(existsSync(path.join(refused.remoteDir, 'run.sh')), false);
  });

  it('hosts check runs the setup lines first, then reports Python, torch, packages, vLLM and disk', async () => {
    const bin = path.join(tmp(), 'bin');
    mkdirSync(bin);
    writeFileSync(path.join(bin, 'vllm'), '#!/bin/sh\necho fake vllm\n', { mode: 0o755 });
    writeConfig(ws, {
      here: { launcher: 'local', workdir: path.join(tmp(), 'work dir'), setup: [`export PATH=${bin}:$PATH`] },
    });
    const r = await cli(['hosts', 'check', 'here', '--json', '--workspace', ws]);
    const report = JSON.parse(r.out) as HostCheckReport;
    // vllm is only on the PATH that the setup line made
    assert.equal(report.vllm, path.join(bin, 'vllm'));
    assert.match(report.python.version ?? '', /^3\.\d+\.\d+$/);
    assert.ok(report.freeDiskGiB !== null && report.freeDiskGiB > 0);
    assert.equal(report.workdir, path.join(tmp(), 'work dir'));
    if (torchHere) {
      console.log('      (this machine has torch: the torch verdict is not asserted)');
      return;
    }
    assert.equal(r.code, 1);
    assert.equal(report.ok, false);
    assert.deepEqual(report.packages.torch, { version: null, verdict: 'missing' });
    assert.ok(report.problems.some((p) => /^torch is not importable/.test(p)));
    const text = await cli(['hosts', 'check', 'here', '--workspace', ws]);
    assert.match(text.out, /torch {7}not importable/);
    assert.match(text.out, /not ready for training\n$/);
  });

  it('hosts check stops at a failing setup line and says so', async () => {
    writeConfig(ws, { here: { launcher: 'local', workdir: path.join(tmp(), 'w'), setup: ['true', 'false'] } });
    const r = await cli(['hosts', 'check', 'here', '--json', '--workspace', ws]);
    assert.equal(r.code, 1);
    const report = JSON.parse(r.out) as { setupFailed: string; problems: string[] };
    assert.equal(report.setupFailed, '2: false');
    assert.match(report.problems[0]!, /setup line 2: false failed/);
  });

  it('versions against the tested range; the env check report in words', () => {
    assert.equal(versionVerdict('transformers', '5.17.2'), 'tested');
    assert.equal(versionVerdict('transformers', '4.57.0'), 'untested');
    assert.equal(versionVerdict('transformers', '4.40.1'), 'too old');
    assert.equal(versionVerdict('peft', null), 'missing');
    assert.equal(versionVerdict('torch', '2.11.0+cu128'), 'tested');
    assert.equal(
      envCheckReason(
        JSON.stringify({ packages: { torch: '2.11.0' }, problems: ['torch cannot see a CUDA GPU (x)'] }),
        '',
      ),
      'torch cannot see a CUDA GPU (x)',
    );
    assert.match(envCheckReason('', '/usr/bin/python3: No module named drag_trainer'), /trainer .* was not uploaded/);
  });

  it('hosts check over SSH reports the test host', async function () {
    need(this, 'ssh');
    writeConfig(ws, { box: { ssh: services!.sshHost, workdir: path.join(tmp(), 'remote') } });
    const r = await cli(['hosts', 'check', 'box', '--json', '--workspace', ws]);
    const report = JSON.parse(r.out) as { launcher: string; node: string; python: { version: string } };
    assert.equal(report.launcher, 'ssh');
    assert.equal(report.node, spawnSync('hostname', ['-s'], { encoding: 'utf8' }).stdout.trim());
    assert.match(report.python.version, /^3\./);
  });
});

describe('SLURM: the check runs on the allocated node, not the login node', function () {
  this.timeout(120_000);
  const tmp = useTempDir();
  let ws: string;
  beforeEach(function () {
    need(this, 'slurm');
    ws = tmp();
    dataset(ws);
  });

  const loginNodeTitle =
    'drag train submits from a login node without torch, and the job fails fast saying torch is missing';
  it(loginNodeTitle, async function () {
    if (torchHere) {
      console.log('      skipped: this machine has torch, so the environment check would pass');
      this.skip();
    }
    const marker = path.join(tmp(), 'setup-ran-in-job');
    writeConfig(ws, {
      cluster: {
        launcher: 'slurm',
        workdir: path.join(tmp(), 'slurm jobs'),
        python: 'python3',
        // the setup line proves it ran inside the allocation: $SLURM_JOB_ID is set only there
        setup: [`echo "$SLURM_JOB_ID" > ${marker}`],
        slurm: { cpus: 1, time: '00:10:00' },
      },
    });
    const r = await cli(['train', 'sft', '--host', 'cluster', '--dataset', 'datasets/curated', '--workspace', ws]);
    assert.equal(r.code, 0, r.err);
    assert.doesNotMatch(r.err, /checking .* for training/);
    const id = r.out.trim();
    const record = await readJob(ws, id);
    assert.match(record.slurmJobId ?? '', /^\d+$/);
    // the batch job resumes from a checkpoint when SLURM requeues it at its time limit
    assert.deepEqual(record.command.slice(-2), ['--resume', 'auto']);
    const done = await waitFor(ws, id, ['failed', 'succeeded']);
    assert.equal(done.state, 'failed');
    const node = spawnSync('hostname', ['-s'], { encoding: 'utf8' }).stdout.trim();
    assert.match(done.reason!, new RegExp(`^environment check failed on node ${node}: torch is not importable`));
    assert.equal(readFileSync(marker, 'utf8').trim(), record.slurmJobId);
    // the trainer itself never started: its output folder does not exist
    assert.equal(existsSync(path.join(record.remoteDir, 'out')), false);
    const status = await cli(['jobs', 'status', id, '--workspace', ws]);
    assert.equal(status.code, 1);
    assert.match(status.out, /failed \(exit 3\) - environment check failed on node \S+: torch is not importable/);
    const sbatch = readFileSync(path.join(record.remoteDir, 'run.sh'), 'utf8');
    assert.match(sbatch, /python3 -m drag_trainer env --json > env_check\.json/);
  });

  it('hosts check runs through srun on a compute node, setup lines first', async () => {
    const marker = path.join(tmp(), 'check-setup');
    const host: HostConfig = {
      launcher: 'slurm',
      workdir: path.join(tmp(), 'w'),
      setup: [`echo "$SLURM_JOB_ID" > ${marker}`],
      slurm: { cpus: 1 },
    };
    const { report } = await checkHost('cluster', host, { timeoutS: 60 });
    assert.equal(report.node, spawnSync('hostname', ['-s'], { encoding: 'utf8' }).stdout.trim());
    assert.match(readFileSync(marker, 'utf8').trim(), /^\d+$/);
    assert.match(report.python.version ?? '', /^3\./);
  });

  it('hosts check gives a plain message when the queue does not start it in time', async () => {
    const host: HostConfig = {
      launcher: 'slurm',
      workdir: path.join(tmp(), 'w'),
      // a job that may not begin for ten minutes: the queue cannot start the check now
      slurm: { cpus: 1, extra: ['--begin=now+600'] },
    };
    await assert.rejects(
      checkHost('cluster', host, { timeoutS: 2 }),
      (err: Error) => err instanceof HostError && /SLURM did not start the check within 2 s/.test(err.message),
    );
  });
});

describe('multi-node training: the generated batch script of a 2-node job', () => {
  const host: HostConfig = {
    launcher: 'slurm',
    workdir: '/scratch/u/drag',
    setup: ['module load cuda/12.4', 'source ~/venvs/drag/bin/activate'],
    slurm: { nodes: 2, gpus: 4, partition: 'gpu', time: '12:00:00' },
  };

  it('asks for 2 nodes with 4 GPUs each, one task per node, requeue and the time-limit signal', () => {
    const args = sbatchArgs(host, 'sft', '/scratch/u/drag/j', { requeueOnTimeLimit: true });
    for (const a of [
      '--nodes=2',
      '--ntasks-per-node=1',
      '--gres=gpu:4',
      '--partition=gpu',
      '--requeue',
      '--signal=B:USR1@120',
    ])
      assert.ok(args.includes(a), `${a} in ${args.join(' ')}`);
    assert.equal(args.at(-1), '/scratch/u/drag/j/run.sh');
  });

  it('runs srun torchrun with --nnodes $SLURM_NNODES and a c10d rendezvous on the first node', () => {
    const launcher = trainLauncher('python3', host, 1);
    const script = wrapperScript(
      '/scratch/u/drag/j',
      ['env', 'PYTHONPATH=trainer', ...launcher, 'sft', '--output-dir', 'out'],
      {
        setup: host.setup,
        check: ['env', 'PYTHONPATH=trainer', 'python3', '-m', 'drag_trainer', 'env', '--json'],
        requeueOnUsr1: true,
      },
    );
    // setup lines, then the check, then the trainer
    const order = ['module load cuda/12.4', 'source ~/venvs/drag/bin/activate', 'drag_trainer env --json', 'srun '];
    const at = order.map((o) => script.indexOf(o));
    assert.ok(
      at.every((i, k) => i > 0 && (k === 0 || i > at[k - 1]!)),
      `${at.join(',')}\n${script}`,
    );
    // Run the srun task's command with stand-ins for scontrol and python: what torchrun receives.
    const dir = path.join(tmpdir(), `drag-2node-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'scontrol'), '#!/bin/sh\nprintf "gpu-n17\\ngpu-n18\\n"\n', { mode: 0o755 });
    writeFileSync(path.join(dir, 'python3'), '#!/bin/sh\nprintf "%s\\n" "$@"\n', { mode: 0o755 });
    assert.deepEqual(launcher.slice(0, 4), ['srun', '--ntasks-per-node=1', '--kill-on-bad-exit=1', 'bash']);
    const r = spawnSync('bash', [...launcher.slice(4), 'sft', '--output-dir', 'out'], {
      encoding: 'utf8',
      env: {
        PATH: `${dir}:${process.env.PATH}`,
        SLURM_NNODES: '2',
        SLURM_JOB_ID: '4242',
        SLURM_JOB_NODELIST: 'gpu-n[17-18]',
      },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      '-m',
      'torch.distributed.run',
      '--nnodes',
      '2',
      '--nproc_per_node',
      '4',
      '--rdzv_id',
      '4242',
      '--rdzv_backend',
      'c10d',
      '--rdzv_endpoint',
      'gpu-n17:29742',
      '-m',
      'drag_trainer',
      'sft',
      '--output-dir',
      'out',
    ]);
  });

  it("the wrapper passes SLURM's USR1 on to the trainer and waits for it to write its checkpoint", async () => {
    const dir = path.join(tmpdir(), `drag-usr1-${process.pid}-${Date.now()}`);
    mkdirSync(dir, { recursive: true });
    const trainer = "trap 'echo checkpoint > checkpoint.txt; exit 0' USR1; touch ready; while :; do sleep 0.1; done";
    writeFileSync(path.join(dir, 'run.sh'), wrapperScript(dir, ['bash', '-c', trainer], { requeueOnUsr1: true }));
    const env = { ...process.env };
    delete env.SLURM_JOB_ID;
    const child = spawn('bash', [path.join(dir, 'run.sh')], { env, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await waitForFile(path.join(dir, 'ready'));
    child.kill('SIGUSR1');
    assert.equal(await exited, 0);
    assert.equal(readFileSync(path.join(dir, 'checkpoint.txt'), 'utf8'), 'checkpoint\n');
    // outside SLURM there is nothing to requeue: the run ends with the trainer's exit code
    assert.equal(readFileSync(path.join(dir, 'exit_code'), 'utf8'), '0\n');
  });

  it('srun for hosts check uses the partition, one GPU, the extra options and a timeout', () => {
    const cmd = srunCheckCommand(host, 90, 'echo hi');
    assert.match(cmd, /^timeout 120 srun --immediate=90 .*--partition=gpu --gres=gpu:1 bash -c 'echo hi'$/);
  });
});

describe('drag train --resume: a failed or cancelled job again, in its own folder', function () {
  this.timeout(90_000);
  const tmp = useTempDir();

  it('reruns the command with --resume auto in the same folder, keeping the earlier run', async () => {
    const ws = tmp();
    const host: HostConfig = { launcher: 'local', workdir: path.join(tmp(), 'remote') };
    writeConfig(ws, { here: host });
    // a "trainer" that records its arguments and fails the first time
    const job = await submitJob({
      workspace: ws,
      hostName: 'here',
      host,
      name: 'sft',
      command: [
        'bash',
        '-c',
        'echo "$*" >> args.txt; [ -e checkpoint ] && exit 0; touch checkpoint; exit 1',
        'trainer',
        'sft',
      ],
      meta: { kind: 'train', task: 'sft', dataset: 'datasets/curated', model: 'Qwen/Qwen3-VL-8B-Thinking' },
    });
    assert.equal((await waitFor(ws, job.id, ['failed', 'succeeded'])).state, 'failed');
    const r = await cli(['train', '--resume', job.id, '--no-check', '--workspace', ws]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), job.id);
    const done = await waitFor(ws, job.id, ['failed', 'succeeded']);
    assert.equal(done.state, 'succeeded');
    assert.equal(readFileSync(path.join(job.remoteDir, 'args.txt'), 'utf8'), 'sft\nsft --resume auto\n');
    const record = await readJob(ws, job.id);
    assert.equal(record.remoteDir, job.remoteDir);
    assert.deepEqual(
      record.previousRuns?.map((p) => [p.state, p.reason]),
      [['failed', 'exit code 1']],
    );
    const again = await cli(['train', '--resume', job.id, '--workspace', ws]);
    assert.equal(again.code, 1);
    assert.match(again.err, /is succeeded: only a failed or cancelled job can be resumed/);
    assert.equal((await listJobs(ws)).jobs.length, 1);
  });
});

describe('eval-adapter: rank, context length, merged adapters, vLLM options', function () {
  this.timeout(120_000);
  const tmp = useTempDir();
  const fake = path.join(ROOT, 'test', 'helpers', 'fakeVllm.mjs');

  it('rounds the adapter rank up to one vLLM accepts, and refuses above 512', () => {
    assert.deepEqual(
      [1, 2, 8, 9, 16, 40, 64, 100, 256, 300, 320, 321, 512].map(vllmMaxLoraRank),
      [1, 8, 8, 16, 16, 64, 64, 128, 256, 320, 320, 512, 512],
    );
    assert.throws(() => vllmMaxLoraRank(513), /above 512/);
    assert.deepEqual(parseAdapterConfig('{"r": 16, "rank_pattern": {"q_proj": 64}}', 'a.json'), {
      rank: 64,
      modulesToSave: [],
    });
    assert.deepEqual(parseAdapterConfig('{"r": 8, "modules_to_save": ["merger"]}', 'a.json').modulesToSave, ['merger']);
    assert.equal(parseAdapterConfig('{"lora_alpha": 32}', 'a.json').rank, 8); // PEFT's default
    assert.throws(
      () => parseAdapterConfig('{"r": "16"}', 'h:/x/adapter_config.json'),
      /h:\/x\/adapter_config\.json: r: /,
    );
    assert.throws(
      () => parseAdapterConfig('{"r": 16', 'h:/x/adapter_config.json'),
      /adapter_config\.json: invalid JSON/,
    );
  });

  it("--max-model-len 32768 by default, replaced by the user's own in either spelling", () => {
    const lora = { kind: 'lora' as const, baseModel: 'M', loraName: 'n', adapterPath: '/a', maxLoraRank: 64 };
    const words = (extra: string[]) => vllmCommand('vllm', lora, 8001, extra).join(' ');
    assert.match(words([]), /--max-lora-rank 64 --max-model-len 32768$/);
    assert.doesNotMatch(words(['--max-model-len', '16384']), /32768/);
    assert.doesNotMatch(words(['--max-model-len=16384']), /32768/);
    const merged = vllmCommand('vllm', { kind: 'merged', modelPath: '/j/out/merged', name: 'drag-x' }, 8001);
    assert.deepEqual(merged.slice(0, 3), ['vllm', 'serve', '/j/out/merged']);
    assert.ok(merged.join(' ').includes('--served-model-name drag-x') && !merged.includes('--enable-lora'));
  });

  it('--vllm-arg takes "--flag value" as well as "--flag=value"', () => {
    assert.deepEqual(
      takeVllmArgs([
        'job',
        '--vllm-arg',
        '--max-model-len',
        '16384',
        '--vllm-arg=--enforce-eager',
        '--port',
        '1',
        '--vllm-arg',
        '--gpu-memory-utilization=0.8',
      ]),
      {
        vllmArgs: ['--max-model-len', '16384', '--enforce-eager', '--gpu-memory-utilization=0.8'],
        rest: ['job', '--port', '1'],
      },
    );
    assert.deepEqual(takeVllmArgs(['--vllm-arg', '--enforce-eager', '--port', '1']).vllmArgs, ['--enforce-eager']);
  });

  describe('the fake vLLM refuses at start what vLLM refuses', () => {
    const serve = (args: string[]) =>
      spawnSync(process.execPath, [fake, 'serve', 'M', '--port', '0', ...args], { encoding: 'utf8', timeout: 5000 });
    const adapter = (config: object) => {
      const dir = path.join(tmp(), 'adapter');
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(config));
      return dir;
    };
    it('a --max-lora-rank vLLM does not allow', () => {
      const r = serve(['--max-lora-rank', '24']);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /max_lora_rank: Input should be 1, 8, 16, 32, 64, 128, 256, 320, 512/);
    });
    it('an adapter whose rank is above --max-lora-rank (rank_pattern included)', () => {
      const dir = adapter({ r: 16, rank_pattern: { q_proj: 64 } });
      const r = serve(['--enable-lora', '--lora-modules', `a=${dir}`, '--max-lora-rank', '32']);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /LoRA rank 64 is greater than max_lora_rank 32/);
    });
    it('an adapter with modules_to_save', () => {
      const dir = adapter({ r: 16, modules_to_save: ['visual.merger'] });
      const r = serve(['--enable-lora', '--lora-modules', `a=${dir}`, '--max-lora-rank', '16']);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /vLLM only supports modules_to_save being None/);
    });
  });

  const mergedAdapterTitle =
    'an adapter with modules_to_save is merged on the host first, and the merged model is served and evaluated';
  it(mergedAdapterTitle, async () => {
    const ws = path.join(tmp(), 'ws');
    cpSync(path.join(ROOT, 'test', 'fixtures', 'workspace'), ws, { recursive: true });
    const host: HostConfig = { launcher: 'local', workdir: path.join(tmp(), 'remote') };
    const vllm = path.join(tmp(), 'bin', 'vllm');
    mkdirSync(path.dirname(vllm), { recursive: true });
    writeFileSync(vllm, `#!/bin/sh\nexec '${process.execPath}' '${fake}' "$@"\n`, { mode: 0o755 });
    // A stand-in trainer whose merge task writes a model folder (the real one needs torch).
    const makeTrain = [
      'mkdir -p out/final trainer/drag_trainer',
      `echo '{"r": 64, "modules_to_save": ["visual.merger"]}' > out/final/adapter_config.json`,
      ': > trainer/drag_trainer/__init__.py',
      `printf '%s\\n' 'import sys, os, json' 'a = sys.argv' 'assert a[1] == "merge", a' ` +
        `'out = a[a.index("--output-path") + 1]' 'os.makedirs(out, exist_ok=True)' ` +
        `'json.dump({"argv": a[1:]}, open(os.path.join(out, "config.json"), "w"))' ` +
        '> trainer/drag_trainer/__main__.py',
    ].join(' && ');
    const train = await submitJob({
      workspace: ws,
      hostName: 'here',
      host,
      name: 'sft-tune-mlp',
      command: ['bash', '-c', makeTrain],
      meta: { kind: 'train', task: 'sft', dataset: 'datasets/x', model: 'Qwen/Qwen3-VL-8B-Instruct' },
    });
    assert.equal((await waitFor(ws, train.id, ['succeeded', 'failed'])).state, 'succeeded');
    const r = await cli([
      'eval-adapter',
      train.id,
      '--workspace',
      ws,
      '--vllm',
      vllm,
      '--port',
      String(22000 + (process.pid % 9000)),
      '--vllm-arg',
      '--max-model-len',
      '16384',
      '--',
      '--questions',
      path.join(ws, 'questions.jsonl'),
      '--ocr',
      path.join(ws, 'corpus', 'ocr_output.jsonl'),
      '--out',
      path.join(ws, 'evals', 'merged'),
      '--limit',
      '1',
    ]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /modules_to_save.*merging it into Qwen\/Qwen3-VL-8B-Instruct/);
    const { jobs } = await listJobs(ws);
    const merge = jobs.find((j) => j.meta.kind === 'merge')!;
    const merged = path.join(train.remoteDir, 'out', 'merged');
    assert.deepEqual(JSON.parse(readFileSync(path.join(merged, 'config.json'), 'utf8')).argv, [
      'merge',
      '--adapter-path',
      path.join(train.remoteDir, 'out', 'final'),
      '--output-path',
      merged,
      '--model',
      'Qwen/Qwen3-VL-8B-Instruct',
    ]);
    assert.equal((await jobStatus(ws, merge.id)).state, 'succeeded');
    const serveJob = jobs.find((j) => j.meta.kind === 'serve')!;
    const words = serveJob.command.join(' ');
    assert.ok(
      words.startsWith(`${vllm} serve ${merged} `) && words.includes(`--served-model-name drag-${train.id}`),
      words,
    );
    assert.ok(words.includes('--max-model-len 16384') && !words.includes('32768'), words);
    assert.equal(JSON.parse(readFileSync(path.join(ws, 'evals', 'merged', 'summary.json'), 'utf8')).total_questions, 1);
  });
});
