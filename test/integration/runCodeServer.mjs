// Runs the integration suite inside a real VS Code extension host (code-server), then the
// Playwright UI test. Prints "VS Code <version> extension host: <n> passing, <m> failing" and
// exits non-zero on any failure or timeout.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  codeServerVersion,
  installCodeServer,
  launchBrowser,
  makeWorkspace,
  ROOT,
  startCodeServer,
  workbenchUrl,
} from './codeServer.mjs';

const TIMEOUT_MS = Number(process.env.DRAG_IT_TIMEOUT_MS ?? 8 * 60_000);
const testsPath = path.join(ROOT, 'dist', 'test', 'integration', 'index.js');
if (!existsSync(testsPath) || !existsSync(path.join(ROOT, 'dist', 'extension.js'))) {
  console.error('dist/ is not built: run "npm run build" first');
  process.exit(1);
}

const installRoot = installCodeServer();
const version = codeServerVersion(installRoot);
const { dir, ws, cleanup } = makeWorkspace();
const resultsFile = path.join(dir, 'results.json');
const server = await startCodeServer(installRoot, ws, { DRAG_TEST_RESULTS: resultsFile });
const browser = await launchBrowser();
let exitCode = 1;
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  // The wait for results below bounds the run; the workbench's page load alone can pass 30 s on a
  // busy machine, so the navigation waits only until it has begun.
  await page.goto(workbenchUrl(server, ws, { testsPath }), { waitUntil: 'commit' });
  const deadline = Date.now() + TIMEOUT_MS;
  while (!existsSync(resultsFile)) {
    if (Date.now() > deadline)
      throw new Error(`no results after ${TIMEOUT_MS / 1000} s; code-server log: ${server.logPath}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  await new Promise((r) => setTimeout(r, 200)); // let the writer finish
  const outcome = JSON.parse(readFileSync(resultsFile, 'utf8'));
  for (const t of outcome.passes) console.log(`  ✔ ${t}`);
  for (const t of outcome.pending) console.log(`  - ${t} (pending)`);
  for (const f of outcome.failures)
    console.log(
      `  ✘ ${f.title}\n${f.error
        .split('\n')
        .map((l) => `      ${l}`)
        .join('\n')}`,
    );
  const { passes, failures } = outcome;
  console.log(
    `VS Code ${outcome.version ?? version} extension host: ${passes.length} passing, ${failures.length} failing`,
  );
  exitCode = outcome.failures.length === 0 && outcome.passes.length > 0 ? 0 : 1;
} catch (err) {
  console.error(`integration run failed: ${err.message}`);
  try {
    console.error(readFileSync(server.logPath, 'utf8').split('\n').slice(-40).join('\n'));
  } catch {
    /* no log */
  }
  console.log(`VS Code ${version} extension host: 0 passing, 1 failing`);
} finally {
  await browser.close();
  server.stop();
  cleanup();
}
if (exitCode === 0 && process.env.DRAG_SKIP_UI !== '1') {
  const { runUiTests } = await import('./ui.mjs');
  exitCode = await runUiTests(installRoot);
  const trust = await (await import('./trustE2E.mjs')).runTrustE2E(installRoot);
  console.log(`UI (Restricted Mode, trust on): ${trust.passed} passing, ${trust.failed} failing`);
  if (trust.failed) exitCode = 1;
}
if (
  process.env.DRAG_SKIP_UI !== '1' &&
  (await (await import('./resilienceE2E.mjs')).runResilienceE2E(installRoot)).failed
)
  exitCode = 1;
const twoWindows = process.env.DRAG_SKIP_UI !== '1' && (await import('./twoWindowsE2E.mjs'));
if (twoWindows && (await twoWindows.runTwoWindowsE2E(installRoot)).failed) exitCode = 1;
process.exit(exitCode);
