// Restricted Mode in a real VS Code (code-server with workspace trust ON, Playwright): a folder whose
// drag.config.json names a local host whose `python` is a script in the folder (it writes a marker
// file), an endpoint on a local port, and a committed jobs/<id>/job.json whose SSH host is another
// local port. The test answers "Don't Trust", shows the Jobs view and invokes Start Training,
// Evaluate this Adapter and Collect through keybindings (they are hidden from the palette): the
// marker is never written, nothing connects to either port, and each time a notice says why.
// Then it grants trust from that notice: the Jobs view polls the job's host and Start Training runs
// the script, without a reload. Screenshot: test-results/restricted-mode.png (the docs use it).
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import {
  clearToasts,
  launchBrowser,
  makeWorkspace,
  openPalette,
  ROOT,
  startCodeServer,
  stepRunner,
  toast,
  workbenchUrl,
} from './codeServer.mjs';

const RESULTS = path.join(ROOT, 'test-results');
const JOB_ID = '20260101-000000-sft-remote-a1b2';

/** A TCP listener on a free loopback port that counts connections (and closes each at once). */
async function listener() {
  const seen = { count: 0 };
  const server = createServer((socket) => {
    seen.count++;
    socket.destroy();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: server.address().port, seen, close: () => server.close() };
}

/** Waits for `test()` to hold, polling a file or counter; `what` names it in the timeout error. */
async function until(test, what, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function runTrustE2E(installRoot) {
  mkdirSync(RESULTS, { recursive: true });
  const { dir, ws, cleanup } = makeWorkspace('untrusted-ws');
  const ssh = await listener();
  const endpoint = await listener();
  const marker = path.join(dir, 'python-ran.txt');
  // The folder's own "python": every call leaves a line in the marker; the trainer's environment check passes.
  mkdirSync(path.join(ws, 'tools'), { recursive: true });
  writeFileSync(
    path.join(ws, 'tools', 'python'),
    `#!/bin/sh\necho "$*" >> '${marker}'\ncase " $* " in *" env "*) echo '{"ok": true, "problems": []}' ;; esac\n`,
    { mode: 0o755 },
  );
  const configFile = path.join(ws, 'drag.config.json');
  writeFileSync(
    configFile,
    JSON.stringify(
      {
        ...JSON.parse(readFileSync(configFile, 'utf8')),
        endpoints: { lab: { baseUrl: `http://127.0.0.1:${endpoint.port}/v1`, model: 'm' } },
        hosts: {
          gpu: { launcher: 'local', workdir: path.join(dir, 'local-jobs'), python: path.join(ws, 'tools', 'python') },
        },
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
  // A committed job record, still "running", on an SSH host at the listener's port.
  // Submitted 40 minutes ago, so the Jobs view (and the docs' screenshot) reads like a live run.
  const at = new Date(Date.now() - 40 * 60_000).toISOString();
  const remoteDir = `/tmp/drag-jobs/${JOB_ID}`;
  mkdirSync(path.join(ws, 'jobs', JOB_ID), { recursive: true });
  writeFileSync(
    path.join(ws, 'jobs', JOB_ID, 'job.json'),
    JSON.stringify({
      version: 1,
      id: JOB_ID,
      name: 'sft-remote',
      host: 'cluster',
      hostConfig: { ssh: '127.0.0.1', port: ssh.port, workdir: '/tmp/drag-jobs', launcher: 'ssh' },
      remoteDir,
      command: ['python3', 'train.py'],
      uploads: [],
      submittedAt: at,
      meta: { kind: 'train', task: 'sft', dataset: 'datasets/curated', model: 'Qwen/Qwen2.5-VL-3B-Instruct' },
      last: {
        id: JOB_ID,
        state: 'running',
        exit_code: null,
        progress: { current_steps: 12, total_steps: 100 },
        host: 'cluster',
        launcher: 'ssh',
        remote_dir: remoteDir,
        submitted_at: at,
        started_at: at,
        finished_at: null,
        slurm_job_id: null,
        reason: null,
        checked_at: at,
      },
    }),
  );
  // Keybindings are one way a hidden command is still invoked (the others: another command, a test).
  const train = { dataset: 'curated', task: 'sft', host: 'gpu', preset: 'Quick check' };
  const keybindings = [
    { key: 'ctrl+shift+alt+f7', command: 'drag.startTraining', args: train },
    { key: 'ctrl+shift+alt+f8', command: 'drag.evaluateAdapter', args: JOB_ID },
    {
      key: 'ctrl+shift+alt+f9',
      command: 'drag.collectTrajectories',
      args: { agent: 'openai', endpoint: 'lab', preset: 'greedy', limit: 1 },
    },
    // VS Code shows three toasts at most: the test clears them without the palette (which would take the keys).
    { key: 'ctrl+shift+alt+f10', command: 'notifications.clearAll' },
  ];
  const server = await startCodeServer(installRoot, ws, {}, { trust: true, keybindings });
  const browser = await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 1280, height: 820 } });
  const { step, tally } = stepRunner();
  /** Lines in the workbench's logs (DRAG Studio's among them) that say `command` was refused. */
  const refusals = (command) => {
    const logs = path.join(path.dirname(server.logPath), 'ud', 'logs');
    let n = 0;
    for (const f of existsSync(logs) ? readdirSync(logs, { recursive: true }) : [])
      if (String(f).endsWith('.log'))
        n += readFileSync(path.join(logs, String(f)), 'utf8').split(`${command}: refused`).length - 1;
    return n;
  };
  const jobRow = () => page.locator('.monaco-list-row', { hasText: 'sft-remote' }).first();
  const untouched = () => {
    const problems = [];
    if (existsSync(marker)) problems.push(`the folder's python ran: ${readFileSync(marker, 'utf8').trim()}`);
    if (ssh.seen.count) problems.push(`${ssh.seen.count} connection(s) to the job's SSH port`);
    if (endpoint.seen.count) problems.push(`${endpoint.seen.count} connection(s) to the endpoint's port`);
    if (problems.length) throw new Error(problems.join('; '));
  };
  try {
    await page.goto(workbenchUrl(server, ws), { waitUntil: 'commit' });
    await step('"Don\'t Trust" in the trust dialog opens the folder in Restricted Mode', async () => {
      await page.getByRole('button', { name: /don.t trust/i }).click({ timeout: 180_000 });
      await page.locator('.statusbar-item', { hasText: 'Restricted Mode' }).first().waitFor({ timeout: 60_000 });
    });
    await step('the Jobs view shows the recorded state, marked as not refreshed, and polls nothing', async () => {
      await page.locator('.activitybar [aria-label^="DRAG"]').first().click({ timeout: 120_000 });
      const header = page.locator('.sidebar .pane-header', { hasText: /^\s*Jobs/i }).first();
      await header.waitFor({ timeout: 30_000 });
      if (!(await header.getAttribute('class')).includes('expanded')) await header.click();
      await page
        .locator('.monaco-list-row', { hasText: /sft-remote\s*running .* cluster .*not refreshed \(Restricted Mode\)/ })
        .first()
        .waitFor({ timeout: 60_000 });
      // The monitor would connect to the job's host: a click says why it does not open.
      await jobRow().click();
      await toast(page, 'trust it to follow the job live').waitFor({ timeout: 30_000 });
      untouched();
    });
    // The palette lists its matches at once: once an allowed command that matches is shown, so would a gated one be.
    const paletteRows = async (query, shown) => {
      await openPalette(page, `>${query}`);
      await page.locator('.quick-input-list .monaco-list-row', { hasText: shown }).first().waitFor({ timeout: 20_000 });
      const rows = await page.locator('.quick-input-list .monaco-list-row').allInnerTexts();
      await page.keyboard.press('Escape');
      return rows.join('\n');
    };
    await step('Start Training, the monitor and Evaluate Model are hidden from the palette', async () => {
      const training = await paletteRows('Training', 'DRAG: Build Training Data');
      if (/Start Training|Open Training Monitor/.test(training)) throw new Error(`shown untrusted:\n${training}`);
      const evaluate = await paletteRows('Evaluat', 'DRAG: Compare Evaluations');
      if (/Evaluate Model/.test(evaluate)) throw new Error(`shown untrusted:\n${evaluate}`);
    });
    await step('invoked anyway (keybindings), they start nothing and say why', async () => {
      // Focus the workbench without a click that makes a notice of its own (the job row would).
      await page.locator('.part.editor').first().click();
      // Each refusal on a clear screen: VS Code shows three toasts at most and queues the rest, so a
      // notice from elsewhere (the Jobs view's, say) must not hide the one awaited. Now and then, and in
      // most clean-clone CI runs for Start Training's third refusal, no toast comes although the command
      // ran and refused (its line is in DRAG Studio's log): VS Code drops toasts that come too fast
      // after others, and adds each on an animation frame. Such a key is pressed again, twice at most,
      // and the test prints the log's count and whether the status bar's bell holds a new notice.
      const refused = async (key, command, text) => {
        for (let press = 1; ; press++) {
          await clearToasts(page, () => page.keyboard.press('Control+Shift+Alt+F10'));
          await page.keyboard.press(key);
          try {
            await toast(page, text).waitFor({ timeout: 30_000 });
            return;
          } catch (err) {
            // Whether the command ran at all: the gate writes a line to DRAG Studio's log when it refuses.
            const bell = await page
              .locator('[id="status.notifications"] .codicon-bell-dot')
              .count()
              .then((n) => (n ? 'a new notice' : 'no new notice'))
              .catch(() => 'unknown');
            const ran = `${refusals(command)} refusal(s) of ${command} in DRAG Studio's log, the bell: ${bell}`;
            if (press === 3) throw new Error(`${err.message}\n(${ran})`);
            console.log(`    (no notice after ${key}, press ${press}; ${ran}: pressing it again)`);
          }
        }
      };
      await refused('Control+Shift+Alt+F8', 'drag.evaluateAdapter', 'trust it to evaluate the adapter');
      await refused('Control+Shift+Alt+F9', 'drag.collectTrajectories', 'trust it to collect trajectories');
      // Start Training last: its notice is the one the next step clicks.
      await refused(
        'Control+Shift+Alt+F7',
        'drag.startTraining',
        'This folder is in Restricted Mode: trust it to start training',
      );
      // The docs' screenshot: once the toasts have finished sliding in.
      const toasts = page.locator('.notifications-toasts').first();
      await toasts.evaluate((el) => Promise.all(el.getAnimations({ subtree: true }).map((a) => a.finished)));
      await page.screenshot({ path: path.join(RESULTS, 'restricted-mode.png') });
      untouched();
    });
    await step('trusting the folder from the notice enables everything at once, without a reload', async () => {
      untouched();
      await toast(page, 'trust it to start training')
        .locator('.monaco-button', { hasText: 'Manage Workspace Trust' })
        .click({ timeout: 20_000 });
      await page
        .locator('.workspace-trust-buttons-row')
        .getByRole('button', { name: /^Trust(?! Parent)/ })
        .first()
        .click({ timeout: 60_000 });
      await page
        .locator('.statusbar-item', { hasText: 'Restricted Mode' })
        .first()
        .waitFor({ state: 'hidden', timeout: 60_000 });
      // The Jobs view (still visible) starts polling: the job's host is contacted.
      await until(() => ssh.seen.count > 0, "the Jobs view's poll of the job's SSH host", 120_000);
      const training = await paletteRows('Training', 'DRAG: Build Training Data');
      if (!/Start Training/.test(training)) throw new Error(`not in the palette once trusted:\n${training}`);
    });
    await step("Start Training then runs the folder's python (the marker appears)", async () => {
      await page.keyboard.press('Control+Shift+Alt+F7');
      await until(() => existsSync(marker), "the folder's python to write its marker", 180_000);
    });
  } catch {
    await page.screenshot({ path: path.join(RESULTS, 'trust-failure.png') }).catch(() => {});
  } finally {
    await browser.close();
    server.stop();
    ssh.close();
    endpoint.close();
    cleanup();
  }
  // Every step must have run: the runner trusts this count.
  return { passed: tally.passed, failed: tally.failed + (tally.passed === 6 ? 0 : tally.failed === 0 ? 1 : 0) };
}
