/**
 * JSONL index benchmark (DESIGN.md performance rule): building the trajectory index (offsets +
 * validated summaries) against a bare `readline` + `JSON.parse` pass over the same file, in the
 * same process. Target: ratio <= 1.25.
 *
 * Usage: npm run bench -- jsonl [--trajectories N] [--rounds R]
 */
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { indexJsonl } from '../src/core/io/jsonl';
import { trajectorySummarizer } from '../src/core/trajectories/summary';
import { trajectoryFile } from './_data';

const { values } = parseArgs({
  options: { trajectories: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '4' } },
});
const N = Number(values.trajectories);
const ROUNDS = Number(values.rounds);

async function baseline(): Promise<number> {
  let n = 0;
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line) continue;
    JSON.parse(line);
    n++;
  }
  return n;
}

async function ours(): Promise<number> {
  const index = await indexJsonl(file, trajectorySummarizer);
  if (index.errors.length) throw new Error(`unexpected errors: ${JSON.stringify(index.errors.slice(0, 3))}`);
  return index.summaries.length;
}

async function time(fn: () => Promise<number>): Promise<{ ms: number; n: number }> {
  (globalThis as { gc?: () => void }).gc?.();
  const t0 = performance.now();
  const n = await fn();
  return { ms: performance.now() - t0, n };
}

const file = trajectoryFile(N);

async function main(): Promise<void> {
  const g0 = performance.now();
  const bytes = statSync(file).size;
  console.log(
    `file: ${file} (${N} trajectories, ${(bytes / 1e6).toFixed(1)} MB; ` +
      `ready in ${((performance.now() - g0) / 1000).toFixed(1)} s)`,
  );
  readFileSync(file); // warm the page cache so neither side pays for the disk
  const base: number[] = [];
  const mine: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate the order so neither side always runs on a warmer heap.
    const o = r % 2 === 1 ? await time(ours) : null;
    const b = await time(baseline);
    const o2 = o ?? (await time(ours));
    if (b.n !== N || o2.n !== N) throw new Error(`line counts differ: baseline ${b.n}, ours ${o2.n}, expected ${N}`);
    base.push(b.ms);
    mine.push(o2.ms);
    console.log(
      `round ${r + 1}: readline+JSON.parse ${b.ms.toFixed(0)} ms, ` +
        `indexJsonl (offsets + validated summaries) ${o2.ms.toFixed(0)} ms`,
    );
  }
  (globalThis as { gc?: () => void }).gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const kept = await indexJsonl(file, trajectorySummarizer);
  (globalThis as { gc?: () => void }).gc?.();
  const indexMb = (process.memoryUsage().heapUsed - heapBefore) / 1e6;
  const bestBase = Math.min(...base);
  const bestOurs = Math.min(...mine);
  const ratio = bestOurs / bestBase;
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  console.log(
    `best of ${ROUNDS}: baseline ${bestBase.toFixed(0)} ms (${(bytes / 1e6 / (bestBase / 1000)).toFixed(0)} MB/s), ` +
      `ours ${bestOurs.toFixed(0)} ms; ratio ${ratio.toFixed(3)} (target <= 1.25)`,
  );
  console.log(
    `index held in memory: ${indexMb.toFixed(1)} MB for ${kept.summaries.length} trajectories; ` +
      `peak RSS ${peakRssMb.toFixed(0)} MB`,
  );
  console.log(
    JSON.stringify({
      bench: 'jsonl',
      trajectories: N,
      bytes,
      baseline_ms: Math.round(bestBase),
      ours_ms: Math.round(bestOurs),
      ratio: Number(ratio.toFixed(3)),
      target: 1.25,
      index_mb: Number(indexMb.toFixed(1)),
      peak_rss_mb: Math.round(peakRssMb),
    }),
  );
}

void main();
