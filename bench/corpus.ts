/**
 * Corpus build benchmark: `drag corpus build` (the built dist/cli.js) with pdf.js (the default) and
 * with `--extractor poppler`, against poppler's `pdftotext` itself over the same PDFs with the same
 * number of processes (N at a time), in the same run, rounds alternating; medians of wall time and
 * peak RSS (GNU time). Targets: corpus build <= 2.0 x pdftotext, peak memory under 300 MB.
 *
 * The PDFs: every *.pdf under --pdfs (default: the real 10-K and earnings PDFs of the shared
 * FinanceBench corpus, ../shared/data/financebench-mini/pdfs).
 *
 * Usage: npm run bench -- corpus [--pdfs DIR] [--workers 2] [--rounds 3]
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(__dirname, '..');
const { values } = parseArgs({
  options: {
    pdfs: { type: 'string', default: path.resolve(ROOT, '..', 'shared', 'data', 'financebench-mini', 'pdfs') },
    workers: { type: 'string', default: String(Math.min(4, availableParallelism())) },
    rounds: { type: 'string', default: '3' },
  },
});
const WORKERS = Number(values.workers);
const ROUNDS = Number(values.rounds);
const CLI = path.join(ROOT, 'dist', 'cli.js');
const TIME = '/usr/bin/time';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Wall ms and peak RSS (MB, GNU time) of a command; `parallel` more of its kind run beside it. */
async function timed(commands: string[][], parallel: number, work: string): Promise<{ ms: number; peakMb: number }> {
  let peak = 0;
  let next = 0;
  const t0 = performance.now();
  const lane = async (lane: number) => {
    while (next < commands.length) {
      const argv = commands[next++];
      const rss = path.join(work, `.rss-${lane}`);
      await new Promise<void>((resolve, reject) => {
        const child = spawn(TIME, ['-f', '%M', '-o', rss, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (b) => (err += b));
        child.on('close', (code) =>
          code === 0 ? resolve() : reject(new Error(`${argv.join(' ')} failed (${code}): ${err.slice(-1000)}`)),
        );
      });
      peak = Math.max(peak, Number(readFileSync(rss, 'utf8').trim().split('\n').pop()) / 1024);
    }
  };
  await Promise.all(Array.from({ length: parallel }, (_, i) => lane(i)));
  return { ms: performance.now() - t0, peakMb: peak };
}

async function main(): Promise<void> {
  const why = !existsSync(CLI)
    ? `${CLI} is not built (npm run build)`
    : !existsSync(TIME)
      ? `${TIME} (GNU time) is missing`
      : spawnSync('pdftotext', ['-v']).error
        ? 'pdftotext is not installed (Debian: poppler-utils)'
        : !existsSync(values.pdfs)
          ? `${values.pdfs} is absent`
          : null;
  if (why) {
    console.log(`skipped: ${why}`);
    console.log(JSON.stringify({ bench: 'corpus', ratio: null, skipped: why }));
    return;
  }
  const pdfs = readdirSync(values.pdfs)
    .filter((f) => f.toLowerCase().endsWith('.pdf'))
    .sort()
    .map((f) => path.join(values.pdfs, f));
  const bytes = pdfs.reduce((n, f) => n + statSync(f).size, 0);
  const work = mkdtempSync(path.join(tmpdir(), 'drag-bench-corpus-'));
  const runs: Record<'pdftotext' | 'pdfjs' | 'poppler', { ms: number[]; peak: number }> = {
    pdftotext: { ms: [], peak: 0 },
    pdfjs: { ms: [], peak: 0 },
    poppler: { ms: [], peak: 0 },
  };
  let pages = 0;
  try {
    for (const f of pdfs) readFileSync(f); // warm the page cache
    for (let round = 0; round < ROUNDS; round++) {
      const order = (['pdftotext', 'pdfjs', 'poppler'] as const).slice();
      if (round % 2) order.reverse();
      for (const kind of order) {
        const out = path.join(work, `${kind}-${round}.jsonl`);
        const r =
          kind === 'pdftotext'
            ? await timed(
                pdfs.map((f, i) => ['pdftotext', '-enc', 'UTF-8', f, path.join(work, `${i}.txt`)]),
                WORKERS,
                work,
              )
            : await timed(
                [
                  [
                    process.execPath,
                    CLI,
                    'corpus',
                    'build',
                    values.pdfs,
                    '--out',
                    out,
                    '--workers',
                    String(WORKERS),
                    '--no-index', // equal work: pdftotext builds no search index
                    ...(kind === 'poppler' ? ['--extractor', 'poppler'] : []),
                  ],
                ],
                1,
                work,
              );
        runs[kind].ms.push(r.ms);
        runs[kind].peak = Math.max(runs[kind].peak, r.peakMb);
        if (kind === 'pdfjs') pages = readFileSync(out, 'utf8').split('\n').filter(Boolean).length;
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const base = median(runs.pdftotext.ms);
  const row = (kind: keyof typeof runs) => ({
    ms: Math.round(median(runs[kind].ms)),
    ratio: Number((median(runs[kind].ms) / base).toFixed(3)),
    peak_rss_mb: Math.round(runs[kind].peak),
  });
  const pdfjs = row('pdfjs');
  const poppler = row('poppler');
  console.log(
    `${pdfs.length} PDFs (${(bytes / 1e6).toFixed(1)} MB, ${pages} pages), ${WORKERS} at a time, ` +
      `median of ${ROUNDS} alternating rounds:`,
  );
  console.log(
    `  pdftotext ${WORKERS} at a time:         ${Math.round(base)} ms, ` +
      `peak RSS ${Math.round(runs.pdftotext.peak)} MB per process`,
  );
  console.log(
    `  drag corpus build (pdf.js):       ${pdfjs.ms} ms = ${pdfjs.ratio} x pdftotext, peak RSS ${pdfjs.peak_rss_mb} MB`,
  );
  console.log(
    `  drag corpus build --extractor poppler: ${poppler.ms} ms = ${poppler.ratio} x pdftotext, ` +
      `peak RSS ${poppler.peak_rss_mb} MB`,
  );
  console.log(
    JSON.stringify({
      bench: 'corpus',
      pdfs: pdfs.length,
      pages,
      workers: WORKERS,
      pdftotext_ms: Math.round(base),
      pdfjs,
      poppler,
      ratio: poppler.ratio,
      pdfjs_ratio: pdfjs.ratio,
      target: 2.0,
    }),
  );
}

void main();
