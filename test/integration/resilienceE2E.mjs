// Faults injected while a person works in the editor (code-server + Playwright): `drag serve`
// killed with SIGKILL under an open inspector and Search Corpus, an unreadable index cache, and the
// curation log's and datasets' folders read-only, then full (small tmpfs mounts; as root even a
// read-only mount stops writes). Each step waits on files, log lines or the UI, never on a fixed
// sleep. Runs on its own: node test/integration/resilienceE2E.mjs (after npm run build).
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  clearToasts,
  installCodeServer,
  launchBrowser,
  makeWorkspace,
  ROOT,
  runCommand,
  startCodeServer,
  stepRunner,
  submitInput,
  toast,
  TOASTS,
  workbenchUrl,
} from './codeServer.mjs';

const RESULTS = path.join(ROOT, 'test-results');

/** Polls `probe` (cheap: a file read, a DOM query) until it returns a value; the timeout is only a backstop. */
export async function waitFor(what, probe, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A small tmpfs over `dir` (keeping nothing: the folder starts empty). False where mounting is not allowed. */
function mountTmpfs(dir, size) {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
    return true;
  } catch (err) {
    console.log(`    (cannot mount a tmpfs on ${dir}: ${String(err.stderr ?? err.message).trim()})`);
    return false;
  }
}

const remount = (dir, mode) => execFileSync('mount', ['-o', `remount,${mode}`, dir], { stdio: 'pipe' });

/** Fills the file system of `dir` with one file until it says ENOSPC; returns the file to delete. */
function fill(dir) {
  const file = path.join(dir, '.filler');
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(4096, 120);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if (err.code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return file;
}

/** Every file under `dir` with its bytes, to prove nothing already written changed. */
function snapshot(dir) {
  const out = {};
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.name === '.filler') continue;
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = readFileSync(p, 'base64');
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

/** The DRAG Studio output channel's file under code-server's user data folder. */
function dragLog(server) {
  const logs = path.join(path.dirname(server.logPath), 'ud', 'logs');
  const find = (d) => {
    for (const e of existsSync(d) ? readdirSync(d, { withFileTypes: true }) : []) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        const f = find(p);
        if (f) return f;
      } else if (/DRAG Studio\.log$/.test(e.name)) return p;
    }
    return null;
  };
  return () => {
    const f = find(logs);
    return f ? readFileSync(f, 'utf8') : '';
  };
}

export async function runResilienceE2E(installRoot) {
  mkdirSync(RESULTS, { recursive: true });
  const { ws, cleanup } = makeWorkspace();
  const ocr = path.join(ws, 'corpus', 'ocr_output.jsonl');
  const curationDir = path.join(ws, 'curation');
  const datasetsDir = path.join(ws, 'datasets');
  const mounted = [];
  if (mountTmpfs(curationDir, '64k')) mounted.push(curationDir);
  if (mountTmpfs(datasetsDir, '256k')) mounted.push(datasetsDir);
  const server = await startCodeServer(installRoot, ws);
  const browser = await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const { step, tally } = stepRunner();
  const log = dragLog(server);
  const decisionsFile = path.join(curationDir, 'decisions.jsonl');
  const decisions = () =>
    existsSync(decisionsFile) ? readFileSync(decisionsFile, 'utf8').split('\n').filter(Boolean) : [];
  const webviews = () => page.frameLocator('iframe.webview');
  const inspector = () => webviews().first().frameLocator('#active-frame');
  const search = () => webviews().last().frameLocator('#active-frame');
  // VS Code shows three toasts at most and queues the rest: a step that awaits one toast after
  // another clears the screen first, so that earlier notices cannot hide the one it waits for.
  const errorToasts = async () =>
    (await page.locator(TOASTS).allInnerTexts()).filter((t) => /search process|drag serve|exited|killed/i.test(t));
  const failedRow = (re) =>
    page.locator('.pane', { hasText: 'Failed Searches' }).locator('.monaco-list-row', { hasText: re }).first();
  const servePid = () => {
    try {
      return Number(execFileSync('pgrep', ['-f', '--', `serve --ocr ${ocr}`], { encoding: 'utf8' }).split('\n')[0]);
    } catch {
      return 0;
    }
  };
  const accept = async () => {
    await inspector().locator('h1').click();
    await page.keyboard.press('a');
  };
  try {
    await page.goto(workbenchUrl(server, ws));
    await step('faults: the inspector, Failed Searches and Search Corpus are open on a real drag serve', async () => {
      await page.locator('.activitybar [aria-label^="DRAG"]').first().click({ timeout: 90_000 });
      const failedHeader = page.locator('.pane-header', { hasText: 'Failed Searches' }).first();
      if ((await failedHeader.getAttribute('aria-expanded')) !== 'true') await failedHeader.click();
      await page.locator('.monaco-list-row', { hasText: 'runs/qwen-base/trajectories.jsonl' }).first().waitFor();
      const group = page.locator('.monaco-list-row[aria-level="2"]').first();
      await group.waitFor({ timeout: 60_000 });
      if ((await group.getAttribute('aria-expanded')) !== 'true') await group.locator('.monaco-tl-twistie').click();
      await page.locator('.monaco-list-row[aria-level="3"]').first().click();
      await inspector().locator('h1').waitFor({ timeout: 60_000 });
      await runCommand(page, 'DRAG: Search Corpus');
      await search().locator('vscode-textfield input').waitFor({ timeout: 60_000 });
      await search().locator('vscode-textfield input').fill('property plant equipment');
      await search().locator('li').first().waitFor({ timeout: 60_000 });
      if (!servePid()) throw new Error('no drag serve process is running');
      await failedRow(/closest: rank|not in the top 100/).waitFor({ timeout: 60_000 });
    });

    await step('faults: kill -9 drag serve; the next search works, one log line, no error toasts', async () => {
      const startsBefore = (log().match(/starting cli\.js serve/g) ?? []).length;
      process.kill(servePid(), 'SIGKILL');
      await waitFor('the log line about the kill', () => /drag serve was killed \(SIGKILL\)/.test(log()));
      await search().locator('vscode-textfield input').fill('net cash investing activities');
      await search().locator('.parsed', { hasText: 'investing' }).waitFor({ timeout: 60_000 });
      await search().locator('li').first().waitFor({ timeout: 60_000 });
      const text = log();
      const killed = (text.match(/SIGKILL/g) ?? []).length;
      const starts = (text.match(/starting cli\.js serve/g) ?? []).length - startsBefore;
      if (killed !== 1) throw new Error(`${killed} log lines mention the kill:\n${text.slice(-2000)}`);
      if (starts !== 1) throw new Error(`drag serve started ${starts} times after the kill`);
      const errors = await errorToasts();
      if (errors.length) throw new Error(`error toasts: ${errors.join(' | ')}`);
    });

    await step('faults: an unreadable index cache is rebuilt, with a message, and search still works', async () => {
      const dir = path.join(ws, 'corpus', '.cache', 'search');
      const [index] = readdirSync(dir).filter((f) => f.endsWith('.bin'));
      if (!index) throw new Error(`no index cache in ${dir}`);
      const garbage = Buffer.from('this is not an index');
      execFileSync('truncate', ['-s', '0', path.join(dir, index)]);
      const fd = openSync(path.join(dir, index), 'w');
      writeSync(fd, garbage);
      closeSync(fd);
      // The OCR file "changes" (as after Build Corpus): the service restarts and meets the bad cache.
      const now = new Date();
      utimesSync(ocr, now, now);
      await toast(page, /could not be read; rebuilt it/).waitFor({ timeout: 60_000 });
      if (readFileSync(path.join(dir, index)).equals(garbage)) throw new Error('the cache was not rewritten');
      await search().locator('vscode-textfield input').fill('purchases of property');
      await search().locator('.parsed', { hasText: 'purchases' }).waitFor({ timeout: 60_000 });
      await page.screenshot({ path: path.join(RESULTS, 'faults-index-rebuilt.png') });
    });

    await step(
      'faults: the corpus goes away and comes back: Failed Searches says why once, then ranks again',
      async () => {
        const starts = () => (log().match(/starting cli\.js serve/g) ?? []).length;
        const before = starts();
        const t0 = Date.now();
        renameSync(ocr, `${ocr}.away`);
        await failedRow(/Search unavailable: no corpus/).waitFor({ timeout: 60_000 });
        await page.screenshot({ path: path.join(RESULTS, 'faults-no-corpus.png') });
        // The person keeps working: searches fail at once with the reason, without starting drag serve again.
        for (const q of ['cash flows', 'revenue', 'net income']) {
          await search().locator('vscode-textfield input').fill(q);
          await search().locator('.error', { hasText: 'no corpus' }).waitFor({ timeout: 30_000 });
        }
        // Starts back off (at 0, 1, 3, 7 … s after the first failure), whatever the number of requests.
        const allowed = 1 + Math.floor(Math.log2((Date.now() - t0) / 1000 + 1));
        const made = starts() - before;
        if (made > allowed)
          throw new Error(`drag serve started ${made} times in ${Date.now() - t0} ms without a corpus`);
        const reasons = (log().match(/drag serve unavailable: no corpus/g) ?? []).length;
        if (reasons !== made) throw new Error(`${reasons} log lines for ${made} failed starts`);
        renameSync(`${ocr}.away`, ocr);
        await waitFor('the unavailable entry to go', async () => (await failedRow(/Search unavailable/).count()) === 0);
        await failedRow(/closest: rank|not in the top 100/).waitFor({ timeout: 60_000 });
      },
    );

    await step('faults: a PDF whose page is on screen is deleted: the panel says so', async () => {
      await search().locator('vscode-textfield input').fill('property plant equipment');
      const hit = search().locator('li', { hasText: 'ACME_2023_10K.pdf' }).first();
      await hit.waitFor({ timeout: 60_000 });
      await hit.click();
      await search().locator('.large img').waitFor({ timeout: 60_000 });
      rmSync(path.join(ws, 'corpus', 'pdfs', 'ACME_2023_10K.pdf'));
      await hit.click();
      await search()
        .locator('.error', {
          hasText: /no PDF named ACME_2023_10K\.pdf|ACME_2023_10K\.pdf is not in the corpus folder/,
        })
        .waitFor({ timeout: 60_000 });
      await page.screenshot({ path: path.join(RESULTS, 'faults-pdf-deleted.png') });
    });

    await step('faults: back in the inspector', async () => {
      await page.locator('.monaco-list-row[aria-level="3"]').first().click();
      await inspector().locator('h1').waitFor({ state: 'visible', timeout: 60_000 });
    });

    if (!mounted.includes(curationDir))
      console.log('  - UI: faults: curation log on a read-only/full disk skipped (no tmpfs)');
    else
      await step(
        'faults: the curation log read-only, then full: accept says why, nothing is lost, retry works',
        async () => {
          await accept();
          await waitFor('the first accept in the log', () => decisions().length === 1);
          const before = readFileSync(decisionsFile);
          remount(curationDir, 'ro');
          try {
            await accept();
            await inspector().locator('.notice.error', { hasText: 'read-only' }).waitFor({ timeout: 30_000 });
          } finally {
            remount(curationDir, 'rw');
          }
          if (!readFileSync(decisionsFile).equals(before)) throw new Error('the log changed while read-only');
          // Full: accept until the disk says so (the log's last page has room for a few decisions first,
          // since tmpfs allocates by page); each accept waits for its outcome.
          const filler = fill(curationDir);
          let full = false;
          try {
            for (let i = 0; i < 40 && !full; i++) {
              const size = statSync(decisionsFile).size;
              await accept();
              full = await Promise.race([
                inspector()
                  .locator('.notice.error', { hasText: 'disk is full' })
                  .waitFor({ timeout: 30_000 })
                  .then(() => true),
                waitFor('the accept in the log', () => statSync(decisionsFile).size > size, 30_000).then(() => false),
              ]);
            }
          } finally {
            rmSync(filler);
          }
          if (!full) throw new Error('40 accepts on a full disk and none said the disk is full');
          const after = readFileSync(decisionsFile);
          if (!after.subarray(0, before.length).equals(before)) throw new Error('bytes already in the log changed');
          const size = statSync(decisionsFile).size;
          await accept(); // the retry, once there is room again
          await waitFor('the retried decision in the log', () => statSync(decisionsFile).size > size, 30_000);
          decisions().forEach((l, i) => {
            try {
              JSON.parse(l);
            } catch {
              throw new Error(`line ${i + 1} of the log is torn: ${l.slice(0, 120)}`);
            }
          });
          if (!decisions().at(-1).includes('"accept"')) throw new Error('the retried accept is not the last line');
          await page.screenshot({ path: path.join(RESULTS, 'faults-curation-readonly.png') });
        },
      );

    if (!mounted.includes(datasetsDir))
      console.log('  - UI: faults: dataset export on a read-only/full disk skipped (no tmpfs)');
    else
      await step(
        'faults: export to a read-only, then full datasets folder fails, keeps what was written; retry works',
        async () => {
          await page.keyboard.press('Escape');
          const exportAs = async (name) => {
            await clearToasts(page);
            await runCommand(page, 'DRAG: Export Curated Dataset');
            await submitInput(page, name);
          };
          await exportAs('before');
          await toast(page, /exported before/).waitFor({ timeout: 90_000 });
          const kept = snapshot(datasetsDir);
          if (!Object.keys(kept).some((f) => f.endsWith('manifest.json'))) throw new Error('no manifest written');
          remount(datasetsDir, 'ro');
          try {
            await exportAs('readonly');
            await toast(page, /export failed/).waitFor({ timeout: 90_000 });
          } finally {
            remount(datasetsDir, 'rw');
          }
          if (JSON.stringify(snapshot(datasetsDir)) !== JSON.stringify(kept))
            throw new Error('datasets/ changed while read-only');
          if (!/EROFS|read-only/i.test(log())) throw new Error('the log does not say why the export failed');
          const filler = fill(datasetsDir);
          try {
            await exportAs('full');
            await toast(page, /export failed|exported full/).waitFor({ timeout: 90_000 });
          } finally {
            rmSync(filler);
          }
          const now = snapshot(datasetsDir);
          for (const [f, bytes] of Object.entries(kept))
            if (now[f] !== bytes) throw new Error(`${f} changed or was lost while the disk was full`);
          await exportAs('retried');
          await toast(page, /exported retried/).waitFor({ timeout: 90_000 });
        },
      );
  } catch {
    await page.screenshot({ path: path.join(RESULTS, 'faults-failure.png') }).catch(() => {});
    const text = log();
    if (text) console.log(`    DRAG Studio log (last lines):\n${text.split('\n').slice(-25).join('\n')}`);
  } finally {
    await browser.close();
    server.stop();
    for (const dir of mounted) {
      try {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      } catch {
        /* already gone */
      }
    }
    cleanup();
  }
  console.log(`UI faults (Playwright, code-server): ${tally.passed} passing, ${tally.failed} failing`);
  return tally;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const tally = await runResilienceE2E(installCodeServer());
  process.exit(tally.failed === 0 && tally.passed > 0 ? 0 : 1);
}
