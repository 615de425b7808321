// UI test: a person's path through the Trajectories view in a real VS Code, driven by Playwright
// in headless Chromium. Saves screenshots under test-results/ (the README uses them).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  launchBrowser,
  makeWorkspace,
  ROOT,
  runCommand,
  startCodeServer,
  stepRunner,
  submitInput,
  workbenchUrl,
} from './codeServer.mjs';

const RESULTS = path.join(ROOT, 'test-results');

/**
 * The webview whose page has `selector` (several panels can be open; which iframe is last depends on
 * the workbench): polls the open webviews until one does, up to `timeout`.
 */
async function webviewWith(page, selector, timeout = 60_000) {
  const until = Date.now() + timeout;
  for (;;) {
    const n = await page.locator('iframe.webview').count();
    for (let i = n - 1; i >= 0; i--) {
      const frame = page.frameLocator('iframe.webview').nth(i).frameLocator('#active-frame');
      if (
        await frame
          .locator(selector)
          .count()
          .catch(() => 0)
      )
        return frame;
    }
    if (Date.now() > until) throw new Error(`no open webview shows ${selector}`);
    await page.waitForTimeout(500);
  }
}

/**
 * An axe-like check of one panel: every button, [role=button], link and option has an accessible
 * name (aria-label, visible text or title); returns those that do not.
 */
async function unnamedControls(frame) {
  return frame
    .locator('button, [role="button"], a, vscode-button, [role="option"]')
    .evaluateAll((els) =>
      els
        .filter((e) => !(e.getAttribute('aria-label') || e.textContent?.trim() || e.getAttribute('title')))
        .map((e) => e.outerHTML.slice(0, 120)),
    );
}

/** Presses Tab up to `max` times in a panel until `matches(focused element)` holds; the focused elements' names. */
async function tabTo(page, frame, matches, max = 40) {
  await frame.locator('h1').first().click();
  const seen = [];
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const focused = await frame.locator('body').evaluate(() => {
      let a = document.activeElement;
      while (a?.shadowRoot?.activeElement) a = a.shadowRoot.activeElement;
      return a
        ? { tag: a.tagName.toLowerCase(), action: a.getAttribute('data-action'), text: a.textContent?.trim() }
        : null;
    });
    if (focused) seen.push(focused.action ?? focused.text?.slice(0, 30) ?? focused.tag);
    if (focused && matches(focused)) return seen;
  }
  throw new Error(`Tab did not reach it; focus went through: ${seen.join(' | ')}`);
}

export async function runUiTests(installRoot) {
  mkdirSync(RESULTS, { recursive: true });
  const { ws, cleanup } = makeWorkspace('financebench-demo');
  // Two evaluations to compare (the embedded keyword agent, two presets), one second apart.
  const cli = path.join(ROOT, 'dist', 'cli.js');
  for (const [name, preset] of [
    ['keyword-greedy', 'greedy'],
    ['keyword-creative', 'creative'],
  ]) {
    execFileSync(
      process.execPath,
      [
        cli,
        'eval',
        '--agent',
        'keyword',
        '--questions',
        path.join(ws, 'questions.jsonl'),
        '--ocr',
        path.join(ws, 'corpus', 'ocr_output.jsonl'),
        '--out',
        path.join(ws, 'evals', name),
        '--sampling-config',
        preset,
      ],
      { stdio: 'ignore' },
    );
    await new Promise((r) => setTimeout(r, 1100));
  }
  const server = await startCodeServer(installRoot, ws);
  const browser = await launchBrowser();
  const { step, tally } = stepRunner();
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  try {
    await page.goto(workbenchUrl(server, ws));
    await step('the DRAG activity bar entry opens the Trajectories view', async () => {
      const entry = page.locator('.activitybar [aria-label^="DRAG"]').first();
      await entry.waitFor({ timeout: 90_000 });
      await entry.click();
      await page
        .locator('.sidebar .pane-header', { hasText: /trajectories/i })
        .first()
        .waitFor({ timeout: 30_000 });
      // Widen the side bar so descriptions (counts, ranks) are readable in the screenshots.
      const box = await page.locator('.part.sidebar').first().boundingBox();
      if (box) {
        const edge = box.x + box.width;
        await page.mouse.move(edge - 1, box.y + 300);
        await page.mouse.down();
        await page.mouse.move(edge + 80, box.y + 300, { steps: 4 });
        await page.mouse.move(660, box.y + 300, { steps: 8 });
        await page.mouse.up();
      }
    });
    const row = (text) => page.locator('.monaco-list-row', { hasText: text }).first();
    // Five views share the side bar; collapse the others so the Trajectories tree has the room.
    for (const name of ['Failed Searches', 'Datasets', 'Evaluations']) {
      const header = page
        .locator('.sidebar .pane-header.expanded', { hasText: new RegExp(`^\\s*${name}`, 'i') })
        .first();
      if (await header.count()) await header.click();
    }
    await step('the tree lists the runs and groups a run by outcome with counts', async () => {
      await row('runs/qwen-base/trajectories.jsonl').waitFor({ timeout: 60_000 });
      await row('runs/broken/trajectories.jsonl').waitFor();
      // Collapse the broken run so the good run's groups are on screen.
      await row('runs/broken/trajectories.jsonl').click();
      await page.keyboard.press('ArrowLeft');
      for (const label of ['Found at rank 1', 'Found lower', 'Never found', 'Errored'])
        await row(label).waitFor({ timeout: 20_000 });
      const text = await row('Found at rank 1').innerText();
      if (!/Found at rank 1\s*4/.test(text)) throw new Error(`expected the group count 4, row reads "${text}"`);
    });
    await step('a trajectory expands to its steps and result pages, the ground truth marked', async () => {
      await row('Found at rank 1').click();
      await row('Assume that you are a public equities analyst').waitFor({ timeout: 20_000 });
      await row('Assume that you are a public equities analyst').click();
      await row('Assume that you are a public equities analyst').locator('.monaco-tl-twistie').click();
      await row('3M balance sheet property plant equipment net').waitFor({ timeout: 20_000 });
      await row('3M balance sheet property plant equipment net').locator('.monaco-tl-twistie').click();
      const gt = row('3M_2018_10K.pdf p.58');
      await gt.waitFor({ timeout: 20_000 });
      const text = await gt.innerText();
      if (!/rank 2 · ground truth/.test(text)) throw new Error(`ground-truth row reads "${text}"`);
      // Selecting the trajectory opened it in the inspector beside the tree.
      await page
        .frameLocator('iframe.webview')
        .last()
        .frameLocator('#active-frame')
        .locator('h1', { hasText: 'Assume that you are a public equities analyst' })
        .waitFor({ timeout: 60_000 });
      await page.mouse.move(900, 600);
      await page.screenshot({ path: path.join(RESULTS, 'trajectories-view.png') });
    });
    await step('the filter button narrows the tree to matching questions and queries', async () => {
      await page
        .locator('.sidebar .pane-header', { hasText: /trajectories/i })
        .first()
        .hover();
      await page.locator('.sidebar [aria-label^="Filter Trajectories"]').first().click();
      await submitInput(page, 'cyclical');
      await row('1 of 8 trajectories').waitFor({ timeout: 20_000 });
      await page.screenshot({ path: path.join(RESULTS, 'trajectories-filtered.png') });
    });
    await step('the broken file shows its bad lines in the Problems panel', async () => {
      await page.keyboard.press('Control+Shift+M');
      await page
        .locator('.markers-panel .monaco-list-row', { hasText: 'question: Invalid input' })
        .first()
        .waitFor({ timeout: 20_000 });
      await page.screenshot({ path: path.join(RESULTS, 'problems-panel.png') });
    });
    await step('DRAG: Search Corpus ranks pages as you type, with snippets, thumbnails and a page view', async () => {
      await page.keyboard.press('Escape');
      // Room for the panel: hide the bottom panel and the side bar.
      await runCommand(page, 'View: Hide Panel');
      await runCommand(page, 'View: Close Primary Side Bar');
      await runCommand(page, 'DRAG: Search Corpus');
      const frame = page.frameLocator('iframe.webview').last().frameLocator('#active-frame');
      const query = frame.locator('vscode-textfield input');
      await query.waitFor({ timeout: 60_000 });
      await query.fill('property plant equipment');
      const first = frame.locator('li').first();
      await first.waitFor({ timeout: 60_000 });
      const firstText = await first.innerText();
      if (!/ACME_2023_10K\.pdf p\.\d\/4/.test(firstText)) throw new Error(`first result reads "${firstText}"`);
      const marks = await frame.locator('li mark').allInnerTexts();
      if (!marks.map((m) => m.toLowerCase()).includes('equipment'))
        throw new Error(`highlighted terms: ${marks.join(', ')}`);
      await frame.locator('.parsed', { hasText: 'AND(property, plant, equipment)' }).waitFor({ timeout: 10_000 });
      await frame.locator('li .thumb img').first().waitFor({ timeout: 60_000 });
      await first.click();
      await frame.locator('.large img').waitFor({ timeout: 60_000 });
      await page.waitForTimeout(500);
      await page.screenshot({ path: path.join(RESULTS, 'search-playground.png') });
    });
    await step('Search Corpus comes back after "Developer: Reload Window", showing its results', async () => {
      await runCommand(page, 'Developer: Reload Window');
      await page.locator('.activitybar [aria-label^="DRAG"]').first().waitFor({ timeout: 120_000 });
      const frame = await webviewWith(page, 'vscode-textfield input', 120_000);
      const first = frame.locator('li[role="option"]').first();
      await first.waitFor({ timeout: 120_000 });
      const firstText = await first.innerText();
      if (!/ACME_2023_10K\.pdf p\.\d\/4/.test(firstText)) throw new Error(`first result after reload: "${firstText}"`);
      const value = await frame.locator('vscode-textfield input').inputValue();
      if (value !== 'property plant equipment') throw new Error(`the query after reload reads "${value}"`);
      await page.screenshot({ path: path.join(RESULTS, 'search-restored.png') });
    });
    await step(
      "every panel control has a name; Tab reaches the inspector's Accept; " +
        'with single-letter shortcuts off, `a` does not accept',
      async () => {
        const search = await webviewWith(page, 'vscode-textfield input');
        const unnamedSearch = await unnamedControls(search);
        if (unnamedSearch.length) throw new Error(`Search Corpus: unnamed controls ${unnamedSearch.join(' ; ')}`);
        // Single-letter shortcuts off (WCAG 2.1.4), as a person sets it in the workspace settings.
        mkdirSync(path.join(ws, '.vscode'), { recursive: true });
        writeFileSync(
          path.join(ws, '.vscode', 'settings.json'),
          JSON.stringify({ 'drag.keyboard.singleLetterShortcuts': false }),
        );
        await page.locator('.tab', { hasText: 'Inspect:' }).first().click({ timeout: 30_000 });
        const inspector = await webviewWith(page, 'vscode-button[data-action="accept"]');
        // The setting reaches the panel: the Accept button no longer shows its key.
        await inspector
          .locator('vscode-button[data-action="accept"]', { hasText: /^\s*Accept\s*$/ })
          .waitFor({ timeout: 60_000 });
        const unnamed = await unnamedControls(inspector);
        if (unnamed.length) throw new Error(`Inspector: unnamed controls ${unnamed.join(' ; ')}`);
        const steps = await inspector.locator('[role="list"][aria-label="Steps"] > [role="listitem"]').count();
        if (steps === 0) throw new Error('the inspector lists no steps with role=listitem');
        const decisions = path.join(ws, 'curation', 'decisions.jsonl');
        const accepts = () =>
          existsSync(decisions)
            ? readFileSync(decisions, 'utf8')
                .split('\n')
                .filter((l) => /"accept"/.test(l)).length
            : 0;
        const before = accepts();
        await tabTo(page, inspector, (f) => f.action === 'accept');
        await page.keyboard.press('a'); // off: nothing
        await page.keyboard.press('Enter'); // on the focused Accept button: accepts once
        await inspector.locator('[role="status"]', { hasText: 'Accepted.' }).waitFor({ timeout: 60_000 });
        // The host handles messages in order: a decision from `a` would have been written before this one.
        const after = accepts();
        if (after - before !== 1)
          throw new Error(`expected one accept (the button), decisions.jsonl has ${after - before}`);
        await page.screenshot({ path: path.join(RESULTS, 'inspector-no-single-keys.png') });
      },
    );
    await step(
      'DRAG: Collect Trajectories… runs from the palette with live progress and the run appears in the tree',
      async () => {
        await runCommand(page, 'DRAG: Collect Trajectories');
        await page
          .locator('.quick-input-list .monaco-list-row', { hasText: 'Embedded keyword agent' })
          .first()
          .click({ timeout: 20_000 });
        await page
          .locator('.quick-input-list .monaco-list-row', { hasText: 'high_temp' })
          .first()
          .click({ timeout: 20_000 });
        await submitInput(page, '5');
        await page
          .locator('.notifications-toasts', { hasText: /collected|collecting/ })
          .first()
          .waitFor({ timeout: 60_000 });
        await page.locator('.notifications-toasts', { hasText: 'collected' }).first().waitFor({ timeout: 60_000 });
        await page.locator('.activitybar [aria-label^="DRAG"]').first().click();
        await page
          .locator('.monaco-list-row', { hasText: /runs\/\d{8}-\d{6}-keyword\/trajectories\.jsonl/ })
          .first()
          .waitFor({ timeout: 30_000 });
        // No filter to clear: "Reload Window" (an earlier step) dropped the tree's filter.
        await page
          .locator('.monaco-list-row', { hasText: /keyword\/trajectories\.jsonl\s*5 trajectories/ })
          .first()
          .waitFor({ timeout: 30_000 });
        await page.screenshot({ path: path.join(RESULTS, 'collect-keyword.png') });
      },
    );
    await step(
      'DRAG: Compare Evaluations from the palette: Enter alone compares the two newest; ' +
        'a question opens both trajectories',
      async () => {
        await runCommand(page, 'DRAG: Compare Evaluations');
        await page
          .locator('.quick-input-list .monaco-list-row', { hasText: 'keyword-creative' })
          .first()
          .waitFor({ timeout: 20_000 });
        await page.locator('.quick-input-widget input').press('Enter'); // the two newest are preselected
        const panel = page.frameLocator('iframe.webview').last().frameLocator('#active-frame');
        await panel.locator('h1', { hasText: 'keyword-creative vs keyword-greedy' }).waitFor({ timeout: 30_000 });
        await panel.locator('tr[data-metric="hit_at_1"]').waitFor({ timeout: 10_000 });
        await panel.locator('svg').first().waitFor({ timeout: 10_000 });
        await runCommand(page, 'View: Close Primary Side Bar');
        await page.waitForTimeout(500);
        await page.screenshot({ path: path.join(RESULTS, 'compare-panel.png') });
        await panel.locator('svg').first().scrollIntoViewIfNeeded();
        await page.screenshot({ path: path.join(RESULTS, 'compare-charts.png') });
        await panel.locator('.lists li').first().click();
        await page.locator('.tab', { hasText: 'Inspect:' }).nth(1).waitFor({ timeout: 30_000 });
        for (const i of [0, 1])
          await page
            .frameLocator('iframe.webview')
            .nth(i)
            .frameLocator('#active-frame')
            .locator('h1')
            .first()
            .waitFor({ timeout: 30_000 })
            .catch(() => {});
        await page.waitForTimeout(1500);
        await page.screenshot({ path: path.join(RESULTS, 'compare-side-by-side.png') });
      },
    );
  } catch {
    await page.screenshot({ path: path.join(RESULTS, 'ui-failure.png') }).catch(() => {});
  } finally {
    await browser.close();
    server.stop();
    cleanup();
  }
  const { runCurationE2E } = await import('./curationE2E.mjs');
  const curation = await runCurationE2E(installRoot);
  const { runMonitorE2E } = await import('./monitorE2E.mjs');
  const monitor = await runMonitorE2E(installRoot);
  const { runVsixE2E } = await import('./vsixE2E.mjs');
  const vsix = await runVsixE2E(installRoot);
  const passed = tally.passed + curation.passed + monitor.passed + vsix.passed;
  const failed = tally.failed + curation.failed + monitor.failed + vsix.failed;
  console.log(`UI (Playwright, code-server): ${passed} passing, ${failed} failing`);
  return tally.failed === 0 && tally.passed === 10 && curation.failed === 0 && monitor.failed === 0 && vsix.failed === 0
    ? 0
    : 1;
}
