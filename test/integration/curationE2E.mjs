// End-to-end curation on real data: a workspace made of the shared FinanceBench PDFs and OCR, a
// run collected with the embedded keyword agent, and a trajectory whose question is HTML. A person
// selects a trajectory, sees the page images, accepts it with `a`, edits a query (verified live)
// and pairs it, exports a dataset; the HTML question shows as text. Screenshots in test-results/.
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  appendFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  launchBrowser,
  ROOT,
  runCommand,
  startCodeServer,
  stepRunner,
  submitInput,
  workbenchUrl,
} from './codeServer.mjs';

const SHARED = path.resolve(ROOT, '..', 'shared', 'data', 'financebench-mini');
const RESULTS = path.join(ROOT, 'test-results');
export const XSS_QUESTION = "<img src=x onerror=\"document.title='pwned'\">What is 3M's capex?";

function makeWorkspace() {
  const dir = mkdtempSync(path.join(tmpdir(), 'drag-e2e-'));
  const ws = path.join(dir, 'financebench');
  mkdirSync(path.join(ws, 'corpus'), { recursive: true });
  // Copies in a temp folder (never into the project): the tests may write caches beside them.
  cpSync(path.join(SHARED, 'pdfs'), path.join(ws, 'corpus', 'pdfs'), { recursive: true });
  cpSync(path.join(SHARED, 'ocr_output.jsonl'), path.join(ws, 'corpus', 'ocr_output.jsonl'));
  cpSync(path.join(SHARED, 'questions.jsonl'), path.join(ws, 'questions.jsonl'));
  writeFileSync(path.join(ws, 'drag.config.json'), JSON.stringify({ questions: 'questions.jsonl' }, null, 2));
  const cli = path.join(ROOT, 'dist', 'cli.js');
  execFileSync(
    process.execPath,
    [
      cli,
      'collect',
      '--agent',
      'keyword',
      '--questions',
      path.join(ws, 'questions.jsonl'),
      '--ocr',
      path.join(ws, 'corpus', 'ocr_output.jsonl'),
      '--out',
      path.join(ws, 'runs', 'keyword'),
      '--sampling-config',
      'high_temp',
    ],
    { stdio: 'ignore' },
  );
  const file = path.join(ws, 'runs', 'keyword', 'trajectories.jsonl');
  const first = JSON.parse(readFileSync(file, 'utf8').split('\n')[0]);
  appendFileSync(file, `${JSON.stringify({ ...first, id: 'traj_xss', question_id: 'xss', question: XSS_QUESTION })}\n`);
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

export async function runCurationE2E(installRoot) {
  if (!existsSync(SHARED)) {
    console.log(`  - UI: curation end-to-end skipped: ${SHARED} is absent (no ../shared beside this clone)`);
    return { passed: 0, failed: 0 };
  }
  mkdirSync(RESULTS, { recursive: true });
  const { ws, cleanup } = makeWorkspace();
  const server = await startCodeServer(installRoot, ws);
  const browser = await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  let dialogs = 0;
  page.on('dialog', async (d) => {
    dialogs++;
    await d.dismiss();
  });
  const { step, tally } = stepRunner();
  const row = (text) => page.locator('.monaco-list-row', { hasText: text }).first();
  const inspector = () => page.frameLocator('iframe.webview').last().frameLocator('#active-frame');
  const decisions = () => {
    const f = path.join(ws, 'curation', 'decisions.jsonl');
    return existsSync(f)
      ? readFileSync(f, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l))
      : [];
  };
  try {
    await page.goto(workbenchUrl(server, ws));
    await step('curation: a trajectory of a real run opens in the inspector with its page images', async () => {
      await page.locator('.activitybar [aria-label^="DRAG"]').first().click({ timeout: 90_000 });
      await row('runs/keyword/trajectories.jsonl').waitFor({ timeout: 60_000 });
      // Trajectory rows are at tree level 3 (file, outcome group, trajectory); open the first one that found its page.
      const found = page.locator('.monaco-list-row[aria-level="2"]', { hasText: /Found (at rank 1|lower)/ }).first();
      await found.click();
      if ((await found.getAttribute('aria-expanded')) !== 'true') await page.keyboard.press('ArrowRight');
      const trajectory = page.locator('.monaco-list-row[aria-level="3"]').first();
      await trajectory.click();
      // Once in a CI run the click selected the row and opened nothing; the likely cause, the first
      // load of the (empty) curation log refreshing the tree under the click, is gone. A person
      // would click again; so does the test, and says so.
      if (
        !(await inspector()
          .locator('h1')
          .waitFor({ timeout: 20_000 })
          .then(
            () => true,
            () => false,
          ))
      ) {
        console.log('    (the first click on the trajectory opened no inspector within 20 s; clicking again)');
        await trajectory.click();
        await inspector().locator('h1').waitFor({ timeout: 60_000 });
      }
      await inspector().locator('figure.gt img').first().waitFor({ timeout: 90_000 });
      await inspector().locator('figure.gt').first().click();
      await inspector().locator('.page img').waitFor({ timeout: 60_000 });
      await inspector().locator('.box').first().waitFor({ timeout: 30_000 });
      await page.screenshot({ path: path.join(RESULTS, 'inspector-page.png') });
      await page.keyboard.press('Escape');
    });
    await step('curation: `a` accepts, written to curation/decisions.jsonl', async () => {
      await inspector().locator('h1').click();
      await page.keyboard.press('a');
      await inspector().locator('.badge.accepted').waitFor({ timeout: 20_000 });
      if (!decisions().some((d) => d.decision === 'accept')) throw new Error('no accept decision in the log');
      await page.screenshot({ path: path.join(RESULTS, 'inspector.png') });
    });
    await step("curation: `e` edits a query, verified live, then `x` pairs it against a step's query", async () => {
      await inspector().locator('h1').click();
      await page.keyboard.press('e');
      await submitInput(page, 'capital expenditures purchases property plant equipment', { timeout: 20_000 });
      const save = page.locator('.monaco-dialog-box .monaco-button', { hasText: 'Save Query' });
      await save.waitFor({ timeout: 30_000 });
      const verdict = await page.locator('.monaco-dialog-box').innerText();
      if (!/ground-truth page/.test(verdict)) throw new Error(`no live verdict in the dialog: ${verdict}`);
      await save.click();
      await inspector().locator('.mark.chosen').waitFor({ timeout: 20_000 });
      await inspector().locator('h1').click();
      await page.keyboard.press('x');
      const guard = page.locator('.monaco-dialog-box .monaco-button', { hasText: 'Save Pair' });
      // The guards ask for confirmation when the pair is weak (here the edited query may well not beat the step's).
      if (
        await guard.waitFor({ timeout: 5000 }).then(
          () => true,
          () => false,
        )
      ) {
        await page.screenshot({ path: path.join(RESULTS, 'inspector-guard.png') });
        await guard.click();
      }
      await inspector().locator('.meta', { hasText: 'pair:' }).waitFor({ timeout: 20_000 });
      const pair = decisions().find((d) => d.decision === 'pair');
      if (!pair || pair.chosen.query !== 'capital expenditures purchases property plant equipment')
        throw new Error(`pair not saved: ${JSON.stringify(pair)}`);
      if (!decisions().some((d) => d.decision === 'edit' && 'verified_rank' in d))
        throw new Error('no verified edit in the log');
      await page.screenshot({ path: path.join(RESULTS, 'inspector-pair.png') });
    });
    await step(
      'curation: `p` opens the DPO Pair Editor with every query of the question; Try verifies a query live',
      async () => {
        await inspector().locator('h1').click();
        await page.keyboard.press('p');
        const editor = page.frameLocator('iframe.webview').last().frameLocator('#active-frame');
        await editor.locator('table tbody tr').first().waitFor({ timeout: 30_000 });
        await editor.locator('vscode-textfield input').fill('dividends paid per share 2022');
        await editor.locator('vscode-textfield input').press('Enter');
        await editor.locator('.notice', { hasText: /ground-truth page|finds it at rank/ }).waitFor({ timeout: 30_000 });
        await page.screenshot({ path: path.join(RESULTS, 'pair-editor.png') });
      },
    );
    await step(
      'curation: DRAG: Export Curated Dataset… writes datasets/<name>/ and the Datasets view lists it',
      async () => {
        await page.locator('.sidebar .composite.title').first().click(); // focus out of the webview
        await runCommand(page, 'DRAG: Export Curated Dataset');
        await submitInput(page, 'e2e-curated');
        await page
          .locator('.notifications-toasts', { hasText: 'exported e2e-curated' })
          .first()
          .waitFor({ timeout: 60_000 });
        const manifest = JSON.parse(readFileSync(path.join(ws, 'datasets', 'e2e-curated', 'manifest.json'), 'utf8'));
        if (!manifest.curated || manifest.decisions_used.length < 2)
          throw new Error(`manifest: ${JSON.stringify(manifest).slice(0, 300)}`);
        await row('e2e-curated').waitFor({ timeout: 30_000 });
      },
    );
    await step('curation: a question that is HTML shows as text, and nothing runs', async () => {
      const title = await page.title();
      await runCommand(page, 'DRAG: Filter Trajectories');
      await submitInput(page, 'onerror');
      const xss = page.locator('.monaco-list-row[aria-level="3"]', { hasText: '<img src=x' }).first();
      const group = page.locator('.monaco-list-row[aria-level="2"]').first();
      await group.waitFor({ timeout: 20_000 });
      // The tree re-renders as the filter applies: retry the expand until the row shows.
      for (let attempt = 0; attempt < 5 && !(await xss.isVisible()); attempt++) {
        if ((await group.getAttribute('aria-expanded')) !== 'true') await group.locator('.monaco-tl-twistie').click();
        await xss.waitFor({ timeout: 2_000 }).catch(() => {}); // shown, or the tree re-rendered meanwhile
      }
      await xss.waitFor({ timeout: 20_000 });
      // A click that lands while the filtered tree re-renders opens nothing (VS Code drops the replaced
      // row's command): click again, at most three times, until the inspector shows the question.
      for (let attempt = 1; ; attempt++) {
        await xss.click();
        try {
          await inspector().locator('h1', { hasText: '<img src=x onerror=' }).waitFor({ timeout: 20_000 });
          break;
        } catch (err) {
          if (attempt === 3) throw err;
        }
      }
      const injected = await inspector().locator('h1 img').count();
      if (injected !== 0) throw new Error('the question was rendered as HTML');
      if ((await page.title()) === 'pwned' || dialogs > 0 || title === 'pwned') throw new Error('script ran');
      await page.screenshot({ path: path.join(RESULTS, 'inspector-xss.png') });
    });
  } catch {
    await page.screenshot({ path: path.join(RESULTS, 'curation-failure.png') }).catch(() => {});
  } finally {
    await browser.close();
    server.stop();
    cleanup();
  }
  return tally;
}
