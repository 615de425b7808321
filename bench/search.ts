/**
 * Search benchmark: our engine against Whoosh 2.7 (Debian python3-whoosh, configured as DRAG's
 * search_engine.py) on the same corpus and queries, in the same run: index build time, cached
 * index load time, query p50/p95 (Whoosh opens a searcher per query, as DRAG does), peak memory.
 * Also the cached load time of a 10,000-page corpus (the shared one replicated with new names).
 * Last line: JSON with ratio = our query p50 / Whoosh's. Targets: p50 <= 1.0x, build <= 0.5x,
 * cached load <= 1 s for 10,000 pages.
 *
 * Usage: npm run bench -- search [--ocr FILE] [--questions FILE] [--top-k 3]
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { WhooshCompatibleEngine } from '../src/core/search/engine';
import { buildIndex, loadOrBuildIndex } from '../src/core/search/index';
import { parseQuery } from '../src/core/search/query';
import { makeQueries } from '../test/oracle/queries';
import { runWhoosh, whooshUnavailable } from '../test/oracle/whoosh';

const shared = path.resolve(__dirname, '..', '..', 'shared', 'data', 'financebench-mini');
const { values } = parseArgs({
  options: {
    ocr: { type: 'string', default: path.join(shared, 'ocr_output.jsonl') },
    questions: { type: 'string', default: path.join(shared, 'questions.jsonl') },
    'top-k': { type: 'string', default: '3' },
  },
});
const topK = Number(values['top-k']);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function main(): Promise<void> {
  const why = whooshUnavailable();
  if (why) {
    console.error(`cannot run the Whoosh baseline: ${why}`);
    process.exit(1);
  }
  if (!existsSync(values.ocr)) {
    console.error(`no corpus at ${values.ocr}`);
    process.exit(1);
  }
  const work = mkdtempSync(path.join(tmpdir(), 'drag-bench-search-'));
  try {
    const queries = makeQueries(values.questions, values.ocr);
    const queriesFile = path.join(work, 'queries.txt');
    writeFileSync(queriesFile, `${queries.join('\n')}\n`);

    // Whoosh: build (fresh), then a second run that loads the existing index and times queries.
    const built = runWhoosh(
      values.ocr,
      path.join(work, 'whoosh'),
      queriesFile,
      path.join(work, 'w1.jsonl'),
      topK,
      true,
    );
    const loaded = runWhoosh(
      values.ocr,
      path.join(work, 'whoosh'),
      queriesFile,
      path.join(work, 'w2.jsonl'),
      topK,
      false,
    );

    // Ours: build, persist, load from cache, query.
    const cacheDir = path.join(work, 'cache');
    const rssBefore = process.memoryUsage().rss;
    let t0 = performance.now();
    const first = await loadOrBuildIndex(values.ocr, cacheDir);
    const buildMs = performance.now() - t0;
    t0 = performance.now();
    const again = await loadOrBuildIndex(values.ocr, cacheDir);
    const engine = new WhooshCompatibleEngine(again.index);
    const loadMs = performance.now() - t0;
    if (first.source !== 'built' || again.source !== 'cache') throw new Error('cache did not behave');
    for (const q of queries.slice(0, 20)) engine.search(q, topK); // warm-up, like Whoosh's second run
    const times: number[] = [];
    for (const q of queries) {
      const s = performance.now();
      engine.searchParsed(parseQuery(q), topK);
      times.push(performance.now() - s);
    }
    times.sort((a, b) => a - b);
    const p50 = percentile(times, 0.5);
    const p95 = percentile(times, 0.95);
    const oursRssMb = (process.memoryUsage().rss - rssBefore) / 1e6;

    // Cached load of a 10,000-page corpus (the shared corpus replicated under new file names).
    const lines = readFileSync(values.ocr, 'utf8').split('\n').filter(Boolean);
    const copies = Math.ceil(10_000 / lines.length);
    const big = path.join(work, 'ocr-10k.jsonl');
    writeFileSync(
      big,
      Array.from({ length: copies }, (_, c) =>
        lines
          .map((l) => {
            const r = JSON.parse(l) as { file: string };
            r.file = `copy${c}_${r.file}`;
            return JSON.stringify(r);
          })
          .join('\n'),
      ).join('\n') + '\n',
    );
    t0 = performance.now();
    const bigBuilt = await buildIndex(big);
    const bigBuildMs = performance.now() - t0;
    await loadOrBuildIndex(big, cacheDir);
    t0 = performance.now();
    const bigLoaded = await loadOrBuildIndex(big, cacheDir);
    new WhooshCompatibleEngine(bigLoaded.index); // part of "ready to search"
    const bigLoadMs = performance.now() - t0;

    const whooshBuildMs = (built.stats.build_s ?? NaN) * 1000;
    const whooshLoadMs = loaded.stats.load_s * 1000;
    console.log(`corpus: ${values.ocr} (${engine.docCount} pages), ${queries.length} queries, top-k ${topK}`);
    console.log(
      `build:        ours ${buildMs.toFixed(0)} ms   whoosh ${whooshBuildMs.toFixed(0)} ms   ` +
        `ratio ${(buildMs / whooshBuildMs).toFixed(3)} (target <= 0.5)`,
    );
    console.log(`cached load:  ours ${loadMs.toFixed(0)} ms   whoosh ${whooshLoadMs.toFixed(0)} ms (open_dir)`);
    console.log(
      `query p50:    ours ${p50.toFixed(3)} ms   whoosh ${loaded.stats.p50_ms.toFixed(3)} ms   ` +
        `ratio ${(p50 / loaded.stats.p50_ms).toFixed(3)} (target <= 1.0)`,
    );
    console.log(`query p95:    ours ${p95.toFixed(3)} ms   whoosh ${loaded.stats.p95_ms.toFixed(3)} ms`);
    console.log(
      `memory:       ours +${oursRssMb.toFixed(0)} MB RSS for the index   ` +
        `whoosh peak RSS ${loaded.stats.peak_rss_mb.toFixed(0)} MB (whole process)`,
    );
    console.log(
      `10k pages:    ${bigLoaded.index.docCount} pages, build ${bigBuildMs.toFixed(0)} ms, ` +
        `cached load ${bigLoadMs.toFixed(0)} ms (target <= 1000); ${bigBuilt.index.terms.length} terms`,
    );
    console.log(
      JSON.stringify({
        bench: 'search',
        pages: engine.docCount,
        queries: queries.length,
        ratio: Number((p50 / loaded.stats.p50_ms).toFixed(4)),
        ours_p50_ms: Number(p50.toFixed(4)),
        whoosh_p50_ms: Number(loaded.stats.p50_ms.toFixed(4)),
        ours_p95_ms: Number(p95.toFixed(4)),
        whoosh_p95_ms: Number(loaded.stats.p95_ms.toFixed(4)),
        build_ratio: Number((buildMs / whooshBuildMs).toFixed(4)),
        ours_build_ms: Math.round(buildMs),
        whoosh_build_ms: Math.round(whooshBuildMs),
        ours_load_ms: Math.round(loadMs),
        whoosh_load_ms: Math.round(whooshLoadMs),
        load_10k_pages_ms: Math.round(bigLoadMs),
        peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
        whoosh_peak_rss_mb: Math.round(loaded.stats.peak_rss_mb),
      }),
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

void main();
