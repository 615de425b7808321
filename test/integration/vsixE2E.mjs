// The packaged extension, installed like a user would: build the .vsix (npm run package), install
// it into a fresh code-server with --install-extension, open a workspace and run a command from
// it (DRAG: Search Corpus, which needs the packaged pdf.js and native canvas to show thumbnails).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launchBrowser, makeWorkspace, ROOT, runCommand, startCodeServer } from './codeServer.mjs';

const RESULTS = path.join(ROOT, 'test-results');

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
  let ok = false;
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
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
    ok = true;
    console.log(
      '  ✔ UI: the packaged .vsix installs into code-server and its Search Corpus command works (pdf.js and canvas from the package)',
    );
  } catch (err) {
    console.log(
      `  ✘ UI: the packaged .vsix installs and runs\n      ${String(err.message).split('\n').join('\n      ')}`,
    );
  } finally {
    await browser.close();
    server.stop();
    cleanup();
  }
  return { passed: ok ? 1 : 0, failed: ok ? 0 : 1 };
}
