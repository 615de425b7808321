import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { runCli } from '../../src/cli/main';
import { runCollection } from '../../src/core/agent/collect';
import { isFinal } from '../../src/core/trajectories/summary';
import { scoreTrajectoriesFile } from '../../src/core/eval/score';
import { summarizeTrajectory } from '../../src/core/trajectories/summary';
import { answerCall, type ChatBody, FakeOpenAI, searchCall } from '../helpers/fakeOpenAI';
import { FIXTURES, ROOT, useTempDir } from './helpers';

const OCR = path.join(FIXTURES, 'workspace', 'corpus', 'ocr_output.jsonl');
const PHRASES = [
  'property plant equipment',
  'cash flows investing',
  'segment net sales',
  'net income quarter',
  'capital expenditures outlook',
  'total assets balance',
];

/** N questions over the fixture corpus, each with a ground-truth page. */
function writeQuestions(file: string, n: number): void {
  const lines = Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      question_id: `q${i}`,
      question: `Question ${i} about ${PHRASES[i % PHRASES.length]}?`,
      answers: ['x'],
      answer_locations: [{ document: 'ACME_2023_10K.pdf', page: 1 + (i % 4) }],
    }),
  );
  writeFileSync(file, `${lines.join('\n')}\n`);
}

/** A model that searches the question's phrase, then answers. */
const agentScript = (body: ChatBody) => {
  const q = String(body.messages[1].content);
  const phrase = PHRASES.find((p) => q.includes(p)) ?? 'net';
  return body.messages.some((m) => m.role === 'tool')
    ? answerCall(['x'], [{ file: 'ACME_2023_10K.pdf', page: 1 }])
    : searchCall(phrase);
};

function records(file: string): Array<{ id: string; question_id: string; sample: number; error: string | null }> {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

describe('drag collect', function () {
  this.timeout(180_000);
  const tmp = useTempDir();
  let server: FakeOpenAI | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  const concurrencyTitle =
    'collects with concurrency and samples, writes run.json, resumes without duplicates, retries errored ones';
  it(concurrencyTitle, async () => {
    const questions = path.join(tmp(), 'q.jsonl');
    writeQuestions(questions, 12);
    let failing = true;
    server = new FakeOpenAI((body) =>
      failing && String(body.messages[1].content).startsWith('Question 3 ')
        ? { status: 400, body: { error: { message: 'bad request' } } }
        : agentScript(body),
    );
    const url = await server.start();
    const out = path.join(tmp(), 'run');
    const base = {
      questions,
      ocr: OCR,
      outDir: out,
      agent: 'openai' as const,
      baseUrls: [url],
      model: 'm',
      concurrency: 4,
      samples: 2,
      retry: { baseDelayMs: 5 },
    };
    const first = await runCollection(base);
    assert.equal(first.total, 24);
    assert.equal(first.errors, 2); // question 3, both samples: a 400 is not retried
    const file = path.join(out, 'trajectories.jsonl');
    assert.equal(records(file).length, 24);
    assert.deepEqual(new Set(records(file).map((r) => r.id)).size, 24, 'ids unique per question and sample');
    const run = JSON.parse(readFileSync(path.join(out, 'run.json'), 'utf8'));
    assert.equal(run.status, 'finished');
    assert.equal(run.counts.done, 24);
    await assert.rejects(runCollection(base), /--resume/);
    failing = false;
    const second = await runCollection({ ...base, resume: true });
    assert.equal(second.total, 2, 'only the errored (question, sample) pairs are retried');
    const finals = records(file).filter(isFinal);
    assert.equal(finals.length, 24);
    assert.equal(new Set(finals.map((r) => `${r.question_id}/${r.sample}`)).size, 24);
  });

  it('a reply cut at max_tokens is an error: counted, scored with no answer, retried by --resume', async () => {
    const questions = path.join(tmp(), 'q.jsonl');
    writeQuestions(questions, 4);
    let cutting = true;
    server = new FakeOpenAI(
      (body) =>
        cutting && String(body.messages[1].content).startsWith('Question 2 ')
          ? { reply: { reasoning_content: 'Thinking about the segments. '.repeat(200), content: 'Answer: x' } }
          : agentScript(body),
      { models: ['m'], maxModelLen: 20_000 },
    );
    const url = await server.start();
    const out = path.join(tmp(), 'cut');
    const base = {
      questions,
      ocr: OCR,
      outDir: out,
      agent: 'openai' as const,
      baseUrls: [url],
      model: 'm',
      concurrency: 2,
      retry: { baseDelayMs: 5 },
      samplingOverrides: { max_tokens: 256 },
    };
    const first = await runCollection(base);
    assert.equal(first.errors, 1);
    const file = path.join(out, 'trajectories.jsonl');
    const cut = records(file).find((r) => r.question_id === 'q2') as unknown as Parameters<
      typeof summarizeTrajectory
    >[0] & { error_kind?: string };
    assert.equal(cut.final_answer, null);
    assert.equal(cut.error_kind, 'truncated');
    assert.equal(summarizeTrajectory(cut).outcome, 'errored');
    const scored = await scoreTrajectoriesFile(file);
    assert.deepEqual(scored.records.find((r) => r.id === 'q2')!.answer, [], 'no answer flows into the metrics');
    // The server's context was read from /v1/models and every request fitted under it.
    const run = JSON.parse(readFileSync(path.join(out, 'run.json'), 'utf8'));
    assert.equal(run.config.max_model_len, 20_000);
    assert.deepEqual(server.refused, []);
    cutting = false;
    const second = await runCollection({ ...base, resume: true });
    assert.equal(second.total, 1, 'only the cut one is retried');
    assert.equal(second.errors, 0);
  });

  it('runs the embedded keyword agent offline with real ranks', async () => {
    const questions = path.join(tmp(), 'q.jsonl');
    writeQuestions(questions, 6);
    const summary = await runCollection({
      questions,
      ocr: OCR,
      outDir: path.join(tmp(), 'kw'),
      agent: 'keyword',
      samples: 2,
      samplingPreset: 'high_temp',
    });
    assert.equal(summary.done, 12);
    const recs = records(summary.file) as unknown as Array<{
      iterations: Array<{ action: string; query: string | null; results: unknown[] | null }>;
      model: string;
    }>;
    assert.ok(recs.every((r) => r.model === 'keyword-agent'));
    assert.ok(recs.every((r) => r.iterations.some((i) => i.action === 'search' && i.query)));
    assert.ok(summary.gtFound > 0, 'the keyword agent finds some ground-truth pages');
  });

  const soakTitle =
    'soak: 1,000 questions, 20% injected faults, concurrency 16, SIGKILL mid-run, resume: ' +
    'exactly one final record each';
  it(soakTitle, async function () {
    const cli = path.join(ROOT, 'dist', 'cli.js');
    if (!existsSync(cli)) {
      console.log('      skipped: dist/cli.js is not built (npm run build)');
      this.skip();
    }
    const questions = path.join(tmp(), 'q.jsonl');
    writeQuestions(questions, 1000);
    let n = 0;
    // Past its 1,500th request the server stops answering until the kill, so the kill comes mid-run
    // (with a few hundred records on disk) however fast or slow this machine is.
    let holding = true;
    // Deterministic faults: every 5th request fails one way or another.
    server = new FakeOpenAI((body) => {
      const k = n++;
      if (holding && k >= 1500) return { stallMs: 600_000 };
      if (k % 5 === 1) return { status: 500 };
      if (k % 5 === 3)
        return [
          { reset: true } as const,
          { status: 429, headers: { 'retry-after-ms': '20' } },
          { reply: { tool_calls: [{ name: 'search_documents', arguments: '{bad json' }] } },
        ][k % 3];
      return { ...agentScript(body), delayMs: 5 } as ReturnType<typeof agentScript>;
    });
    const url = await server.start();
    const out = path.join(tmp(), 'soak');
    const args = [
      cli,
      'collect',
      '--questions',
      questions,
      '--ocr',
      OCR,
      '--out',
      out,
      '--agent',
      'openai',
      '--base-url',
      url,
      '--model',
      'm',
      '--concurrency',
      '16',
      '--retry-base-ms',
      '10',
      '--retries',
      '3',
      '--json',
    ];
    const file = path.join(out, 'trajectories.jsonl');
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    // Kill it hard once a few hundred records are on disk.
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        const size = existsSync(file) ? readFileSync(file, 'utf8').split('\n').length : 0;
        if (size > 300) {
          clearInterval(timer);
          child.kill('SIGKILL');
          resolve();
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(timer);
        resolve();
      });
      child.on('error', reject);
    });
    await new Promise((r) => (child.exitCode !== null || child.signalCode ? r(undefined) : child.on('exit', r)));
    assert.equal(child.signalCode, 'SIGKILL', 'the run was killed mid-way');
    holding = false;
    const before = readFileSync(file, 'utf8');
    assert.ok(before.split('\n').filter(Boolean).length < 1000);
    // Resume until every question has a final record (errored ones are retried each time).
    for (let attempt = 0; attempt < 5; attempt++) {
      const resume = spawn(process.execPath, [...args, '--resume'], { stdio: ['ignore', 'ignore', 'pipe'] });
      await new Promise((r) => resume.on('exit', r));
      const finals = new Set(
        records(file)
          .filter(isFinal)
          .map((r) => r.question_id),
      );
      if (finals.size === 1000) break;
    }
    const all = records(file);
    const finals = all.filter(isFinal);
    const perQuestion = new Map<string, number>();
    for (const r of finals) perQuestion.set(r.question_id, (perQuestion.get(r.question_id) ?? 0) + 1);
    assert.equal(perQuestion.size, 1000, 'every question has a final record');
    assert.deepEqual(
      [...perQuestion.values()].filter((c) => c !== 1),
      [],
      'never two final records for one question',
    );
    // Every line of the file parses: the kill left no glued or broken lines behind.
    assert.equal(readFileSync(file, 'utf8').split('\n').filter(Boolean).length, all.length);
    console.log(
      `      soak: ${server.requests.length} requests, ${all.length - finals.length} errored records retried`,
    );
  });
});

describe('drag eval', function () {
  this.timeout(60_000);
  const tmp = useTempDir();
  it('--resume: a question retried after an error counts once, with its retried record', async () => {
    const questions = path.join(tmp(), 'q.jsonl');
    writeQuestions(questions, 4);
    let failing = true;
    const server = new FakeOpenAI((body) =>
      failing && String(body.messages[1].content).startsWith('Question 1 ')
        ? { status: 400, body: { error: { message: 'bad request' } } }
        : agentScript(body),
    );
    const url = await server.start();
    const out = path.join(tmp(), 'eval');
    const io = { stdout: () => undefined, stderr: () => undefined };
    const args = ['eval', '--questions', questions, '--ocr', OCR, '--out', out, '--base-url', url, '--model', 'm'];
    try {
      assert.equal(await runCli(args, io, new AbortController().signal), 0);
      const first = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8'));
      assert.equal(first.total_questions, 4);
      failing = false;
      assert.equal(await runCli([...args, '--resume'], io, new AbortController().signal), 0);
    } finally {
      await server.stop();
    }
    assert.equal(records(path.join(out, 'trajectories.jsonl')).length, 5, 'the errored record stays in the file');
    const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8'));
    assert.equal(summary.total_questions, 4);
    assert.equal(summary.avg_anls, 1, 'no empty answer from the errored attempt');
    const perQuestion = readFileSync(path.join(out, 'per_question.jsonl'), 'utf8').trim().split('\n');
    assert.deepEqual(perQuestion.map((l) => JSON.parse(l).id).sort(), ['q0', 'q1', 'q2', 'q3']);
    const q1 = perQuestion.map((l) => JSON.parse(l)).find((r) => r.id === 'q1');
    assert.deepEqual(q1.answer, ['x']);
    assert.equal(q1.error, null);

    // Per (question, sample): the last final record wins over a later errored one; with none final, the last.
    const all = readFileSync(path.join(out, 'trajectories.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const errored = all.find((r) => r.question_id === 'q1' && r.error);
    const retried = all.find((r) => r.question_id === 'q1' && !r.error);
    const mixed = path.join(tmp(), 'mixed.jsonl');
    const lines = [
      retried,
      errored,
      { ...errored, sample: 1, error: 'HTTP 500: first' },
      { ...errored, sample: 1, error: 'HTTP 500: second' },
    ];
    writeFileSync(mixed, lines.map((r) => `${JSON.stringify(r)}\n`).join(''));
    const scored = await scoreTrajectoriesFile(mixed);
    assert.deepEqual(
      scored.records.map((r) => [r.id, r.error]),
      [
        ['q1', null],
        ['q1', 'HTTP 500: second'],
      ],
    );
  });

  it('runs the agent over a question set and writes the metrics next to the trajectories', async () => {
    const answers: Record<string, [string, string, number, string]> = {
      'net property': ['property plant equipment net', '8,700', 3, 'ACME_2023_10K.pdf'],
      'purchases of property': ['purchases property plant equipment', '1,577', 2, 'ACME_2023_10K.pdf'],
      'Health Care': ['"health care" net sales', '8,400', 4, 'ACME_2023_10K.pdf'],
      'net income did Globex': ['globex net income quarter', '340.8 million', 1, 'GLOBEX_2022_EARNINGS.pdf'],
      'capital expenditures does Globex': [
        'capital expenditures outlook',
        '400 million',
        2,
        'GLOBEX_2022_EARNINGS.pdf',
      ],
    };
    const server = new FakeOpenAI((body) => {
      const q = String(body.messages[1].content);
      const [query, answer, page, file] = Object.entries(answers).find(([k]) => q.includes(k))![1];
      return body.messages.some((m) => m.role === 'tool') ? answerCall([answer], [{ file, page }]) : searchCall(query);
    });
    const url = await server.start();
    try {
      const out = path.join(tmp(), 'eval');
      let stderr = '';
      const code = await runCli(
        [
          'eval',
          '--questions',
          path.join(FIXTURES, 'workspace', 'questions.jsonl'),
          '--ocr',
          OCR,
          '--out',
          out,
          '--base-url',
          url,
          '--model',
          'm',
          '--sampling-config',
          'greedy',
        ],
        {
          stdout: () => undefined,
          stderr: (t) => {
            stderr += t;
          },
        },
        new AbortController().signal,
      );
      assert.equal(code, 0, stderr);
      const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8'));
      assert.equal(summary.total_questions, 5);
      assert.equal(summary.avg_anls, 1);
      assert.equal(summary.avg_page_f1, 1);
      assert.equal(summary.model, 'm');
      const perQuestion = readFileSync(path.join(out, 'per_question.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.ok(perQuestion.every((r) => r.searches.length === 1 && typeof r.searches[0].query === 'string'));
      assert.equal(server.requests[0].temperature, 0, 'greedy sampling is sent explicitly');
    } finally {
      await server.stop();
    }
  });
});
