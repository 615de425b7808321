/**
 * Pipeline benchmark, two parts in one run.
 *
 * 1. Against DRAG's own Python scripts (../shared/peers/drag-python, run with /usr/bin/python3 and
 *    Debian's python3-tqdm) on the same generated file, with equal work: `drag process --output-dir
 *    --formats sft_query,sft_trajectory,dpo` (the built dist/cli.js, as a user runs it: trajectories
 *    to a dataset in one command) against `process_trajectories.py --format all`, which writes the
 *    same three outputs. Rounds alternate ours and DRAG's; medians of wall time, peak RSS. Target:
 *    ours / DRAG <= 0.5 at every size, peak memory not above DRAG's. In the same rounds, the floor of
 *    any Node command: a bare node process that only reads and JSON.parses every line of the input
 *    (no checks, no work, no output), printed as floor / DRAG.
 * 2. Against the floor: all nine formats from the same file (the built CLI, one pass), against the
 *    least work any JSONL-to-JSONL implementation must do (a node process parsing the input, plus
 *    JSON.stringify of every output line; nothing else). Target: <= 2.0 x the floor. Writing the
 *    output bytes (with fsync) is timed too and printed beside it: it is not in the floor.
 *
 * Usage: npm run bench -- pipeline [--sizes 20000,100000] [--rounds 3] [--floor-trajectories 100000]
 */
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  createReadStream,
  existsSync,
  fsyncSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ALL_FORMATS } from '../src/core/pipeline/format';
import { trajectoryFile } from './_data';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '20000,100000' },
    rounds: { type: 'string', default: '3' },
    'floor-trajectories': { type: 'string', default: '100000' },
  },
});
const SIZES = values.sizes.split(',').map(Number);
const ROUNDS = Number(values.rounds);
const FLOOR_N = Number(values['floor-trajectories']);

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const PEERS = path.resolve(ROOT, '..', 'shared', 'peers', 'drag-python');
const DRAG_PROCESS = path.join(PEERS, 'process_trajectories.py');
const PYTHON = '/usr/bin/python3';
const TIME = '/usr/bin/time';
const gc = () => (globalThis as { gc?: () => void }).gc?.();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Runs a command: wall time in ms, and from GNU time (when /usr/bin/time exists) peak RSS in MB and
 * CPU time (user + system) in ms, which other work on a busy machine disturbs less than wall time.
 */
function timed(argv: string[], cwd: string): { ms: number; peakMb: number | null; cpuMs: number | null } {
  const rss = path.join(cwd, '.rss');
  const withTime = existsSync(TIME) ? [TIME, '-f', '%M %U %S', '-o', rss, ...argv] : argv;
  const t0 = performance.now();
  const r = spawnSync(withTime[0], withTime.slice(1), { cwd, encoding: 'utf8', maxBuffer: 1 << 26 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  if (!existsSync(rss)) return { ms, peakMb: null, cpuMs: null };
  const [kb, user, sys] = readFileSync(rss, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  return { ms, peakMb: kb / 1024, cpuMs: (user + sys) * 1000 };
}

/** A bare node process that reads a JSONL file and JSON.parses every line: the least a Node command does. */
const BARE_PARSE = [
  "const b = require('node:fs').readFileSync(process.argv[1]);",
  'for (let s = 0, e; (e = b.indexOf(10, s)) !== -1; s = e + 1) if (e > s) JSON.parse(b.toString("utf8", s, e));',
].join('\n');

interface VsDrag {
  trajectories: number;
  ours_ms: number;
  drag_ms: number;
  ratio: number;
  ours_cpu_ms: number | null;
  drag_cpu_ms: number | null;
  cpu_ratio: number | null;
  ours_peak_mb: number | null;
  drag_peak_mb: number | null;
  floor_ms: number;
  floor_cpu_ms: number | null;
  /** floor / DRAG, wall and CPU: the best ratio a Node command that parses its input could reach. */
  floor_ratio: number;
  floor_cpu_ratio: number | null;
}

function againstDrag(n: number, work: string): VsDrag {
  const file = trajectoryFile(n);
  readFileSync(file); // warm the page cache
  const ours: number[] = [];
  const drag: number[] = [];
  const oursCpu: number[] = [];
  const dragCpu: number[] = [];
  const floor: number[] = [];
  const floorCpu: number[] = [];
  let oursPeak = 0;
  let dragPeak = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const dir = mkdtempSync(path.join(work, 'round-'));
    const runOurs = () => {
      const formats = 'sft_query,sft_trajectory,dpo';
      const p = timed(
        [
          process.execPath,
          CLI,
          'process',
          '-i',
          file,
          '-s',
          'stats.json',
          '--output-dir',
          'ours',
          '--formats',
          formats,
        ],
        dir,
      );
      ours.push(p.ms);
      if (p.cpuMs !== null) oursCpu.push(p.cpuMs);
      oursPeak = Math.max(oursPeak, p.peakMb ?? 0);
      // The floor, right after ours.
      const a = timed([process.execPath, '-e', BARE_PARSE, file], dir);
      floor.push(a.ms);
      if (a.cpuMs !== null) floorCpu.push(a.cpuMs);
    };
    const runDrag = () => {
      const d = timed(
        [PYTHON, DRAG_PROCESS, '--input', file, '--output', 'drag', '--format', 'all', '--stats', 'drag-stats.json'],
        dir,
      );
      drag.push(d.ms);
      if (d.cpuMs !== null) dragCpu.push(d.cpuMs);
      dragPeak = Math.max(dragPeak, d.peakMb ?? 0);
    };
    // Alternate which goes first, so neither always gets the quieter moment.
    if (round % 2 === 0) {
      runOurs();
      runDrag();
    } else {
      runDrag();
      runOurs();
    }
    rmSync(dir, { recursive: true, force: true });
  }
  const r: VsDrag = {
    trajectories: n,
    ours_ms: Math.round(median(ours)),
    drag_ms: Math.round(median(drag)),
    ratio: Number((median(ours) / median(drag)).toFixed(3)),
    ours_cpu_ms: oursCpu.length ? Math.round(median(oursCpu)) : null,
    drag_cpu_ms: dragCpu.length ? Math.round(median(dragCpu)) : null,
    cpu_ratio: oursCpu.length && dragCpu.length ? Number((median(oursCpu) / median(dragCpu)).toFixed(3)) : null,
    ours_peak_mb: existsSync(TIME) ? Math.round(oursPeak) : null,
    drag_peak_mb: existsSync(TIME) ? Math.round(dragPeak) : null,
    floor_ms: Math.round(median(floor)),
    floor_cpu_ms: floorCpu.length ? Math.round(median(floorCpu)) : null,
    floor_ratio: Number((median(floor) / median(drag)).toFixed(3)),
    floor_cpu_ratio: floorCpu.length && dragCpu.length ? Number((median(floorCpu) / median(dragCpu)).toFixed(3)) : null,
  };
  console.log(
    `${n} trajectories (${(statSync(file).size / 1e6).toFixed(0)} MB), median of ${ROUNDS} alternating rounds: ` +
      `drag process --output-dir (3 formats) ${r.ours_ms} ms [${ours.map(Math.round).join(', ')}], ` +
      `DRAG process_trajectories.py --format all ${r.drag_ms} ms [${drag.map(Math.round).join(', ')}]: ` +
      `ratio ${r.ratio} (target <= 0.5); CPU time ${r.ours_cpu_ms ?? '?'} vs ${r.drag_cpu_ms ?? '?'} ms, ` +
      `ratio ${r.cpu_ratio ?? '?'}; peak RSS ours ${r.ours_peak_mb ?? '?'} MB, DRAG ${r.drag_peak_mb ?? '?'} MB; ` +
      `floor (a bare node process that only JSON.parses the input) ${r.floor_ms} ms, ` +
      `CPU ${r.floor_cpu_ms ?? '?'} ms: floor / DRAG ${r.floor_ratio} (CPU ${r.floor_cpu_ratio ?? '?'})`,
  );
  return r;
}

/** JSON.stringify of every output line (parsed back first, not timed), in batches. */
async function stringifyOutputs(outDir: string): Promise<{ ms: number; bytes: number }> {
  let ms = 0;
  let bytes = 0;
  for (const f of readdirSync(outDir).filter((n) => n.endsWith('.jsonl'))) {
    bytes += statSync(path.join(outDir, f)).size;
    let batch: unknown[] = [];
    const flush = () => {
      const t0 = performance.now();
      for (const r of batch) JSON.stringify(r);
      ms += performance.now() - t0;
      batch = [];
    };
    for await (const line of createInterface({ input: createReadStream(path.join(outDir, f)), crlfDelay: Infinity })) {
      if (!line) continue;
      batch.push(JSON.parse(line));
      if (batch.length === 10000) flush();
    }
    flush();
  }
  return { ms, bytes };
}

/**
 * Writing the output bytes themselves, as any tool must (here each file's bytes copied to a new file
 * and fsynced, as drag process does): not part of the floor, printed beside it.
 */
function writeOutputs(outDir: string): number {
  const copies = mkdtempSync(path.join(outDir, '..', 'copies-'));
  let ms = 0;
  for (const f of readdirSync(outDir).filter((n) => n.endsWith('.jsonl'))) {
    const bytes = readFileSync(path.join(outDir, f));
    const t0 = performance.now();
    const fd = openSync(path.join(copies, f), 'w');
    writeSync(fd, bytes);
    fsyncSync(fd);
    closeSync(fd);
    ms += performance.now() - t0;
  }
  rmSync(copies, { recursive: true, force: true });
  return ms;
}

/**
 * All nine formats, as a user runs them (the built CLI, one pass), against the floor: a bare node
 * process that parses the input, plus JSON.stringify of every output line (timed in this process).
 */
async function againstFloor(n: number, work: string) {
  const file = trajectoryFile(n);
  readFileSync(file);
  const ds = path.join(work, 'ds');
  const ours: number[] = [];
  const parse: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    rmSync(ds, { recursive: true, force: true });
    ours.push(timed([process.execPath, CLI, 'process', '-i', file, '-s', 'stats.json', '--output-dir', ds], work).ms);
    parse.push(timed([process.execPath, '-e', BARE_PARSE, file], work).ms);
  }
  const oursMs = median(ours);
  const parseMs = median(parse);
  const stats = JSON.parse(readFileSync(path.join(ds, 'stats.json'), 'utf8')) as Record<string, { total?: number }>;
  const examples = ALL_FORMATS.reduce((k, f) => k + (stats[f]?.total ?? 0), 0);
  gc();
  const out = await stringifyOutputs(ds);
  const writeMs = writeOutputs(ds);
  const floorMs = parseMs + out.ms;
  const ratio = oursMs / floorMs;
  console.log(
    `${n} trajectories, all ${ALL_FORMATS.length} formats, drag process --output-dir: ${oursMs.toFixed(0)} ms ` +
      `[${ours.map(Math.round).join(', ')}] (${examples} examples, ${(out.bytes / 1e6).toFixed(0)} MB); floor ` +
      `${floorMs.toFixed(0)} ms (a bare node process parsing the input ${parseMs.toFixed(0)}, JSON.stringify ` +
      `the output lines ${out.ms.toFixed(0)}): ratio to the floor ${ratio.toFixed(3)} (target <= 2.0); writing ` +
      `the output bytes alone takes ${writeMs.toFixed(0)} ms: ratio to the floor plus those writes ` +
      `${(oursMs / (floorMs + writeMs)).toFixed(3)}`,
  );
  return {
    trajectories: n,
    ours_ms: Math.round(oursMs),
    floor_ms: Math.round(floorMs),
    write_ms: Math.round(writeMs),
    ratio_with_writes: Number((oursMs / (floorMs + writeMs)).toFixed(3)),
    output_mb: Math.round(out.bytes / 1e6),
    examples,
    ratio: Number(ratio.toFixed(3)),
  };
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'drag-bench-pipeline-'));
  try {
    let drag: VsDrag[] = [];
    if (!existsSync(CLI)) console.log(`skipped the DRAG comparison: ${CLI} is not built (npm run build)`);
    else if (!existsSync(DRAG_PROCESS)) console.log(`skipped the DRAG comparison: ${DRAG_PROCESS} is not there`);
    else if (spawnSync(PYTHON, ['-c', 'import tqdm']).status !== 0)
      console.log(`skipped the DRAG comparison: ${PYTHON} cannot import tqdm (Debian: apt-get install python3-tqdm)`);
    else drag = SIZES.map((n) => againstDrag(n, work));
    const floor = await againstFloor(FLOOR_N, work);
    const worst = drag.length ? Math.max(...drag.map((d) => d.ratio)) : null;
    console.log(
      JSON.stringify({
        bench: 'pipeline',
        ratio: worst,
        target: 0.5,
        vs_drag: drag,
        floor_ratio: floor.ratio,
        floor_target: 2.0,
        floor,
        peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      }),
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

void main();
