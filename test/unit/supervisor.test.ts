import { strict as assert } from 'node:assert';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SearchService } from '../../src/extension/searchService';
import { Backoff, type SupervisorState, Supervisor, UnavailableError } from '../../src/extension/supervisor';

const ROOT = path.resolve(__dirname, '..', '..');

/** A clock the test moves by hand: no real waiting anywhere in the policy tests. */
class FakeClock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
}

/** A helper that `launch` hands out; `die` plays its process exiting. */
class FakeHelper {
  stopped = false;
  constructor(readonly die: (reason: string) => void) {}
  stop(): void {
    this.stopped = true;
  }
}

function fakeLaunch(outcomes: Array<'ok' | string>) {
  const launched: FakeHelper[] = [];
  let i = 0;
  const launch = (exited: (reason: string) => void) => {
    const outcome = outcomes[Math.min(i++, outcomes.length - 1)];
    if (outcome !== 'ok') return Promise.reject(new Error(outcome));
    const h = new FakeHelper(exited);
    launched.push(h);
    return Promise.resolve(h);
  };
  return { launch, launched };
}

/** The state read through a function, so one assertion's narrowing does not leak into the next. */
function stateOf(x: { state: SupervisorState }): SupervisorState {
  return x.state;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  assert.fail('expected a rejection');
}

describe('Backoff', () => {
  it('waits 1 s after one failure, doubling to 60 s and staying there', () => {
    const b = new Backoff();
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 100].map((n) => b.delay(n)),
      [0, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000],
    );
  });
});

describe('Supervisor', () => {
  it('a helper that cannot start fails fast with its reason until the backoff allows one more start', async () => {
    const clock = new FakeClock();
    const { launch } = fakeLaunch(['no corpus: corpus/ocr_output.jsonl does not exist']);
    const sup = new Supervisor(launch, { clock });
    const first = await rejection(sup.get());
    assert.match(first.message, /no corpus/);
    assert.equal(sup.starts, 1);
    // 100 requests in the next second: none starts the helper, each says why.
    for (let i = 0; i < 100; i++) {
      const e = await rejection(sup.get());
      assert.ok(e instanceof UnavailableError);
      assert.match(e.message, /no corpus/);
      clock.t += 9;
    }
    assert.equal(sup.starts, 1);
    clock.t += 100; // 1 s after the failure
    await rejection(sup.get());
    assert.equal(sup.starts, 2);
    const s = stateOf(sup);
    assert.ok(s.kind === 'unavailable');
    assert.equal(s.retryAt - clock.t, 2_000, 'the second failure waits 2 s');
  });

  it('a request every 100 ms for ten minutes starts a failing helper a handful of times a minute at most', async () => {
    const clock = new FakeClock();
    const { launch } = fakeLaunch(['broken OCR file']);
    const sup = new Supervisor(launch, { clock });
    const startsAt: number[] = [];
    const t0 = clock.t;
    for (let i = 0; i < 6_000; i++) {
      const before = sup.starts;
      await sup.get().catch(() => undefined);
      if (sup.starts > before) startsAt.push(clock.t - t0);
      clock.t += 100;
    }
    assert.deepEqual(
      startsAt.slice(0, 8),
      [0, 1_000, 3_000, 7_000, 15_000, 31_000, 63_000, 123_000],
      'starts at 0, 1, 3, 7, 15, 31 s, then every 60 s',
    );
    assert.equal(startsAt.filter((t) => t < 60_000).length, 6);
    assert.equal(startsAt.length, 6 + Math.floor((600_000 - 63_000) / 60_000) + 1);
  });

  it('restart() (the cause changed) starts at once and forgets the backoff', async () => {
    const clock = new FakeClock();
    const { launch } = fakeLaunch(['no corpus', 'no corpus', 'no corpus', 'ok']);
    const sup = new Supervisor(launch, { clock });
    for (let i = 0; i < 3; i++) {
      if (i) clock.t += 60_000;
      await rejection(sup.get());
    }
    assert.equal(sup.starts, 3);
    assert.ok((await rejection(sup.get())) instanceof UnavailableError, 'still backing off: no start');
    assert.equal(sup.starts, 3);
    const helper = await sup.restart();
    assert.ok(helper instanceof FakeHelper);
    assert.equal(sup.starts, 4);
    assert.equal(stateOf(sup).kind, 'running');
    assert.equal(await sup.get(), helper, 'a running helper is reused');
    assert.equal(sup.starts, 4);
  });

  it('a helper killed after a good run restarts on the next request; one that keeps dying backs off', async () => {
    const clock = new FakeClock();
    const { launch, launched } = fakeLaunch(['ok']);
    const sup = new Supervisor(launch, { clock, stableMs: 10_000 });
    const states: string[] = [];
    sup.onState((s) => states.push(s.kind));
    await sup.get();
    clock.t += 5_000;
    launched[0].die('the search process was killed (SIGKILL)');
    assert.equal(stateOf(sup).kind, 'idle', 'the first death costs no wait');
    await sup.get();
    assert.equal(sup.starts, 2);
    launched[1].die('killed again at once');
    const s = stateOf(sup);
    assert.ok(s.kind === 'unavailable');
    assert.equal(s.retryAt - clock.t, 1_000);
    assert.match((await rejection(sup.get())).message, /killed again/);
    clock.t += 1_000;
    await sup.get();
    assert.equal(sup.starts, 3);
    clock.t += 10_000; // a stable run forgives the past
    launched[2].die('killed after a long run');
    assert.equal(stateOf(sup).kind, 'idle');
    assert.deepEqual(states, [
      'starting',
      'running',
      'idle',
      'starting',
      'running',
      'unavailable',
      'starting',
      'running',
      'idle',
    ]);
  });

  it('a helper that exits between launch and ready is a failed start, and a restart stops the old one', async () => {
    const clock = new FakeClock();
    let exitedEarly: ((r: string) => void) | null = null;
    const helpers: FakeHelper[] = [];
    const sup = new Supervisor(
      (exited) => {
        const h = new FakeHelper(exited);
        helpers.push(h);
        if (!exitedEarly) {
          exitedEarly = exited;
          exited('crashed while loading');
        }
        return Promise.resolve(h);
      },
      { clock },
    );
    assert.match((await rejection(sup.get())).message, /crashed while loading/);
    assert.equal(stateOf(sup).kind, 'unavailable');
    await sup.restart();
    assert.equal(stateOf(sup).kind, 'running');
    await sup.restart();
    assert.equal(helpers[1].stopped, true);
    assert.equal(helpers[2].stopped, false);
    sup.stop();
    assert.equal(helpers[2].stopped, true);
    assert.equal(stateOf(sup).kind, 'idle');
  });
});

describe('SearchService over a real drag serve', function () {
  this.timeout(120_000);
  const cli = path.join(ROOT, 'dist', 'cli.js');
  let dir = '';
  let service: SearchService | null = null;
  const lines: string[] = [];
  const log = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };

  beforeEach(function () {
    if (!existsSync(cli)) {
      console.log('      skipped: dist/cli.js is not built (npm run build)');
      this.skip();
    }
    dir = mkdtempSync(path.join(tmpdir(), 'drag-supervisor-'));
    lines.length = 0;
  });
  afterEach(() => {
    service?.dispose();
    service = null;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const noCorpusTitle =
    'without a corpus: 200 requests start drag serve once, fail fast with the reason, ' +
    'and the OCR file appearing starts it';
  it(noCorpusTitle, async () => {
    const corpus = path.join(dir, 'corpus');
    const paths = {
      ocrFile: path.join(corpus, 'ocr_output.jsonl'),
      pdfDir: path.join(corpus, 'pdfs'),
      cacheDir: path.join(corpus, '.cache'),
    };
    service = new SearchService(cli, paths, log, { watchIntervalMs: 50 });
    const errors = new Set<string>();
    // Concurrent and sequential requests, as the views and panels make them.
    const burst = await Promise.allSettled(Array.from({ length: 100 }, () => service!.search('net income', 5)));
    for (const r of burst) {
      assert.equal(r.status, 'rejected');
      errors.add((r as PromiseRejectedResult).reason.message);
    }
    for (let i = 0; i < 100; i++) errors.add((await rejection(service.rankOf('capex', [], 100))).message);
    // Real time passes here (a process start), so the 1 s backoff may allow one more start: a handful at most.
    assert.ok(service.starts <= 2, `drag serve started ${service.starts} times`);
    assert.equal(errors.size, 1, [...errors].join('\n'));
    assert.match([...errors][0], /no corpus: .*ocr_output\.jsonl does not exist/);
    assert.equal(stateOf(service).kind, 'unavailable');
    assert.ok(lines.filter((l) => /unavailable/.test(l)).length <= service.starts, lines.join('\n'));

    const running = new Promise<void>((resolve) =>
      service!.onState((s) => {
        if (s.kind === 'running') resolve();
      }),
    );
    mkdirSync(corpus, { recursive: true });
    copyFileSync(path.join(ROOT, 'test', 'fixtures', 'workspace', 'corpus', 'ocr_output.jsonl'), paths.ocrFile);
    await running; // started by the watcher, not by a request
    const found = await service.search('property plant equipment', 3);
    assert.ok(found.hits.length > 0);
    const { ranks } = await service.ranksOf(
      [
        { query: 'property plant equipment', targets: [{ file: found.hits[0].file, page: found.hits[0].page_number }] },
        { query: 'zzzz nothing matches', targets: [{ file: found.hits[0].file, page: found.hits[0].page_number }] },
      ],
      100,
    );
    assert.deepEqual(ranks, [1, null]);

    // Removed and put back (same inode and time): unavailable, then running again, by the watcher alone.
    const waitState = (kind: SupervisorState['kind']) =>
      new Promise<void>((resolve) => {
        const sub = service!.onState((s) => {
          if (s.kind === kind) {
            sub.dispose();
            resolve();
          }
        });
      });
    const gone = waitState('unavailable');
    renameSync(paths.ocrFile, `${paths.ocrFile}.away`);
    await gone;
    const back = waitState('running');
    renameSync(`${paths.ocrFile}.away`, paths.ocrFile);
    await back;
    assert.ok((await service.search('property plant equipment', 3)).hits.length > 0);
  });

  it('a broken OCR file is unavailable with the file and line in the reason; kill -9 costs one restart', async () => {
    const paths = {
      ocrFile: path.join(dir, 'ocr_output.jsonl'),
      pdfDir: path.join(dir, 'pdfs'),
      cacheDir: path.join(dir, '.cache'),
    };
    const { writeFileSync } = await import('node:fs');
    writeFileSync(paths.ocrFile, 'not json\n{"file": 3}\n');
    service = new SearchService(cli, paths, log, { watchIntervalMs: 50 });
    const e = await rejection(service.search('x', 1));
    assert.match(e.message, /no readable page in .*ocr_output\.jsonl \(\d+ problems; first: .*ocr_output\.jsonl:1: /);
    assert.equal(service.starts, 1);
    copyFileSync(path.join(ROOT, 'test', 'fixtures', 'workspace', 'corpus', 'ocr_output.jsonl'), paths.ocrFile);
    await new Promise<void>((resolve) =>
      service!.onState((s) => {
        if (s.kind === 'running') resolve();
      }),
    );
    const starts = service.starts;
    const exited = new Promise<void>((resolve) =>
      service!.onState((s) => {
        if (s.kind !== 'running') resolve();
      }),
    );
    assert.ok(service.pid);
    process.kill(service.pid, 'SIGKILL');
    await exited;
    assert.ok((await service.search('property plant equipment', 3)).hits.length > 0, 'the next request works');
    assert.equal(service.starts, starts + 1);
    assert.equal(lines.filter((l) => /SIGKILL/.test(l)).length, 1, lines.join('\n'));
  });
});
