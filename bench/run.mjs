// npm run bench -- <name>: runs bench/<name>.ts with tsx. Each benchmark measures its own baseline
// in the same run and prints a last line of JSON with a `ratio`.
// npm run bench -- all [--rounds N]: runs every benchmark in one go and prints one table of ratios.
// npm run bench -- ui-scale [N]: opens N trajectories in code-server (bench/uiScale.mjs).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.dirname(fileURLToPath(import.meta.url));
const names = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && !f.startsWith('_'))
  .map((f) => f.slice(0, -3));
const [name, ...rest] = process.argv.slice(2);

// Big runs in a real code-server (a browser, minutes of work): not part of `all`.
if (name === 'ui-scale')
  process.exit(spawnSync(process.execPath, [path.join(dir, 'uiScale.mjs'), ...rest], { stdio: 'inherit' }).status ?? 1);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Wall time of `node -e 0` in the given environment, median of 5. */
function bareStartMs(env) {
  const times = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    spawnSync(process.execPath, ['-e', '0'], { env });
    times.push(performance.now() - t0);
  }
  return median(times);
}

/**
 * NODE_EXTRA_CA_CERTS makes every Node process read and parse a certificate bundle as it starts
 * (Node 20 does it eagerly, TLS or not): a setting of the machine (sandboxes and company proxies
 * set it), not a cost of the code measured. It would be added to every Node command timed here
 * (drag, the bare parse, node -e 0) and to none of the Python baselines, so it is cleared for the
 * benchmarks, saying so and what it costs. DRAG_BENCH_KEEP_EXTRA_CA=1 keeps it.
 */
function clearExtraCa() {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (file === undefined || process.env.DRAG_BENCH_KEEP_EXTRA_CA === '1') return '';
  const withIt = bareStartMs(process.env);
  delete process.env.NODE_EXTRA_CA_CERTS;
  const without = bareStartMs(process.env);
  const said =
    `NODE_EXTRA_CA_CERTS=${file} is cleared for the timed processes (nothing timed uses TLS): ` +
    `node -e 0 takes ${Math.round(withIt)} ms with it, ${Math.round(without)} ms without`;
  console.log(`${said} (DRAG_BENCH_KEEP_EXTRA_CA=1 keeps it)`);
  return said;
}

/** Runs one benchmark (output shown as it comes, or captured too); returns its last JSON line. */
function runBench(bench, args, capture) {
  const argv = ['--expose-gc', '--import', 'tsx', path.join(dir, `${bench}.ts`), ...args];
  if (!capture) return spawnSync(process.execPath, argv, { stdio: 'inherit' }).status ?? 1;
  const r = spawnSync(process.execPath, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  process.stdout.write(r.stdout);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last);
  } catch {
    return { bench, ratio: null, skipped: `exit ${r.status}, no JSON line` };
  }
}

const fmt = (x, digits = 3) => (typeof x === 'number' ? x.toFixed(digits) : 'n/a');

/** The table: every ratio, its target, and whether it is met. */
function table(results) {
  const rows = [];
  const add = (what, ratio, target, ok, note = '') => rows.push({ what, ratio, target, ok, note });
  const { search, jsonl, collect, pipeline, corpus, startup } = results;
  if (search?.ratio != null)
    add(
      'search p50 vs Whoosh',
      search.ratio,
      '<= 1.0 (was 0.02-0.09)',
      search.ratio <= 1,
      `ours ${search.ours_p50_ms} ms, Whoosh ${search.whoosh_p50_ms} ms`,
    );
  if (jsonl?.ratio != null) add('jsonl index vs bare parse', jsonl.ratio, '<= 1.25', jsonl.ratio <= 1.25);
  if (collect?.ratio != null) add('collection vs ideal (C=32)', collect.ratio, '>= 0.9', collect.ratio >= 0.9);
  for (const d of pipeline?.vs_drag ?? [])
    add(
      `pipeline vs DRAG, ${d.trajectories} trajectories`,
      d.ratio,
      '<= 0.5',
      d.ratio <= 0.5 && (d.ours_peak_mb ?? 0) <= (d.drag_peak_mb ?? Infinity),
      `${d.ours_ms} vs ${d.drag_ms} ms; CPU ${fmt(d.cpu_ratio)}; peak ${d.ours_peak_mb} vs ${d.drag_peak_mb} MB; ` +
        `a bare parse alone ${fmt(d.floor_ratio)} (CPU ${fmt(d.floor_cpu_ratio)})`,
    );
  if (pipeline?.floor_ratio != null)
    add(
      `pipeline (9 formats) vs floor, ${pipeline.floor.trajectories}`,
      pipeline.floor_ratio,
      '<= 2.0',
      pipeline.floor_ratio <= 2,
      `${pipeline.floor.ours_ms} vs ${pipeline.floor.floor_ms} ms; ` +
        `with the output writes (${pipeline.floor.write_ms} ms) ` +
        `in the floor: ${fmt(pipeline.floor.ratio_with_writes)}`,
    );
  if (corpus?.poppler)
    for (const [label, r] of [
      ['corpus build --extractor poppler vs pdftotext', corpus.poppler],
      ['corpus build (pdf.js) vs pdftotext', corpus.pdfjs],
    ])
      add(
        label,
        r.ratio,
        '<= 2.0, < 300 MB',
        r.ratio <= 2 && r.peak_rss_mb < 300,
        `${r.ms} ms, peak ${r.peak_rss_mb} MB`,
      );
  for (const c of startup?.cases?.slice(1) ?? [])
    add(`${c.case} vs node -e 0`, c.ratio, '<= 1.5', c.ratio <= 1.5, `${c.ms} vs ${startup.node_ms} ms`);
  if (startup?.extension_require_ms != null)
    add(
      'extension activation (stub vscode)',
      null,
      '',
      true,
      `require ${startup.extension_require_ms} ms + activate() ${startup.extension_activate_ms} ms`,
    );
  for (const [bench, r] of Object.entries(results))
    if (r?.skipped) add(`${bench}: skipped`, null, '', false, r.skipped);
  const lines = [
    '| measurement | ratio | target | met | detail |',
    '|---|---|---|---|---|',
    ...rows.map((r) => {
      const met = r.ratio == null && !r.target ? '' : r.ok ? 'yes' : '**no**';
      return `| ${r.what} | ${r.ratio == null ? '' : fmt(r.ratio)} | ${r.target} | ${met} | ${r.note} |`;
    }),
  ];
  return lines.join('\n');
}

const extraCa = name === 'all' || (name && existsSync(path.join(dir, `${name}.ts`))) ? clearExtraCa() : '';
if (name === 'all') {
  const rounds = rest[0] === '--rounds' && rest[1] ? rest[1] : '3';
  const plan = {
    search: [],
    jsonl: [],
    collect: [],
    pipeline: ['--rounds', rounds],
    corpus: ['--rounds', rounds, '--workers', '2'],
    startup: ['--rounds', '20'],
  };
  const results = {};
  const started = new Date();
  for (const [bench, args] of Object.entries(plan)) {
    console.log(`\n=== ${bench} ${args.join(' ')}`);
    results[bench] = runBench(bench, args, true);
  }
  const cpu = os.cpus();
  const minutes = Math.round((Date.now() - started.getTime()) / 60000);
  console.log(
    `\n## All benchmarks, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${minutes} min\n` +
      `Machine: ${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ` +
      `Node ${process.version}, load average at the end ${os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}${extraCa ? `\n${extraCa}` : ''}\n`,
  );
  console.log(table(results));
  console.log(JSON.stringify({ bench: 'all', results }));
  process.exit(0);
}
if (!name || !existsSync(path.join(dir, `${name}.ts`))) {
  console.error(`usage: npm run bench -- <${names.join('|')}|all> [options]`);
  process.exit(2);
}
process.exit(runBench(name, rest, false));
