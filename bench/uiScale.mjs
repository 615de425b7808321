// Big runs in the editor: opens a workspace of N trajectories (half of them failed) over a real
// corpus (FinanceBench mini, 1,003 pages) in code-server and reports, per N:
//   - the time from loading the workbench to the outcome groups of the Trajectories view,
//   - the time to the first page of Failed Searches with its ranks (target: 3 s at 50,000 failures;
//     the corpus's search index is cached first, as drag corpus build leaves it),
//   - how long after that `drag serve` goes idle (CPU time stops growing),
//   - the extension host's resident memory.
// Baseline measured in the same run: a bare readline + JSON.parse pass over the same file.
// Usage: node bench/uiScale.mjs [N ...]   (default 100000 400000; data under bench/.data, git-ignored;
// needs `npm run build`, code-server (scripts/install-code-server.sh) and Debian chromium)
import { execFileSync } from 'node:child_process';
import { cpSync, createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { installCodeServer, launchBrowser, startCodeServer, workbenchUrl } from '../test/integration/codeServer.mjs';
import { waitFor } from '../test/integration/resilienceE2E.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DATA = path.join(ROOT, 'bench', '.data');
const CORPUS = path.resolve(ROOT, '..', 'shared', 'data', 'financebench-mini');
const TARGET_FIRST_PAGE_MS = 3_000;
const sizes = process.argv.slice(2).map(Number).filter(Boolean);
const NS = sizes.length ? sizes : [100_000, 400_000];

/** Pages of the corpus, to aim ground truths and queries at real text. */
function corpusPages() {
  const pages = [];
  for (const line of readFileSync(path.join(CORPUS, 'ocr_output.jsonl'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const p = JSON.parse(line);
    const words = String(p.text)
      .toLowerCase()
      .match(/[a-z]{5,}/g);
    if (words && words.length > 20) pages.push({ file: p.file, page: p.page_number, total: p.total_pages, words });
  }
  return pages;
}

/** One DRAG trajectory: even ones find their page at rank 1, odd ones never do (3 searches each). */
function trajectory(i, pages) {
  const gt = pages[(i * 7919) % pages.length];
  const other = pages[(i * 104_729 + 1) % pages.length];
  const failed = i % 2 === 1;
  const iterations = [];
  for (let step = 1; step <= 3; step++) {
    // Queries built from words of the ground-truth page (failed ones mix in another page's), all distinct.
    const w = (k) => gt.words[(i + step * 3 + k * 5) % gt.words.length];
    const o = (k) => other.words[(i + step + k * 7) % other.words.length];
    const query = failed ? `${w(0)} ${o(1)} ${o(2)} q${i}s${step}` : `${w(0)} ${w(1)} ${w(2)}`;
    const results = [1, 2, 3].map((rank) =>
      !failed && rank === 1
        ? { file: gt.file, page_number: gt.page, total_pages: gt.total, rank }
        : { file: other.file, page_number: other.page, total_pages: other.total, rank },
    );
    const found = !failed;
    iterations.push({
      step,
      reasoning: `step ${step} of question ${i}`,
      action: 'search',
      query,
      results,
      gt_found: found,
      gt_rank: found ? 1 : null,
      rank_score: found ? 1 : null,
      answer: null,
      citations: null,
      raw_response: '',
    });
  }
  return JSON.stringify({
    id: `traj_${i}`,
    question_id: `q${i}`,
    question: `Question ${i}: what does ${gt.file} say on page ${gt.page} about ${gt.words[0]}?`,
    ground_truth: { answers: [['n/a']], answer_locations: [{ document: gt.file, page: gt.page }], category: 'bench' },
    iterations,
    final_answer: ['n/a'],
    final_citations: [{ file: gt.file, page: gt.page }],
    success: !failed,
    gt_ever_found: !failed,
    first_gt_iteration: failed ? null : 1,
    best_gt_rank: failed ? null : 1,
    best_rank_score: failed ? null : 1,
    total_iterations: 3,
    total_searches: 3,
    sampling_config: { temperature: 0.7, top_p: 0.95, repetition_penalty: 1.0, max_tokens: 4096 },
    model: 'bench',
    timestamp: '2026-12-01T00:00:00',
    error: null,
  });
}

/** bench/.data/ui-scale-N: the corpus, a config and runs/big/trajectories.jsonl, made once. */
async function workspace(N, pages) {
  const ws = path.join(DATA, `ui-scale-${N}`);
  const file = path.join(ws, 'runs', 'big', 'trajectories.jsonl');
  if (existsSync(file)) return { ws, file };
  mkdirSync(path.dirname(file), { recursive: true });
  mkdirSync(path.join(ws, 'corpus'), { recursive: true });
  cpSync(path.join(CORPUS, 'pdfs'), path.join(ws, 'corpus', 'pdfs'), { recursive: true });
  cpSync(path.join(CORPUS, 'ocr_output.jsonl'), path.join(ws, 'corpus', 'ocr_output.jsonl'));
  (await import('node:fs')).writeFileSync(path.join(ws, 'drag.config.json'), '{}\n');
  const out = await open(`${file}.tmp`, 'w');
  let chunk = [];
  for (let i = 0; i < N; i++) {
    chunk.push(trajectory(i, pages));
    if (chunk.length === 2000) {
      await out.write(`${chunk.join('\n')}\n`);
      chunk = [];
    }
  }
  if (chunk.length) await out.write(`${chunk.join('\n')}\n`);
  await out.close();
  renameSync(`${file}.tmp`, file);
  return { ws, file };
}

async function bareParse(file) {
  const t0 = performance.now();
  let n = 0;
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    if (line) {
      JSON.parse(line);
      n++;
    }
  }
  return { ms: performance.now() - t0, n };
}

/** Processes by pid: parent pid, command line, resident KiB, CPU ticks. */
function processes() {
  const out = new Map();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
      out.set(Number(pid), { ppid: Number(fields[1]), cmd, rss, cpu: Number(fields[11]) + Number(fields[12]) });
    } catch {
      /* gone */
    }
  }
  return out;
}

/** The descendants of the code-server listening on `port` whose command line matches `re`. */
function descendant(port, re) {
  const procs = processes();
  const roots = [...procs].filter(([, p]) => p.cmd.includes(`127.0.0.1:${port}`)).map(([pid]) => pid);
  const seen = new Set(roots);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, p] of procs)
      if (!seen.has(pid) && seen.has(p.ppid)) {
        seen.add(pid);
        grew = true;
      }
  }
  return [...seen].map((pid) => ({ pid, ...procs.get(pid) })).find((p) => re.test(p.cmd ?? ''));
}

async function measure(N, installRoot, pages) {
  const { ws, file } = await workspace(N, pages);
  // The corpus as drag corpus build (DRAG: Build Corpus) leaves it: with its search index cached.
  execFileSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'index', 'build', '--workspace', ws], {
    stdio: 'ignore',
  });
  const bytes = (await import('node:fs')).statSync(file).size;
  const base = await bareParse(file);
  const server = await startCodeServer(installRoot, ws);
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const t0 = performance.now();
    await page.goto(workbenchUrl(server, ws));
    await page.locator('.activitybar [aria-label^="DRAG"]').first().click({ timeout: 120_000 });
    const failedHeader = page.locator('.pane-header', { hasText: 'Failed Searches' }).first();
    if ((await failedHeader.getAttribute('aria-expanded')) !== 'true') await failedHeader.click();
    // The outcome groups show once the file's one streaming pass is done (expand the file if needed).
    const fileRow = page.locator('.monaco-list-row', { hasText: 'runs/big/trajectories.jsonl' }).first();
    await fileRow.waitFor({ timeout: 600_000 });
    if ((await fileRow.getAttribute('aria-expanded')) !== 'true') await fileRow.locator('.monaco-tl-twistie').click();
    await page
      .locator('.monaco-list-row[aria-level="2"]', { hasText: 'Never found' })
      .first()
      .waitFor({ timeout: 600_000 });
    const groupsMs = performance.now() - t0;
    // The first Failed Searches page with its ranks (a ranked row says "closest" or "not in the top").
    await page
      .locator('.pane-body .monaco-list-row', { hasText: /closest: rank|not in the top/ })
      .first()
      .waitFor({ timeout: 600_000 });
    const firstPageMs = performance.now() - t0;
    // drag serve is idle when its CPU time stops growing for a second.
    const serve = await waitFor('drag serve', () => descendant(server.port, /cli\.js serve/), 600_000);
    let last = serve.cpu;
    let quietSince = performance.now();
    await waitFor(
      'drag serve to go idle',
      async () => {
        const now = processes().get(serve.pid)?.cpu ?? last;
        if (now !== last) {
          last = now;
          quietSince = performance.now();
        }
        await new Promise((r) => setTimeout(r, 100));
        return performance.now() - quietSince > 1_000;
      },
      600_000,
    );
    const idleAfterMs = quietSince - t0 - firstPageMs;
    const host = descendant(server.port, /extensionHost/);
    return {
      N,
      failed: Math.floor(N / 2),
      fileMB: Math.round(bytes / 1e6),
      bareParseMs: Math.round(base.ms),
      outcomeGroupsMs: Math.round(groupsMs),
      firstFailedPageMs: Math.round(firstPageMs),
      firstPageAfterGroupsMs: Math.round(firstPageMs - groupsMs),
      serveIdleAfterFirstPageMs: Math.max(0, Math.round(idleAfterMs)),
      extensionHostMB: host ? Math.round(host.rss / 1024) : null,
      ratioGroupsToBareParse: Number((groupsMs / base.ms).toFixed(2)),
      ratioFirstPageToTarget: Number(((firstPageMs - groupsMs) / TARGET_FIRST_PAGE_MS).toFixed(2)),
    };
  } finally {
    await browser.close();
    server.stop();
  }
}

if (!existsSync(CORPUS)) {
  console.error(`ui-scale: ${CORPUS} is absent (the shared FinanceBench mini corpus)`);
  process.exit(2);
}
if (!existsSync(path.join(ROOT, 'dist', 'extension.js'))) {
  console.error('ui-scale: dist/ is not built: run "npm run build" first');
  process.exit(2);
}
const installRoot = installCodeServer();
const pages = corpusPages();
const results = [];
for (const N of NS) {
  const r = await measure(N, installRoot, pages);
  console.log(
    `${N} trajectories (${r.fileMB} MB, ${r.failed} failed): outcome groups ${r.outcomeGroupsMs} ms ` +
      `(bare parse ${r.bareParseMs} ms, ${r.ratioGroupsToBareParse}x), first Failed Searches page ` +
      `${r.firstPageAfterGroupsMs} ms after the groups (${r.ratioFirstPageToTarget}x the 3 s target), ` +
      `drag serve idle ${r.serveIdleAfterFirstPageMs} ms later, extension host ${r.extensionHostMB} MB`,
  );
  results.push(r);
}
console.log(JSON.stringify({ bench: 'ui-scale', results, ratio: results[0].ratioFirstPageToTarget }));
