/**
 * Pipeline benchmark: drag process + drag format (all formats) over 100,000 DRAG trajectories,
 * against a bare readline + JSON.parse pass over the same file in the same run.
 * Last line: JSON with ratio = (process + format) / bare parse. Target <= 2.0. Also measured: the
 * floor_ratio of the least work any JSONL-to-JSONL implementation must do (see serialiseFloor).
 *
 * Usage: npm run bench -- pipeline [--trajectories 100000]
 */
import { createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ALL_FORMATS, formatProcessed } from '../src/core/pipeline/format';
import { runProcess } from '../src/core/pipeline/runProcess';
import { trajectoryFile } from './_data';

const { values } = parseArgs({ options: { trajectories: { type: 'string', default: '100000' } } });
const N = Number(values.trajectories);

async function bareParse(file: string): Promise<number> {
  let n = 0;
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    if (!line) continue;
    JSON.parse(line);
    n++;
  }
  return n;
}

/**
 * The floor under any process + format that reads JSONL and writes JSONL: parsing the processed
 * file (format must read it) and serialising every output line once (JSON.stringify of the parsed
 * output records, timed per batch; reading them back is not timed). No computing, no disk writes.
 */
async function serialiseFloor(
  processed: string,
  outDir: string,
): Promise<{ parseProcessedMs: number; stringifyOutputsMs: number; outputBytes: number }> {
  let t0 = performance.now();
  await bareParse(processed);
  const parseProcessedMs = performance.now() - t0;
  let stringifyOutputsMs = 0;
  let outputBytes = 0;
  for (const f of readdirSync(outDir).filter((n) => n.endsWith('.jsonl'))) {
    outputBytes += statSync(path.join(outDir, f)).size;
    let batch: unknown[] = [];
    const flush = () => {
      t0 = performance.now();
      for (const r of batch) JSON.stringify(r);
      stringifyOutputsMs += performance.now() - t0;
      batch = [];
    };
    for await (const line of createInterface({ input: createReadStream(path.join(outDir, f)), crlfDelay: Infinity })) {
      if (!line) continue;
      batch.push(JSON.parse(line));
      if (batch.length === 10000) flush();
    }
    flush();
  }
  return { parseProcessedMs, stringifyOutputsMs, outputBytes };
}

async function main(): Promise<void> {
  const file = trajectoryFile(N);
  const work = mkdtempSync(path.join(tmpdir(), 'drag-bench-pipeline-'));
  try {
    readFileSync(file); // warm the page cache
    (globalThis as { gc?: () => void }).gc?.();
    let t0 = performance.now();
    const parsed = await bareParse(file);
    const parseMs = performance.now() - t0;
    (globalThis as { gc?: () => void }).gc?.();
    t0 = performance.now();
    const processed = path.join(work, 'processed.jsonl');
    const outcome = await runProcess([file], processed, path.join(work, 'stats.json'));
    const processMs = performance.now() - t0;
    t0 = performance.now();
    const report = await formatProcessed([processed], path.join(work, 'ds'), {
      formats: [...ALL_FORMATS],
      trainRatio: 0.9,
      seed: 42,
      splitBy: 'question',
      reasoning: true,
    });
    const formatMs = performance.now() - t0;
    const ratio = (processMs + formatMs) / parseMs;
    const floor = await serialiseFloor(processed, path.join(work, 'ds'));
    const floorRatio = (parseMs + floor.parseProcessedMs + floor.stringifyOutputsMs) / parseMs;
    const examples = Object.values(report.formats).reduce((n, f) => n + f.total, 0);
    console.log(
      `input: ${N} trajectories, ${(statSync(file).size / 1e6).toFixed(0)} MB (${parsed} parsed by the baseline)`,
    );
    console.log(`bare readline + JSON.parse: ${parseMs.toFixed(0)} ms`);
    console.log(
      `process: ${processMs.toFixed(0)} ms (${outcome.records.length} records, ${outcome.stats.total_query_pairs} pairs); format (${Object.keys(report.formats).length} formats, ${examples} examples): ${formatMs.toFixed(0)} ms`,
    );
    console.log(
      `floor (parse the input, parse processed.jsonl, JSON.stringify the ${(floor.outputBytes / 1e6).toFixed(0)} MB of output lines; nothing else): ${(parseMs + floor.parseProcessedMs + floor.stringifyOutputsMs).toFixed(0)} ms = ${floorRatio.toFixed(3)} x the bare parse`,
    );
    console.log(
      `ratio ${ratio.toFixed(3)} (target <= 2.0); peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`,
    );
    console.log(
      JSON.stringify({
        bench: 'pipeline',
        trajectories: N,
        parse_ms: Math.round(parseMs),
        process_ms: Math.round(processMs),
        format_ms: Math.round(formatMs),
        output_mb: Math.round(floor.outputBytes / 1e6),
        floor_ratio: Number(floorRatio.toFixed(3)),
        ratio: Number(ratio.toFixed(3)),
        target: 2.0,
        examples,
        peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      }),
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

void main();
