/**
 * JSONL index benchmark (DESIGN.md performance rule): building the trajectory index (offsets +
 * validated summaries) against a bare `readline` + `JSON.parse` pass over the same file, in the
 * same process. Target: ratio <= 1.25.
 *
 * Usage: npm run bench -- jsonl [--trajectories N] [--rounds R]
 */
import { createReadStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { indexJsonl } from '../src/core/io/jsonl';
import { trajectorySummarizer } from '../src/core/trajectories/summary';

const { values } = parseArgs({ options: { trajectories: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '4' } } });
const N = Number(values.trajectories);
const ROUNDS = Number(values.rounds);
const dataDir = path.join(__dirname, '.data');
const file = path.join(dataDir, `trajectories-${N}.jsonl`);

/** A DRAG collector record with 3 searches and an answer (DRAG-SPEC §3.7), deterministic. */
function makeTrajectory(i: number): string {
  const files = ['3M_2018_10K.pdf', 'AMCOR_2023_10K.pdf', 'BOEING_2022_10K.pdf', 'CVSHEALTH_2022_10K.pdf'];
  const gtFile = files[i % 4];
  const gtPage = 1 + (i * 7) % 150;
  const iterations = [];
  let best: number | null = null;
  for (let step = 1; step <= 3; step++) {
    const results = [1, 2, 3].map((rank) => ({
      file: files[(i + rank + step) % 4], page_number: rank === ((i + step) % 4) ? gtPage : 1 + ((i + rank * 13 + step) % 150), total_pages: 160, rank,
    }));
    const hit = results.find((r) => r.file === gtFile && r.page_number === gtPage);
    const rank = hit ? hit.rank : null;
    if (rank !== null && (best === null || rank < best)) best = rank;
    iterations.push({
      step, reasoning: `Step ${step}: the ${['cash flow', 'balance sheet', 'segment note'][step - 1]} should list the figure for question ${i}.`,
      action: 'search', query: `company ${i % 977} fiscal 2022 revenue segment ${step}`, results,
      gt_found: rank !== null, gt_rank: rank, rank_score: rank === null ? null : (3 - rank + 1) / 3,
      answer: null, citations: null, raw_response: `<think>Looking for page ${gtPage}</think>`,
    });
  }
  iterations.push({ step: 4, reasoning: null, action: 'answer', query: null, results: null, gt_found: false, gt_rank: null, rank_score: null,
    answer: [`$${(i * 1.37).toFixed(2)} million`], citations: [{ file: gtFile, page: gtPage }], raw_response: '' });
  return JSON.stringify({
    id: `traj_q${i}`, question_id: `q${i}`,
    question: `What was the total revenue reported for fiscal year 2022 by company ${i % 977}, in USD millions, according to its annual report?`,
    ground_truth: { answers: [[`$${(i * 1.37).toFixed(2)} million`]], answer_locations: [{ document: gtFile, page: gtPage }], category: 'metrics-generated' },
    iterations, final_answer: [`$${(i * 1.37).toFixed(2)} million`], final_citations: [{ file: gtFile, page: gtPage }], success: true,
    gt_ever_found: best !== null, first_gt_iteration: null, best_gt_rank: best, best_rank_score: best === null ? null : (3 - best + 1) / 3,
    total_iterations: 4, total_searches: 3,
    sampling_config: { temperature: 0.7, top_p: 0.95, repetition_penalty: 1.0, max_tokens: 4096 },
    model: 'Qwen/Qwen3-VL-8B-Thinking', timestamp: '2026-11-20T10:15:02.118342', error: null,
  });
}

function generate(): void {
  if (existsSync(file)) return;
  mkdirSync(dataDir, { recursive: true });
  const fd = openSync(`${file}.tmp`, 'w');
  let chunk: string[] = [];
  for (let i = 0; i < N; i++) {
    chunk.push(makeTrajectory(i));
    if (chunk.length === 1000) { writeSync(fd, chunk.join('\n') + '\n'); chunk = []; }
  }
  if (chunk.length) writeSync(fd, chunk.join('\n') + '\n');
  closeSync(fd);
  writeFileSync(file, readFileSync(`${file}.tmp`));
}

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

async function main(): Promise<void> {
  const g0 = performance.now();
  generate();
  const bytes = statSync(file).size;
  console.log(`file: ${file} (${N} trajectories, ${(bytes / 1e6).toFixed(1)} MB; ready in ${((performance.now() - g0) / 1000).toFixed(1)} s)`);
  readFileSync(file); // warm the page cache so neither side pays for the disk
  const base: number[] = [];
  const mine: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate the order so neither side always runs on a warmer heap.
    const o = r % 2 === 1 ? await time(ours) : null;
    const b = await time(baseline);
    const o2 = o ?? await time(ours);
    if (b.n !== N || o2.n !== N) throw new Error(`line counts differ: baseline ${b.n}, ours ${o2.n}, expected ${N}`);
    base.push(b.ms);
    mine.push(o2.ms);
    console.log(`round ${r + 1}: readline+JSON.parse ${b.ms.toFixed(0)} ms, indexJsonl (offsets + validated summaries) ${o2.ms.toFixed(0)} ms`);
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
  console.log(`best of ${ROUNDS}: baseline ${bestBase.toFixed(0)} ms (${(bytes / 1e6 / (bestBase / 1000)).toFixed(0)} MB/s), ours ${bestOurs.toFixed(0)} ms; ratio ${ratio.toFixed(3)} (target <= 1.25)`);
  console.log(`index held in memory: ${indexMb.toFixed(1)} MB for ${kept.summaries.length} trajectories; peak RSS ${peakRssMb.toFixed(0)} MB`);
  console.log(JSON.stringify({ bench: 'jsonl', trajectories: N, bytes, baseline_ms: Math.round(bestBase), ours_ms: Math.round(bestOurs), ratio: Number(ratio.toFixed(3)), target: 1.25, index_mb: Number(indexMb.toFixed(1)), peak_rss_mb: Math.round(peakRssMb) }));
}

void main();
