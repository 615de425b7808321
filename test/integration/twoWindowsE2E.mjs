// Two code-server windows on one workspace, each with its own extension host, accept different
// trajectories at the same moment, 100 times: every decision must be in curation/decisions.jsonl
// exactly once (nothing lost, nothing doubled, no torn line), and each window sees the other's.
// Each round waits on the inspectors and the log, never on a fixed sleep.
// Runs on its own: node test/integration/twoWindowsE2E.mjs (after npm run build).
import { readdirSync, readFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { installCodeServer, launchBrowser, ROOT, startCodeServer, stepRunner, workbenchUrl } from './codeServer.mjs';
import { waitFor } from './resilienceE2E.mjs';

const RESULTS = path.join(ROOT, 'test-results');
const ROUNDS = Number(process.env.DRAG_TWO_WINDOWS_ROUNDS ?? 100);
/** A backstop per wait: the CI machine has 2 shared cores, so minutes, not seconds. */
const WAIT_MS = 180_000;
/** How long an Enter in the tree may go without effect before it is pressed again (harmless when merely slow). */
const ENTER_AGAIN_MS = 5_000;
/** Focuses the Trajectories tree from the inspector (the panel forwards the key to the workbench). */
const FOCUS_TREE_KEY = 'Control+Shift+Alt+F6';
const KEYBINDINGS = [{ key: 'ctrl+shift+alt+f6', command: 'drag.trajectories.focus' }];

/** One valid trajectory that found its ground-truth page at rank 1 (its PDF is absent: no page renders). */
function trajectory(run, i) {
  const n = String(i).padStart(3, '0');
  const doc = `TWOWIN_${run.toUpperCase()}.pdf`;
  return {
    id: `tw_${run}_${n}`,
    question_id: `twq_${run}_${n}`,
    question: `Two windows ${run.toUpperCase()}-${n}: what was revenue in year ${n}?`,
    ground_truth: { answers: [`$${i}.00`], answer_locations: [{ document: doc, page: i + 1 }] },
    iterations: [
      {
        step: 1,
        action: 'search',
        query: `revenue year ${n}`,
        results: [{ file: doc, page_number: i + 1, total_pages: 200, rank: 1 }],
        gt_found: true,
        gt_rank: 1,
        rank_score: 1,
      },
      { step: 2, action: 'answer', answer: [`$${i}.00`], citations: [{ file: doc, page: i + 1 }] },
    ],
    final_answer: [`$${i}.00`],
    final_citations: [{ file: doc, page: i + 1 }],
    success: true,
    model: 'two-windows',
  };
}

/** A workspace with two runs of ROUNDS trajectories each (distinct ids), no corpus and no curation yet. */
function makeTwoRunWorkspace() {
  const dir = mkdtempSync(path.join(tmpdir(), 'drag-two-'));
  const ws = path.join(dir, 'workspace');
  const runs = { a: [], b: [] };
  for (const run of Object.keys(runs)) {
    mkdirSync(path.join(ws, 'runs', `two-${run}`), { recursive: true });
    for (let i = 0; i < ROUNDS; i++) runs[run].push(trajectory(run, i));
    writeFileSync(
      path.join(ws, 'runs', `two-${run}`, 'trajectories.jsonl'),
      runs[run].map((t) => `${JSON.stringify(t)}\n`).join(''),
    );
  }
  const cleanup = () => {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    } catch {
      /* left in tmp */
    }
  };
  return { ws, runs, cleanup };
}

/** The pids of `root` and all its descendants, from /proc. */
function processTree(root) {
  const children = new Map();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
    } catch {
      /* gone */
    }
  }
  const out = [];
  const walk = (pid) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

const cmdline = (pid) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
};

/** The extension host processes of the code-server listening on `port`. */
function extensionHosts(port) {
  const server = readdirSync('/proc').find(
    (e) => /^\d+$/.test(e) && cmdline(e).includes(`--bind-addr 127.0.0.1:${port}`),
  );
  if (!server) return [];
  return processTree(Number(server)).filter((pid) => /--type=extensionHost/.test(cmdline(pid)));
}

/** Every line of the log, with the whole text (to check that it ends with a newline). */
function readLog(file) {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  return { text, lines: text.split('\n').filter(Boolean) };
}

export async function runTwoWindowsE2E(installRoot) {
  mkdirSync(RESULTS, { recursive: true });
  const { ws, runs, cleanup } = makeTwoRunWorkspace();
  const logFile = path.join(ws, 'curation', 'decisions.jsonl');
  const server = await startCodeServer(installRoot, ws, {}, { keybindings: KEYBINDINGS });
  const browser = await launchBrowser();
  const { step, tally } = stepRunner();
  // Two browser contexts: two windows as two people (or one person with two windows) would have them.
  const windows = [];
  for (const run of ['a', 'b']) {
    const context = await browser.newContext({ viewport: { width: 1200, height: 1000 } });
    windows.push({ run, page: await context.newPage(), trajectories: runs[run] });
  }
  const inspector = (w) => w.page.frameLocator('iframe.webview').first().frameLocator('#active-frame');
  const shows = (w, t) => inspector(w).locator('h1', { hasText: t.question });
  const badge = (w) => inspector(w).locator('.badge.accepted');
  const tree = (w) => w.page.locator('.pane', { hasText: 'Trajectories' });
  const treeRows = (w) => tree(w).locator('.monaco-list-row');
  /** The outcome group under a run's file row (the list renders rows in any DOM order: go by data-index). */
  const group = async (w, run) => {
    const file = treeRows(w)
      .filter({ hasText: `runs/two-${run}/trajectories.jsonl` })
      .first();
    await file.waitFor({ timeout: WAIT_MS });
    const g = treeRows(w).and(w.page.locator(`[data-index="${Number(await file.getAttribute('data-index')) + 1}"]`));
    await g.filter({ hasText: 'Found at rank 1' }).waitFor({ timeout: WAIT_MS });
    return g;
  };
  /**
   * Enter on the tree's focused row, until the inspector shows `t`. VS Code drops an Enter on a row whose
   * item was just replaced ("Actual command not found": a tree item's command arguments die with the item),
   * and the Trajectories tree is refreshed whole on every decision, the other window's too. Pressing it
   * again opens the same trajectory, so a merely slow first one does no harm.
   */
  let enterAgain = 0;
  const openFocused = async (w, t) => {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      await w.page.keyboard.press('Enter');
      const shown = await shows(w, t)
        .waitFor({ timeout: ENTER_AGAIN_MS })
        .then(
          () => true,
          () => false,
        );
      if (shown) return;
      if (Date.now() > deadline) throw new Error(`window ${w.run.toUpperCase()} never showed ${t.id}`);
      enterAgain++;
      await tree(w).locator('.monaco-list:focus').waitFor({ timeout: WAIT_MS });
    }
  };
  const expand = async (row) => {
    if ((await row.getAttribute('aria-expanded')) !== 'true') await row.locator('.monaco-tl-twistie').click();
    await waitFor('the group to open', async () => (await row.getAttribute('aria-expanded')) === 'true', WAIT_MS);
  };
  try {
    await step('two windows: both open the workspace, each with its own extension host', async () => {
      const url = workbenchUrl(server, ws);
      await Promise.all(windows.map((w) => w.page.goto(url)));
      for (const w of windows)
        await w.page.locator('.activitybar [aria-label^="DRAG"]').first().click({ timeout: WAIT_MS });
      for (const w of windows)
        await treeRows(w).filter({ hasText: 'runs/two-b/trajectories.jsonl' }).first().waitFor({ timeout: WAIT_MS });
      // One extension host per window (a third may live briefly while one restarts): two writers of one log.
      const hosts = () => extensionHosts(server.port);
      await waitFor('exactly two extension hosts', () => hosts().length === 2, WAIT_MS).catch(() => {
        throw new Error(
          `${hosts().length} extension hosts, not 2:\n${hosts()
            .map((p) => `${p}: ${cmdline(p)}`)
            .join('\n')}`,
        );
      });
    });

    await step('two windows: window 1 inspects run A, window 2 run B, from the Trajectories tree', async () => {
      for (const w of windows) {
        await expand(await group(w, w.run));
        const first = treeRows(w).filter({ hasText: w.trajectories[0].question }).first();
        await first.click({ timeout: WAIT_MS });
        await shows(w, w.trajectories[0]).waitFor({ timeout: WAIT_MS });
      }
    });

    await step(`two windows: ${ROUNDS} rounds of both accepting at the same moment`, async () => {
      for (let r = 0; r < ROUNDS; r++) {
        // Each window: the round's trajectory on screen (Down, Enter in the tree after the first), focus in the panel.
        await Promise.all(
          windows.map(async (w) => {
            const t = w.trajectories[r];
            if (r > 0) {
              // The panel forwards the key to the workbench: wait until the tree has focus before moving in it.
              await w.page.keyboard.press(FOCUS_TREE_KEY);
              await tree(w).locator('.monaco-list:focus').waitFor({ timeout: WAIT_MS });
              await w.page.keyboard.press('ArrowDown');
              await treeRows(w)
                .and(w.page.locator('.focused'))
                .filter({ hasText: t.question })
                .waitFor({ timeout: WAIT_MS });
              await openFocused(w, t);
            }
            await shows(w, t).waitFor({ timeout: WAIT_MS });
            await inspector(w).locator('h1').click();
            await inspector(w).locator('.badge', { hasText: 'not curated' }).waitFor({ timeout: WAIT_MS });
          }),
        );
        await Promise.all(windows.map((w) => w.page.keyboard.press('a')));
        await waitFor(
          `round ${r + 1}'s two decisions in the log`,
          () => readLog(logFile).lines.length >= 2 * (r + 1),
          WAIT_MS,
        );
        // Both views of each window agree: the inspector's badge and the tree's row say accepted.
        await Promise.all(
          windows.map(async (w) => {
            await badge(w).waitFor({ timeout: WAIT_MS });
            const row = treeRows(w).filter({ hasText: w.trajectories[r].question }).first();
            await waitFor(
              `the tree to show ${w.trajectories[r].id} accepted`,
              async () => /, accepted$/.test((await row.getAttribute('aria-label')) ?? ''),
              WAIT_MS,
            );
          }),
        );
      }
    });

    await step('two windows: the log holds every decision exactly once, each line whole', async () => {
      const { text, lines } = readLog(logFile);
      if (!text.endsWith('\n')) throw new Error(`the log ends in a partial line: ${text.slice(-120)}`);
      if (text.split('\n').length - 1 !== lines.length) throw new Error('the log has empty lines');
      const decisions = lines.map((l, i) => {
        try {
          return JSON.parse(l);
        } catch {
          throw new Error(`line ${i + 1} of the log does not parse: ${l.slice(0, 160)}`);
        }
      });
      const expected = windows.flatMap((w) => w.trajectories.map((t) => t.id));
      const seen = new Map();
      for (const d of decisions) {
        if (d.decision !== 'accept' || typeof d.id !== 'string' || typeof d.time !== 'string')
          throw new Error(`not an accept decision: ${JSON.stringify(d).slice(0, 160)}`);
        seen.set(d.trajectory_id, (seen.get(d.trajectory_id) ?? 0) + 1);
      }
      const missing = expected.filter((id) => !seen.has(id));
      const doubled = [...seen].filter(([, n]) => n > 1).map(([id, n]) => `${id} ×${n}`);
      const stray = [...seen.keys()].filter((id) => !expected.includes(id));
      if (missing.length || doubled.length || stray.length || decisions.length !== expected.length)
        throw new Error(
          `${decisions.length} decisions for ${expected.length} accepts; missing ${missing.join(', ') || 'none'}; ` +
            `doubled ${doubled.join(', ') || 'none'}; stray ${stray.join(', ') || 'none'}`,
        );
      if (new Set(decisions.map((d) => d.id)).size !== decisions.length) throw new Error('two decisions share an id');
      // How close "the same moment" was: the gap between each round's two decisions (printed, not asserted).
      const at = new Map(decisions.map((d) => [d.trajectory_id, Date.parse(d.time)]));
      const gaps = runs.a.map((t, i) => Math.abs(at.get(t.id) - at.get(runs.b[i].id))).sort((x, y) => x - y);
      const median = gaps[gaps.length >> 1];
      console.log(
        `    (gap between the two windows' decisions of a round: median ${median} ms, max ${gaps.at(-1)} ms)`,
      );
    });

    await step("two windows: each window's tree shows the other window's trajectories accepted", async () => {
      for (const [w, other] of [
        [windows[0], windows[1]],
        [windows[1], windows[0]],
      ]) {
        // From the last trajectory it accepted: Left to its group, Left to fold it; the other run's group is in view.
        await w.page.keyboard.press(FOCUS_TREE_KEY);
        await tree(w).locator('.monaco-list:focus').waitFor({ timeout: WAIT_MS });
        await w.page.keyboard.press('ArrowLeft');
        await w.page.keyboard.press('ArrowLeft');
        const own = await group(w, w.run);
        await waitFor(
          'its own group to fold',
          async () => (await own.getAttribute('aria-expanded')) === 'false',
          WAIT_MS,
        );
        const theirs = await group(w, other.run);
        await theirs.click(); // focuses the group (and unfolds it: a click on a folder row toggles it)
        if ((await theirs.getAttribute('aria-expanded')) !== 'true') await w.page.keyboard.press('ArrowRight');
        await waitFor('their group to open', async () => (await theirs.getAttribute('aria-expanded')) === 'true');
        await w.page.keyboard.press('ArrowDown');
        const first = treeRows(w).filter({ hasText: other.trajectories[0].question }).first();
        await first.waitFor({ timeout: WAIT_MS });
        // Every row of the other run on screen says accepted (the tree's accessible label names the state).
        const prefix = `Two windows ${other.run.toUpperCase()}-`;
        await waitFor(
          `window ${w.run.toUpperCase()} to show ${other.run.toUpperCase()}'s trajectories accepted`,
          async () => {
            const labels = await treeRows(w)
              .filter({ hasText: prefix })
              .evaluateAll((rows) => rows.map((r) => r.getAttribute('aria-label') ?? ''));
            return labels.length > 0 && labels.every((l) => /, accepted$/.test(l));
          },
          WAIT_MS,
        );
      }
      await windows[0].page.screenshot({ path: path.join(RESULTS, 'two-windows.png') });
    });
    await step('two windows: Failed Searches says there are none, not that search is unavailable', async () => {
      // No trajectory failed and there is no corpus: nothing needs ranking, so no search is missing.
      // Last, so the search process has long tried to start (and failed: no corpus) by now.
      const { page } = windows[0];
      await page.locator('.pane-body', { hasText: 'No failed searches' }).first().waitFor({ timeout: WAIT_MS });
      if (await page.locator('.pane-body', { hasText: 'Search unavailable' }).count())
        throw new Error('Failed Searches says search is unavailable although nothing needs ranking');
    });
  } catch {
    for (const w of windows)
      await w.page.screenshot({ path: path.join(RESULTS, `two-windows-failure-${w.run}.png`) }).catch(() => {});
    const { lines } = readLog(logFile);
    console.log(`    curation log: ${lines.length} lines; last: ${lines.at(-1)?.slice(0, 200) ?? 'none'}`);
  } finally {
    await browser.close();
    server.stop();
    cleanup();
  }
  if (enterAgain)
    console.log(`    (Enter in the tree was pressed again ${enterAgain} time(s): the first was not acted on)`);
  console.log(`UI two windows (Playwright, code-server): ${tally.passed} passing, ${tally.failed} failing`);
  return tally;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const tally = await runTwoWindowsE2E(installCodeServer());
  process.exit(tally.failed === 0 && tally.passed > 0 ? 0 : 1);
}
