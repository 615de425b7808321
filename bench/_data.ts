/** Shared benchmark data: deterministic DRAG trajectory files. */
import { closeSync, existsSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import * as path from 'node:path';

const dataDir = path.join(__dirname, '.data');

/** A record as DRAG's collector writes it, with 3 searches and an answer, deterministic. */
export function makeTrajectory(i: number): string {
  const files = ['3M_2018_10K.pdf', 'AMCOR_2023_10K.pdf', 'BOEING_2022_10K.pdf', 'CVSHEALTH_2022_10K.pdf'];
  const gtFile = files[i % 4];
  const gtPage = 1 + ((i * 7) % 150);
  const iterations = [];
  let best: number | null = null;
  for (let step = 1; step <= 3; step++) {
    const results = [1, 2, 3].map((rank) => ({
      file: files[(i + rank + step) % 4],
      page_number: rank === (i + step) % 4 ? gtPage : 1 + ((i + rank * 13 + step) % 150),
      total_pages: 160,
      rank,
    }));
    const hit = results.find((r) => r.file === gtFile && r.page_number === gtPage);
    const rank = hit ? hit.rank : null;
    if (rank !== null && (best === null || rank < best)) best = rank;
    iterations.push({
      step,
      reasoning:
        `Step ${step}: the ${['cash flow', 'balance sheet', 'segment note'][step - 1]} ` +
        `should list the figure for question ${i}.`,
      action: 'search',
      query: `company ${i % 977} fiscal 2022 revenue segment ${step}`,
      results,
      gt_found: rank !== null,
      gt_rank: rank,
      rank_score: rank === null ? null : (3 - rank + 1) / 3,
      answer: null,
      citations: null,
      raw_response: `<think>Looking for page ${gtPage}</think>`,
    });
  }
  iterations.push({
    step: 4,
    reasoning: null,
    action: 'answer',
    query: null,
    results: null,
    gt_found: false,
    gt_rank: null,
    rank_score: null,
    answer: [`$${(i * 1.37).toFixed(2)} million`],
    citations: [{ file: gtFile, page: gtPage }],
    raw_response: '',
  });
  return JSON.stringify({
    id: `traj_q${i}`,
    question_id: `q${i}`,
    question:
      `What was the total revenue reported for fiscal year 2022 by company ${i % 977}, ` +
      'in USD millions, according to its annual report?',
    ground_truth: {
      answers: [[`$${(i * 1.37).toFixed(2)} million`]],
      answer_locations: [{ document: gtFile, page: gtPage }],
      category: 'metrics-generated',
    },
    iterations,
    final_answer: [`$${(i * 1.37).toFixed(2)} million`],
    final_citations: [{ file: gtFile, page: gtPage }],
    success: true,
    gt_ever_found: best !== null,
    first_gt_iteration: null,
    best_gt_rank: best,
    best_rank_score: best === null ? null : (3 - best + 1) / 3,
    total_iterations: 4,
    total_searches: 3,
    sampling_config: { temperature: 0.7, top_p: 0.95, repetition_penalty: 1.0, max_tokens: 4096 },
    model: 'Qwen/Qwen3-VL-8B-Thinking',
    timestamp: '2026-11-20T10:15:02.118342',
    error: null,
  });
}

/** The benchmark file of N trajectories, generated once into bench/.data/. */
export function trajectoryFile(N: number): string {
  const file = path.join(dataDir, `trajectories-${N}.jsonl`);
  if (existsSync(file)) return file;
  mkdirSync(dataDir, { recursive: true });
  const fd = openSync(`${file}.tmp`, 'w');
  let chunk: string[] = [];
  for (let i = 0; i < N; i++) {
    chunk.push(makeTrajectory(i));
    if (chunk.length === 1000) {
      writeSync(fd, chunk.join('\n') + '\n');
      chunk = [];
    }
  }
  if (chunk.length) writeSync(fd, chunk.join('\n') + '\n');
  closeSync(fd);
  renameSync(`${file}.tmp`, file);
  return file;
}
