// Starts a real VS Code (code-server, installed from npm by scripts/install-code-server.sh) and
// headless Debian Chromium, offline, as ../shared/docs/VSCODE-TESTING.md describes. Shared by
// the integration runner and the Playwright UI test.
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHROMIUM = process.env.DRAG_CHROMIUM ?? '/usr/bin/chromium';

export function installCodeServer() {
  const out = execFileSync('bash', [path.join(ROOT, 'scripts', 'install-code-server.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return out.trim().split('\n').pop();
}

export function codeServerVersion(installRoot) {
  const pkg = JSON.parse(
    readFileSync(path.join(installRoot, 'node_modules', 'code-server', 'lib', 'vscode', 'package.json'), 'utf8'),
  );
  return pkg.version;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** Copies the fixture workspace to a temp folder so tests may write to it. */
export function makeWorkspace(name = 'workspace') {
  const dir = mkdtempSync(path.join(tmpdir(), 'drag-it-'));
  const ws = path.join(dir, name);
  cpSync(path.join(ROOT, 'test', 'fixtures', 'workspace'), ws, { recursive: true });
  // A child of the extension host may still be writing a cache as it stops: retry, and never fail a test on cleanup.
  return {
    dir,
    ws,
    cleanup: () => {
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
      } catch {
        /* left in tmp */
      }
    },
  };
}

/**
 * Starts code-server on a free loopback port; resolves once it answers HTTP. `options.trust`: workspace
 * trust on (VS Code asks whether to trust the folder); `options.keybindings`: the user's keybindings.json.
 */
export async function startCodeServer(installRoot, workspace, env = {}, options = {}) {
  const port = await freePort();
  const state = mkdtempSync(path.join(tmpdir(), 'drag-cs-'));
  mkdirSync(path.join(state, 'ud', 'User'), { recursive: true });
  // Quiet, deterministic workbench: no welcome page, no telemetry prompts.
  const settings = {
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'workbench.enableExperiments': false,
    'security.workspace.trust.enabled': !!options.trust,
    'window.commandCenter': false,
    'chat.commandCenter.enabled': false,
    'workbench.colorTheme': 'Default Dark Modern',
  };
  mkdirSync(path.join(state, 'ud', 'User'), { recursive: true });
  (await import('node:fs')).writeFileSync(path.join(state, 'ud', 'User', 'settings.json'), JSON.stringify(settings));
  if (options.keybindings)
    (await import('node:fs')).writeFileSync(
      path.join(state, 'ud', 'User', 'keybindings.json'),
      JSON.stringify(options.keybindings),
    );
  const entry = path.join(installRoot, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  const logPath = path.join(state, 'code-server.log');
  const { openSync } = await import('node:fs');
  const logFd = openSync(logPath, 'a');
  const child = spawn(
    process.execPath,
    [
      entry,
      '--auth',
      'none',
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--user-data-dir',
      path.join(state, 'ud'),
      '--extensions-dir',
      options.extensionsDir ?? path.join(state, 'ext'),
      '--disable-telemetry',
      '--disable-update-check',
      ...(options.trust ? [] : ['--disable-workspace-trust']),
      workspace,
    ],
    { env: { ...process.env, ...env }, stdio: ['ignore', logFd, logFd], detached: true },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`code-server exited with ${child.exitCode}; log: ${logPath}`);
    try {
      const res = await fetch(`${url}/`, { redirect: 'manual' });
      if (res.status === 302 || res.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`code-server did not answer within 60 s; log: ${logPath}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    port,
    logPath,
    stop: () => {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      setTimeout(() => rmSync(state, { recursive: true, force: true }), 500).unref();
    },
  };
}

/** The workbench URL that loads our extension in development mode (and optionally runs tests). */
export function workbenchUrl(server, workspace, { testsPath } = {}) {
  const remote = (p) => `vscode-remote://127.0.0.1:${server.port}${p}`;
  const payload = [['extensionDevelopmentPath', remote(ROOT)]];
  if (testsPath) payload.push(['extensionTestsPath', remote(testsPath)]);
  const query = `folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  return `${server.url}/?${query}`;
}

export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

/** Opens the command palette (retrying: a keypress can land while focus moves) and types `text`. */
export async function openPalette(page, text) {
  const box = page.locator('.quick-input-widget input');
  // The palette can close again before it is typed into (focus taken by a webview or a
  // notification; one CI run waited 30 s on a hidden box): reopen it and type again.
  for (let attempt = 0; attempt < 4; attempt++) {
    await page.keyboard.press('F1');
    const shown = await box.waitFor({ timeout: 5_000 }).then(
      () => true,
      () => false,
    );
    if (
      shown &&
      (await box.fill(text, { timeout: 5_000 }).then(
        () => true,
        () => false,
      ))
    )
      return box;
    await page.keyboard.press('Escape');
  }
  await page.keyboard.press('F1');
  await box.fill(text);
  return box;
}

/**
 * Runs a palette command: opens the palette, waits for the command's row, presses Enter in the box
 * (not wherever focus is). Returns the box, which the command's own inputs reuse.
 */
// 30 s: on a busy machine the palette can take that long to list a command an extension just registered.
export async function runCommand(page, title, { timeout = 30_000 } = {}) {
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  // The palette lists the commands whose when-clause held as it opened; just after the workbench
  // loads a context key (isWorkspaceTrusted) can still be unset. So a command that does not show
  // is looked for again in a newly opened palette, three times in all.
  for (let attempt = 1; ; attempt++) {
    const box = await openPalette(page, `>${title}`);
    const shown = await row.waitFor({ timeout }).then(
      () => true,
      () => false,
    );
    if (shown) {
      await box.press('Enter');
      return box;
    }
    if (attempt === 3) throw new Error(`"${title}" is not in the command palette\n${await describeQuickInput(page)}`);
    await page.keyboard.press('Escape');
  }
}

/** The workbench's notification toasts, on screen now. */
export const TOASTS = '.notifications-toasts .notification-toast';

/** The first toast on screen that shows `text` (a string or a RegExp). */
export function toast(page, text) {
  return page.locator(TOASTS, { hasText: text }).first();
}

/**
 * Clears every notification toast and waits until none shows, so that a toast awaited next is a new
 * one. `clear` does the clearing: the palette's command, or a key bound to it where the palette
 * would take the keys that follow.
 */
export async function clearToasts(page, clear = () => runCommand(page, 'Notifications: Clear All Notifications')) {
  await clear();
  await page.locator(TOASTS).first().waitFor({ state: 'hidden', timeout: 30_000 });
}

/**
 * Types `text` into the quick input that a command opened and submits it there (Enter in that box,
 * not wherever focus is). Returns the box.
 */
export async function submitInput(page, text, { timeout = 30_000 } = {}) {
  const box = page.locator('.quick-input-widget input');
  await box.waitFor({ timeout });
  await box.fill(text);
  await box.press('Enter');
  return box;
}

/** What the quick input shows now (placeholder, value, rows) and any toasts: for a step's error. */
export async function describeQuickInput(page) {
  const widget = page.locator('.quick-input-widget');
  const shown = await widget.isVisible().catch(() => false);
  const input = page.locator('.quick-input-widget input').first();
  const placeholder = shown ? await input.getAttribute('placeholder').catch(() => null) : null;
  const value = shown ? await input.inputValue().catch(() => '') : '';
  const rows = shown
    ? (
        await page
          .locator('.quick-input-list .monaco-list-row')
          .allInnerTexts()
          .catch(() => [])
      )
        .slice(0, 8)
        .map((t) => t.replace(/\s+/g, ' ').trim())
    : [];
  const toasts = (
    await page
      .locator(TOASTS)
      .allInnerTexts()
      .catch(() => [])
  ).map((t) => t.replace(/\s+/g, ' ').trim());
  const focused = await page
    .evaluate(() => {
      const e = document.activeElement;
      return e ? `${e.tagName.toLowerCase()}${e.className ? `.${String(e.className).split(' ')[0]}` : ''}` : 'none';
    })
    .catch(() => '?');
  const rest = `focus ${focused}; toasts ${JSON.stringify(toasts)}`;
  return shown
    ? `quick input "${placeholder ?? ''}" value "${value}" rows ${JSON.stringify(rows)}; ${rest}`
    : `no quick input shown; ${rest}`;
}

/**
 * Choose a row of the quick pick whose placeholder starts with `placeholder`: fill `filter` into
 * that pick's own box and press Enter there, not wherever keyboard focus is (a webview that
 * loads or a toast can take it: one CI run typed "DPO" into nothing and waited on a pick that
 * never came). Waits until the pick has gone, so the next pick is a new one. A timeout says what
 * the quick input showed instead.
 */
export async function choose(page, placeholder, filter, row = filter) {
  const box = page.locator(`.quick-input-widget input[placeholder^="${placeholder.replace(/"/g, '\\"')}"]`);
  try {
    await box.waitFor({ timeout: 20_000 });
    await box.fill(filter);
    await page.locator('.quick-input-list .monaco-list-row', { hasText: row }).first().waitFor({ timeout: 10_000 });
    await box.press('Enter');
    await box.waitFor({ state: 'hidden', timeout: 10_000 });
  } catch (err) {
    const why = String(err.message).split('\n')[0];
    throw new Error(`choosing "${filter}" in the "${placeholder}" pick: ${why}\n${await describeQuickInput(page)}`);
  }
}

/**
 * Named UI steps: each prints ✔ or ✘ (with the error), and is counted in `tally`. A failing step
 * rethrows, since the steps after it build on it.
 */
export function stepRunner() {
  const tally = { passed: 0, failed: 0 };
  const step = async (name, fn) => {
    try {
      await fn();
      tally.passed++;
      console.log(`  ✔ UI: ${name}`);
    } catch (err) {
      tally.failed++;
      console.log(`  ✘ UI: ${name}\n      ${String(err.message).split('\n').join('\n      ')}`);
      throw err;
    }
  };
  return { step, tally };
}
