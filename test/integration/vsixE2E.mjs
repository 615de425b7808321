// The packaged extension, installed like a user would: build the .vsix (npm run package), install
// it into a fresh code-server with --install-extension, open a workspace and run a command from
// it (DRAG: Search Corpus, which needs the packaged pdf.js and native canvas to show thumbnails),
// then run `drag --version` in a new integrated terminal: the extension puts its CLI on PATH.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launchBrowser, makeWorkspace, ROOT, runCommand, startCodeServer, stepRunner } from './codeServer.mjs';

const RESULTS = path.join(ROOT, 'test-results');

/**
 * Opens a terminal from the palette, types `drag --version` there, and waits for the file the shell
 * writes (moved into place once complete): the version and the exit code, or the shell's error.
 */
async function checkDragInTerminal(page) {
  const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const dir = mkdtempSync(path.join(tmpdir(), 'drag-vsix-term-'));
  const out = path.join(dir, 'version.txt');
  try {
    await runCommand(page, 'Terminal: Create New Terminal');
    // Click into the new terminal rather than trust that focus moved there (an open webview can keep it);
    // what is typed before its shell starts waits for the shell.
    const terminal = page.locator('.terminal-wrapper.active .xterm, .terminal .xterm').last();
    await terminal.waitFor({ timeout: 60_000 });
    await terminal.click();
    await page.waitForFunction(() => document.activeElement?.classList.contains('xterm-helper-textarea'), null, {
      timeout: 60_000,
    });
    const part = `'${out}.part'`;
    await page.keyboard.type(`drag --version > ${part} 2>&1; echo "exit $?" >> ${part}; mv ${part} '${out}'`);
    await page.keyboard.press('Enter');
    const deadline = Date.now() + 60_000;
    while (!existsSync(out)) {
      if (Date.now() > deadline) {
        await page.screenshot({ path: path.join(RESULTS, 'vsix-terminal-failed.png') });
        throw new Error('the terminal wrote no output within 60 s (screenshot: test-results/vsix-terminal-failed.png)');
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    await page.screenshot({ path: path.join(RESULTS, 'vsix-terminal.png') });
    const got = readFileSync(out, 'utf8');
    if (got !== `${version}\nexit 0\n`) throw new Error(`drag --version in the terminal wrote ${JSON.stringify(got)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runVsixE2E(installRoot) {
  mkdirSync(RESULTS, { recursive: true });
  execFileSync('npm', ['run', 'package', '--silent'], { cwd: ROOT, stdio: 'ignore' });
  const vsix = path.join(ROOT, 'drag-studio.vsix');
  if (!existsSync(vsix)) throw new Error('npm run package made no drag-studio.vsix');
  const extensions = mkdtempSync(path.join(tmpdir(), 'drag-vsix-ext-'));
  const entry = path.join(installRoot, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  execFileSync(process.execPath, [entry, '--extensions-dir', extensions, '--install-extension', vsix], {
    stdio: 'ignore',
  });
  const { ws, cleanup } = makeWorkspace('vsix-workspace');
  const server = await startCodeServer(installRoot, ws, {}, { extensionsDir: extensions });
  const browser = await launchBrowser();
  const { step, tally } = stepRunner();
  let page;
  try {
    await step(
      'the packaged .vsix installs into code-server and its Search Corpus command works ' +
        '(pdf.js and canvas from the package)',
      async () => {
        page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
        // Not the page's load event: on a busy machine it can take longer than goto's 30 s; the wait below bounds it.
        await page.goto(`${server.url}/?folder=${encodeURIComponent(ws)}`, { waitUntil: 'commit' });
        await page.locator('.activitybar [aria-label^="DRAG"]').first().waitFor({ timeout: 90_000 });
        // The command comes from the installed package, which can take longer to register.
        await runCommand(page, 'DRAG: Search Corpus', { timeout: 20_000 });
        const frame = page.frameLocator('iframe.webview').last().frameLocator('#active-frame');
        await frame.locator('vscode-textfield input').fill('net income');
        await frame.locator('li').first().waitFor({ timeout: 60_000 });
        await frame.locator('li .thumb img').first().waitFor({ timeout: 60_000 });
        await page.screenshot({ path: path.join(RESULTS, 'vsix-installed.png') });
      },
    );
    // After the search the extension is active, so terminals opened now get its PATH entry.
    await step('drag --version runs in an integrated terminal of the installed .vsix', () => checkDragInTerminal(page));
  } catch {
    // The failing step printed why; the terminal step needs the extension the search step started.
  } finally {
    await browser.close();
    server.stop();
    cleanup();
  }
  return tally;
}
