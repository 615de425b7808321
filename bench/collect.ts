/**
 * Collection throughput: a simulated OpenAI-compatible server with a fixed latency L = 200 ms per
 * request, at concurrency C in {1, 8, 32}, with page images on (warm cache). The ideal is C / L
 * requests per second; we report achieved / ideal. Last line JSON: ratio at C = 32. Target >= 0.9.
 *
 * Usage: npm run bench -- collect [--latency-ms 200] [--trajectories-per-slot 6]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { runCollection } from '../src/core/agent/collect';
import { fork } from 'node:child_process';

const { values } = parseArgs({
  options: {
    'latency-ms': { type: 'string', default: '200' },
    'trajectories-per-slot': { type: 'string', default: '10' },
  },
});
const L = Number(values['latency-ms']);
const PER_SLOT = Number(values['trajectories-per-slot']);
const fixture = path.join(__dirname, '..', 'test', 'fixtures', 'workspace', 'corpus');

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'drag-bench-collect-'));
  // The server runs in its own process, as a real vLLM would: it must not share our event loop.
  const server = fork(path.join(__dirname, '_collectServer.ts'), [String(L)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const url = await new Promise<string>((resolve) =>
    server.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())),
  );
  const count = () =>
    new Promise<number>((resolve) => {
      server.once('message', (n) => resolve(n as number));
      server.send('count');
    });
  const results: Array<{
    c: number;
    requests: number;
    seconds: number;
    perSecond: number;
    ideal: number;
    ratio: number;
  }> = [];
  try {
    const cacheDir = path.join(work, 'cache');
    for (const c of [1, 8, 32]) {
      const n = c * PER_SLOT;
      const questions = path.join(work, `q${c}.jsonl`);
      writeFileSync(
        questions,
        Array.from({ length: n }, (_, i) =>
          JSON.stringify({
            question_id: `q${i}`,
            question: `Q${i}`,
            answers: ['x'],
            answer_locations: [{ document: 'ACME_2023_10K.pdf', page: 3 }],
          }),
        ).join('\n') + '\n',
      );
      const base = {
        questions,
        ocr: path.join(fixture, 'ocr_output.jsonl'),
        pdfDir: path.join(fixture, 'pdfs'),
        cacheDir,
        agent: 'openai' as const,
        baseUrls: [url],
        model: 'bench',
        concurrency: c,
      };
      // Warm-up: index, page images rendered into the cache.
      await runCollection({ ...base, outDir: path.join(work, `warm${c}`), limit: Math.min(n, 2) });
      const before = await count();
      // Steady-state throughput: from the first request (after the index and questions are loaded) to the last record.
      let started = 0;
      await runCollection({
        ...base,
        outDir: path.join(work, `run${c}`),
        onEvent: (e) => {
          if (e.type === 'start') started = performance.now();
        },
      });
      const seconds = (performance.now() - started) / 1000;
      const requests = (await count()) - before;
      const perSecond = requests / seconds;
      const ideal = c / (L / 1000);
      results.push({ c, requests, seconds, perSecond, ideal, ratio: perSecond / ideal });
      console.log(
        `C=${String(c).padStart(2)}: ${requests} requests in ${seconds.toFixed(2)} s = ${perSecond.toFixed(1)}/s, ` +
          `ideal ${ideal.toFixed(1)}/s, ratio ${(perSecond / ideal).toFixed(3)}`,
      );
    }
    const at32 = results.find((r) => r.c === 32)!;
    console.log(
      JSON.stringify({
        bench: 'collect',
        latency_ms: L,
        images: true,
        ratio: Number(at32.ratio.toFixed(3)),
        target: 0.9,
        runs: results.map((r) => ({
          c: r.c,
          per_second: Number(r.perSecond.toFixed(2)),
          ideal: r.ideal,
          ratio: Number(r.ratio.toFixed(3)),
        })),
      }),
    );
  } finally {
    server.kill();
    rmSync(work, { recursive: true, force: true });
  }
}

void main();
