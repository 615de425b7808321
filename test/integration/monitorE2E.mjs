// Training Monitor in a real VS Code (code-server + Playwright): a real job (over the test sshd
// when scripts/start-test-services.sh has started it, else the "local" launcher) runs a stand-in
// trainer that writes trainer_log.jsonl; the monitor shows state, progress and curves, and its
// Cancel button stops the job's processes. Screenshot: test-results/training-monitor.png.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadTestServices } from '../helpers/services.cjs';
import {
  choose,
  launchBrowser,
  makeWorkspace,
  ROOT,
  runCommand,
  startCodeServer,
  stepRunner,
  toast,
  workbenchUrl,
} from './codeServer.mjs';

const RESULTS = path.join(ROOT, 'test-results');
const HOLD_AT = 30;
const FAKE_TRAINER = `import json, math, os, sys, time
HOLD_AT = ${HOLD_AT}
os.makedirs("out", exist_ok=True)
total = int(sys.argv[2]) if len(sys.argv) > 2 else 400
pause = float(sys.argv[3]) if len(sys.argv) > 3 else 0.25
# With a release file named, the trainer holds at step HOLD_AT until the test creates it: the UI sees
# it running however slow the machine is.
release = sys.argv[4] if len(sys.argv) > 4 else None
for step in range(1, total + 1):
    loss = 2.4 * math.exp(-step / 60) + 0.35 + 0.05 * math.sin(step)
    rec = {"current_steps": step, "total_steps": total, "loss": round(loss, 4),
           "learning_rate": 2e-4 * 0.5 * (1 + math.cos(math.pi * step / total)),
           "epoch": round(3 * step / total, 3), "percentage": round(100 * step / total, 2),
           "elapsed_time": "0:00:%02d" % (step // 4 % 60), "remaining_time": "0:01:%02d" % ((total - step) // 4 % 60)}
    if step % 10 == 0:
        rec["eval_loss"] = round(loss + 0.15, 4)
    with open("out/trainer_log.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\\n")
    print("step %d loss %.4f" % (step, loss), flush=True)
    time.sleep(pause)
    while release and step == HOLD_AT and not os.path.exists(release):
        time.sleep(0.2)
os.makedirs("out/final", exist_ok=True)
with open("out/final/adapter_config.json", "w") as f:
    f.write("{}")
`;

export async function runMonitorE2E(installRoot) {
  const { ws, cleanup } = makeWorkspace('monitor-ws');
  const services = loadTestServices();
  const host = services?.ssh
    ? { ssh: services.sshHost, workdir: path.join(path.dirname(ws), 'remote-jobs'), launcher: 'ssh' }
    : { workdir: path.join(path.dirname(ws), 'local-jobs'), launcher: 'local' };
  console.log(`  (monitor job on ${services?.ssh ? 'the test sshd' : 'the local launcher: no test sshd'})`);
  const env = services?.ssh ? { DRAG_SSH_CONFIG: services.sshConfig } : {};
  const configFile = path.join(ws, 'drag.config.json');
  writeFileSync(
    configFile,
    JSON.stringify({ ...JSON.parse(readFileSync(configFile, 'utf8')), hosts: { gpu: host } }, null, 2),
  );
  writeFileSync(path.join(ws, 'fake_trainer.py'), FAKE_TRAINER);
  // "python" and "vllm" on the host are stand-ins: the trainer's env check passes, training is the
  // stand-in trainer (30 quick steps, then an adapter), vLLM is test/helpers/fakeVllm.mjs.
  const bin = path.join(path.dirname(ws), 'host-bin');
  mkdirSync(bin, { recursive: true });
  const q = (p) => `'${p.replace(/'/g, `'\\''`)}'`;
  writeFileSync(
    path.join(bin, 'python'),
    `#!/bin/sh\ncase " $* " in *" env "*) echo '{"ok": true, "problems": []}' ;; ` +
      `*) exec python3 ${q(path.join(ws, 'fake_trainer.py'))} train-e2e 30 0.1 ;; esac\n`,
    { mode: 0o755 },
  );
  writeFileSync(
    path.join(bin, 'vllm'),
    `#!/bin/sh\nexec ${q(process.execPath)} ${q(path.join(ROOT, 'test', 'helpers', 'fakeVllm.mjs'))} "$@"\n`,
    { mode: 0o755 },
  );
  host.python = path.join(bin, 'python');
  host.vllm = path.join(bin, 'vllm');
  // A second host with a plain python3 (no torch, no GPU): the trainer's check must refuse it.
  writeFileSync(
    configFile,
    JSON.stringify(
      {
        ...JSON.parse(readFileSync(configFile, 'utf8')),
        hosts: { gpu: host, 'cpu-box': { ...host, python: 'python3' } },
      },
      null,
      2,
    ),
  );
  mkdirSync(path.join(ws, 'datasets', 'curated'), { recursive: true });
  writeFileSync(
    path.join(ws, 'datasets', 'curated', 'trl_sft_train.jsonl'),
    `${JSON.stringify({
      messages: [
        { role: 'user', content: 'q' },
        { role: 'assistant', content: '<search>a</search>' },
      ],
    })}\n`,
  );
  const turn = (query) => [{ role: 'assistant', content: `<search>${query}</search>` }];
  writeFileSync(
    path.join(ws, 'datasets', 'curated', 'trl_dpo_train.jsonl'),
    `${JSON.stringify({ prompt: [{ role: 'user', content: 'q' }], chosen: turn('a'), rejected: turn('b') })}\n`,
  );
  execFileSync(
    process.execPath,
    [
      path.join(ROOT, 'dist', 'cli.js'),
      'eval',
      '--agent',
      'keyword',
      '--questions',
      path.join(ws, 'questions.jsonl'),
      '--ocr',
      path.join(ws, 'corpus', 'ocr_output.jsonl'),
      '--out',
      path.join(ws, 'evals', 'base'),
    ],
    { stdio: 'ignore' },
  );
  // `drag jobs <args> --json` in this workspace, and the job records (job.json) whose folder passes `test`
  const jobsJson = (...args) =>
    JSON.parse(
      execFileSync(
        process.execPath,
        [path.join(ROOT, 'dist', 'cli.js'), 'jobs', ...args, '--json', '--workspace', ws],
        { env: { ...process.env, ...env }, encoding: 'utf8' },
      ),
    );
  // A job's folder is made before its job.json is written (whole, by a rename): until then it is no job yet.
  const jobRecords = (test) =>
    readdirSync(path.join(ws, 'jobs'))
      .filter(test)
      .map((d) => path.join(ws, 'jobs', d, 'job.json'))
      .filter((file) => existsSync(file))
      .map((file) => JSON.parse(readFileSync(file, 'utf8')));
  const marker = `monitor-e2e-${process.pid}`;
  // The monitored job holds at step HOLD_AT until this file exists (created once the UI has seen it, or at the end).
  const release = path.join(ws, 'release');
  const id = execFileSync(
    process.execPath,
    [
      path.join(ROOT, 'dist', 'cli.js'),
      'jobs',
      'submit',
      '--host',
      'gpu',
      '--workspace',
      ws,
      '--name',
      'sft-demo',
      '--upload',
      path.join(ws, 'fake_trainer.py'),
      '--progress-file',
      'out/trainer_log.jsonl',
      '--',
      'python3',
      'fake_trainer.py',
      marker,
      '400',
      '0.25',
      release,
    ],
    { env: { ...process.env, ...env }, encoding: 'utf8' },
  ).trim();
  const server = await startCodeServer(installRoot, ws, env);
  const browser = await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const { step, tally } = stepRunner();
  const alive = () =>
    execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' })
      .split('\n')
      .some((l) => l.includes(marker) && !l.includes('ps -eo'));
  const command = (title) => runCommand(page, title);
  try {
    // Not the page's load event: on a busy machine it can take longer than goto's 30 s; the wait below bounds it.
    await page.goto(workbenchUrl(server, ws), { waitUntil: 'commit' });
    await page.locator('.activitybar [aria-label^="DRAG"]').first().waitFor({ timeout: 90_000 });
    await step('DRAG: Open Training Monitor shows a running job with progress, ETA and loss curves', async () => {
      await command('DRAG: Open Training Monitor');
      await choose(page, 'Job to monitor', 'sft-demo', id);
      const panel = page.frameLocator('iframe.webview').last().frameLocator('#active-frame');
      await panel.locator('h1', { hasText: 'sft-demo' }).waitFor({ timeout: 30_000 });
      await panel.locator('.state.running').waitFor({ timeout: 30_000 });
      // The job holds at step HOLD_AT (until the release file exists), so the curves have shape
      // (eval loss every 10 steps) and it is still running when the UI looks, however slow the machine.
      await panel.locator(`text=/step ${HOLD_AT} \\/ 400/`).first().waitFor({ timeout: 90_000 });
      await panel.locator('polyline.loss').waitFor({ timeout: 10_000 });
      await panel.locator('polyline.eval').waitFor({ timeout: 10_000 });
      await panel.locator('pre', { hasText: 'step ' }).waitFor({ timeout: 10_000 });
      const meta = await panel.locator('.progress .meta').innerText();
      if (!/ETA/.test(meta)) throw new Error(`no ETA in "${meta}"`);
      await page.screenshot({ path: path.join(RESULTS, 'training-monitor.png') });
    });
    await step('Cancel Job in the monitor stops the job on the host', async () => {
      if (!alive()) throw new Error('the stand-in trainer is not running before cancel');
      const panel = page.frameLocator('iframe.webview').last().frameLocator('#active-frame');
      await panel.locator('vscode-button', { hasText: 'Cancel Job' }).click();
      await page
        .locator('.monaco-dialog-box .monaco-button', { hasText: 'Cancel Job' })
        .first()
        .click({ timeout: 10_000 });
      await panel.locator('.state.cancelled').waitFor({ timeout: 30_000 });
      if (alive()) throw new Error("the job's process is still running after cancel");
      const status = jobsJson('status', id);
      if (status.state !== 'cancelled') throw new Error(`drag jobs status says ${status.state}`);
    });
    const startTraining = async (hostName) => {
      await command('DRAG: Start Training');
      // one dataset: the method, the host and the preset are asked
      await choose(page, 'Training method', 'SFT');
      await choose(page, 'GPU host', hostName);
      await choose(page, 'Preset', 'Quick check');
    };
    await step(
      'DRAG: Start Training… on a host without torch or a GPU says what is missing and starts nothing',
      async () => {
        await command('View: Close All Editors');
        await startTraining('cpu-box');
        const notReady = toast(page, 'is not ready for training');
        await notReady.waitFor({ timeout: 60_000 });
        const text = await notReady.innerText();
        if (!/torch|CUDA/.test(text)) throw new Error(`the message does not say what is missing: ${text}`);
        // The check ran before submission (an SSH host): the person may start anyway, or read the log.
        for (const label of ['Start Anyway', 'Show Log'])
          await notReady.locator('.monaco-button', { hasText: label }).first().waitFor({ timeout: 10_000 });
        if (/--no-check/.test(text)) throw new Error(`the CLI's flag hint reached the UI: ${text}`);
        await page.screenshot({ path: path.join(RESULTS, 'training-host-not-ready.png') });
        await page.keyboard.press('Escape');
      },
    );
    await step(
      'DRAG: Start Training… (dataset, SFT, host, preset) starts drag train on the host and opens its monitor',
      async () => {
        await startTraining('gpu');
        const panel = page.frameLocator('iframe.webview').last().frameLocator('#active-frame');
        await panel.locator('h1', { hasText: 'sft-curated' }).waitFor({ timeout: 60_000 });
        await panel.locator('.state.succeeded').waitFor({ timeout: 60_000 });
        await panel.locator('text=/step 30 \\/ 30/').first().waitFor({ timeout: 10_000 });
        const jobs = jobsJson('ls');
        const trained = jobs.find((j) => j.id.includes('sft-curated'));
        if (!trained || trained.state !== 'succeeded')
          throw new Error(`drag jobs ls: ${JSON.stringify(jobs.map((j) => [j.id, j.state]))}`);
        const [record] = jobRecords((d) => d === trained.id);
        for (const a of ['--lora-r', '8', '--epochs', '1', '--mask-strategy', 'assistant'])
          if (!record.command.includes(a))
            throw new Error(`preset option ${a} missing from ${record.command.join(' ')}`);
      },
    );
    await step('Fetch Adapter in the monitor copies out/final from the host into jobs/<id>/adapter/', async () => {
      const panel = page.frameLocator('iframe.webview').last().frameLocator('#active-frame');
      await panel.locator('vscode-button', { hasText: 'Fetch Adapter' }).click();
      await panel.locator('[role="status"]', { hasText: 'adapter fetched into' }).waitFor({ timeout: 30_000 });
      const jobs = jobsJson('ls');
      const trained = jobs.find((j) => j.id.includes('sft-curated'));
      if (!existsSync(path.join(ws, 'jobs', trained.id, 'adapter', 'adapter_config.json')))
        throw new Error('no jobs/<id>/adapter/adapter_config.json after Fetch Adapter');
      await panel.locator('vscode-button', { hasText: 'Fetch Adapter Again' }).waitFor({ timeout: 10_000 });
    });
    await step(
      'Evaluate this Adapter: vLLM with the adapter on the host, drag eval through the forwarded port, ' +
        'the comparison opens',
      async () => {
        const panel = page.frameLocator('iframe.webview').last().frameLocator('#active-frame');
        await panel.locator('vscode-button', { hasText: 'Evaluate this Adapter' }).click();
        await choose(page, 'Compare the adapter', 'base');
        const compare = page.frameLocator('iframe.webview').last().frameLocator('#active-frame');
        await compare.locator('h1', { hasText: /adapter-.*sft-curated.* vs base/ }).waitFor({ timeout: 90_000 });
        await compare.locator('tr[data-metric="hit_at_1"]').waitFor({ timeout: 10_000 });
        await page.screenshot({ path: path.join(RESULTS, 'adapter-comparison.png') });
        const jobs = jobsJson('ls', '--refresh');
        const serve = jobs.find((j) => j.id.includes('vllm-'));
        if (!serve || serve.state !== 'cancelled')
          throw new Error(`the vLLM job should be stopped: ${JSON.stringify(jobs.map((j) => [j.id, j.state]))}`);
      },
    );
    await step(
      'DRAG: Start Training… with DPO offers the finished SFT job on that host and continues its adapter',
      async () => {
        await command('DRAG: Start Training');
        await choose(page, 'Training method', 'DPO');
        const from = page.locator('.quick-input-widget input[placeholder^="Start DPO from"]');
        await choose(page, 'GPU host', 'gpu');
        await from.waitFor({ timeout: 20_000 });
        await page
          .locator('.quick-input-list .monaco-list-row', { hasText: /Continue .*sft-curated/ })
          .first()
          .waitFor({ timeout: 10_000 });
        await page.screenshot({ path: path.join(RESULTS, 'dpo-from-sft.png') });
        await choose(page, 'Start DPO from', 'Continue', /Continue .*sft-curated/);
        await choose(page, 'Preset', 'Quick check');
        const panel = page.frameLocator('iframe.webview').last().frameLocator('#active-frame');
        await panel.locator('h1', { hasText: 'dpo-curated' }).waitFor({ timeout: 60_000 });
        await panel.locator('.state.succeeded').waitFor({ timeout: 60_000 });
        const dpo = jobsJson('ls').find((j) => j.id.includes('dpo-curated'));
        const [record] = jobRecords((d) => d === dpo.id);
        // the SFT job trained on "gpu" (the one on cpu-box failed its check and never started)
        const sftRecord = jobRecords((d) => /^\d{8}-\d{6}-sft-curated-/.test(d)).find((j) => j.host === 'gpu');
        const sft = sftRecord.id;
        const at = record.command.indexOf('--sft-adapter');
        if (at < 0 || record.command[at + 1] !== `${sftRecord.remoteDir}/out/final`)
          throw new Error(
            `--sft-adapter missing or wrong in ${record.command.join(' ')} ` +
              `(the SFT job ${sft} is in ${sftRecord.remoteDir})`,
          );
        if (record.meta?.fromJob !== sft)
          throw new Error(`job.json meta.fromJob is ${record.meta?.fromJob}, not ${sft}`);
      },
    );
    await step('the Jobs view lists every job with its state, elapsed time and host', async () => {
      await page.locator('.activitybar [aria-label^="DRAG"]').first().click();
      const header = page.locator('.sidebar .pane-header', { hasText: /^\s*Jobs/i }).first();
      await header.waitFor({ timeout: 20_000 });
      if (!(await header.getAttribute('class')).includes('expanded')) await header.click();
      for (const name of ['Trajectories', 'Failed Searches', 'Datasets']) {
        const h = page.locator('.sidebar .pane-header.expanded', { hasText: new RegExp(`^\\s*${name}`, 'i') }).first();
        if (await h.count()) await h.click();
      }
      await page
        .locator('.monaco-list-row', { hasText: /sft-curated\s*succeeded · \d+ s · gpu/ })
        .first()
        .waitFor({ timeout: 20_000 });
      await page
        .locator('.monaco-list-row', { hasText: /sft-demo\s*cancelled/ })
        .first()
        .waitFor({ timeout: 10_000 });
      await page
        .locator('.monaco-list-row', { hasText: /vllm-sft-curated\s*cancelled/ })
        .first()
        .waitFor({ timeout: 10_000 });
      await page.screenshot({ path: path.join(RESULTS, 'jobs-view.png') });
    });
    await step("Continue with DPO… on a succeeded SFT job's row starts DPO from its adapter", async () => {
      const row = page.locator('.monaco-list-row', { hasText: /sft-curated\s*succeeded · \d+ s · gpu/ }).first();
      await row.click({ button: 'right' });
      const item = page.locator('.context-view .action-label', { hasText: 'Continue with DPO' }).first();
      await item.hover({ timeout: 10_000 });
      await page.keyboard.press('Enter'); // a click on code-server's menu only highlights the item
      await choose(page, 'Preset', 'Quick check');
      const dpoJobs = () => jobRecords((d) => d.includes('dpo-curated'));
      let dpo = dpoJobs();
      for (let i = 0; i < 120 && dpo.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 500));
        dpo = dpoJobs();
      }
      const newest = dpo
        .map((j) => j.id)
        .sort()
        .pop();
      const panel = page.frameLocator('iframe.webview').last().frameLocator('#active-frame');
      await panel.locator(`text=${newest}`).first().waitFor({ timeout: 60_000 });
      await panel.locator('.state.succeeded').waitFor({ timeout: 60_000 });
      if (
        dpo.length !== 2 ||
        !dpo.every((j) => j.meta?.fromJob && j.meta.fromJob.includes('sft-curated') && j.host === 'gpu')
      )
        throw new Error(`DPO jobs: ${JSON.stringify(dpo.map((j) => [j.id, j.host, j.meta?.fromJob]))}`);
    });
  } catch {
    await page.screenshot({ path: path.join(RESULTS, 'monitor-failure.png') }).catch(() => {});
  } finally {
    await browser.close();
    server.stop();
    writeFileSync(release, '');
    try {
      execFileSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'jobs', 'cancel', id, '--workspace', ws], {
        env: { ...process.env, ...env },
        stdio: 'ignore',
      });
    } catch {
      /* already finished */
    }
    cleanup();
  }
  // Every step must have run: the runner (ui.mjs) trusts this count.
  return { passed: tally.passed, failed: tally.failed + (tally.passed === 9 ? 0 : tally.failed === 0 ? 1 : 0) };
}
