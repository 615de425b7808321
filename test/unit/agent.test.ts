import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { type AgentEnvironment, runAgent } from '../../src/core/agent/agent';
import { CancelledError, OpenAIChatClient, retryAfterMs } from '../../src/core/agent/client';
import { checkEndpoint } from '../../src/core/agent/health';
import { resolveSampling, SAMPLING_PRESETS } from '../../src/core/agent/sampling';
import { FINAL_STEP_MESSAGE, SYSTEM_PROMPT } from '../../src/core/agent/prompts';
import { WhooshCompatibleEngine } from '../../src/core/search/engine';
import { buildIndex } from '../../src/core/search/index';
import { answerCall, FakeOpenAI, searchCall } from '../helpers/fakeOpenAI';
import { FIXTURES } from './helpers';

const OCR = path.join(FIXTURES, 'workspace', 'corpus', 'ocr_output.jsonl');
const QUESTION = {
  id: 'acme_ppe',
  question: "What was ACME's net property, plant and equipment in 2023?",
  ground_truth: {
    answers: [['8,700']],
    answer_locations: [{ document: 'ACME_2023_10K.pdf', page: 3 }],
    category: null,
  },
};

describe('agent core against a scripted OpenAI-compatible server', function () {
  this.timeout(30_000);
  let engine: WhooshCompatibleEngine;
  let env: AgentEnvironment;
  let server: FakeOpenAI;
  const images: string[] = [];
  before(async () => {
    engine = new WhooshCompatibleEngine((await buildIndex(OCR)).index);
    env = {
      search: (q, k) => engine.search(q, k),
      pageImage: async (file, page) => {
        images.push(`${file}:${page}`);
        return `data:image/jpeg;base64,${Buffer.from(`${file}#${page}`).toString('base64')}`;
      },
    };
  });
  afterEach(async () => server?.stop());

  const client = (urls: string[], extra: Partial<ConstructorParameters<typeof OpenAIChatClient>[0]> = {}) =>
    new OpenAIChatClient({
      baseUrls: urls,
      apiKey: 'test',
      timeoutMs: 5000,
      retry: { baseDelayMs: 20, maxAttempts: 4 },
      random: () => 0.5,
      ...extra,
    });
  const options = { model: 'test-model', sampling: resolveSampling('default'), maxIterations: 5, topK: 3 };

  it("runs the happy path and writes DRAG's record with real ranks", async () => {
    server = new FakeOpenAI((_b, n) =>
      n === 0
        ? searchCall('property plant equipment')
        : answerCall(['8,700'], [{ file: 'ACME_2023_10K.pdf', page: 3 }]),
    );
    const record = await runAgent(client([await server.start()]), env, QUESTION, options);
    const expectedHits = engine.search('property plant equipment', 3);
    assert.equal(record.id, 'traj_acme_ppe');
    assert.equal(record.success, true);
    assert.deepEqual(record.final_answer, ['8,700']);
    assert.equal(record.iterations.length, 2);
    const [search, answer] = record.iterations;
    assert.equal(search.action, 'search');
    assert.deepEqual(
      search.results,
      expectedHits.map((h, i) => ({
        file: h.file,
        page_number: h.page_number,
        total_pages: h.total_pages,
        rank: i + 1,
      })),
    );
    const gtRank = expectedHits.findIndex((h) => h.file === 'ACME_2023_10K.pdf' && h.page_number === 3) + 1;
    assert.ok(gtRank >= 1);
    assert.equal(search.gt_rank, gtRank);
    assert.equal(search.rank_score, (3 - gtRank + 1) / 3);
    assert.equal(answer.action, 'answer');
    assert.equal(record.best_gt_rank, gtRank);
    assert.equal(record.total_searches, 1);
    assert.equal(record.error, null);
    // What the model saw: DRAG's prompt and tools, then the tool result and the page images.
    const [first, second] = server.requests;
    assert.equal((first.messages[0] as { content: string }).content, SYSTEM_PROMPT);
    assert.equal(first.tool_choice, 'auto');
    assert.equal(first.temperature, 0.7);
    assert.equal(first.repetition_penalty, undefined, 'repetition_penalty only when != 1');
    const tool = second.messages.find((m) => m.role === 'tool') as { content: string };
    assert.equal(tool.content, `Found ${expectedHits.length} matching pages.`);
    const user = second.messages[second.messages.length - 1] as {
      content: Array<{ type: string; text?: string; image_url?: { url: string } }>;
    };
    assert.equal(user.content[0].text, 'Here are the matching pages:\n');
    assert.equal(user.content.filter((p) => p.type === 'image_url').length, expectedHits.length);
    assert.match(user.content.find((p) => p.type === 'image_url')!.image_url!.url, /^data:image\/jpeg;base64,/);
    assert.equal((search as { usage?: unknown }).usage !== undefined, true);
  });

  it('records malformed tool-call arguments as a failed step and tells the model', async () => {
    server = new FakeOpenAI((_b, n) =>
      n === 0
        ? { reply: { tool_calls: [{ name: 'search_documents', arguments: '{"query": "prop' }] } }
        : answerCall(['x']),
    );
    const record = await runAgent(client([await server.start()]), env, QUESTION, options);
    const bad = record.iterations[0] as { action: string; query: unknown; error?: string };
    assert.equal(bad.action, 'search');
    assert.equal(bad.query, null);
    assert.match(bad.error ?? '', /invalid search_documents arguments/);
    const tool = server.requests[1].messages.find((m) => m.role === 'tool') as { content: string };
    assert.match(tool.content, /^Error: Invalid search query format/);
    // No orphan tool message: the assistant's tool call precedes it.
    const roles = server.requests[1].messages.map((m) => m.role);
    assert.deepEqual(roles.slice(-2), ['assistant', 'tool']);
  });

  it("ends on a text reply with the answer read from the text (DRAG's evaluator)", async () => {
    server = new FakeOpenAI(() => ({ reply: { content: 'The net PP&E was reported.\nAnswer: 8,700' } }));
    const record = await runAgent(client([await server.start()]), env, QUESTION, options);
    assert.deepEqual(record.final_answer, ['8,700']);
    assert.equal(record.iterations[0].action, 'text_response');
    assert.equal(record.answer_from_text, true);
    assert.equal(server.requests.length, 1);
  });

  it('extracts thinking from <think> blocks and from reasoning_content', async () => {
    server = new FakeOpenAI((_b, n) =>
      n === 0
        ? {
            reply: {
              content: '<think>Balance sheet first.</think>',
              tool_calls: [{ name: 'search_documents', arguments: '{"query":"balance sheet"}' }],
            },
          }
        : {
            reply: {
              reasoning_content: 'Now answer.',
              tool_calls: [{ name: 'provide_answer', arguments: '{"answer":["8,700"],"citations":[]}' }],
            },
          },
    );
    const record = await runAgent(client([await server.start()]), env, QUESTION, options);
    assert.equal(record.iterations[0].reasoning, 'Balance sheet first.');
    assert.equal(record.iterations[1].reasoning, 'Now answer.');
  });

  it('retries a 500, a reset connection and a stalled response, then succeeds', async () => {
    server = new FakeOpenAI(
      (_b, n) =>
        [{ status: 500 }, { reset: true } as const, { stallMs: 3000 }, searchCall('balance sheet')][n] ??
        answerCall(['8,700']),
    );
    const record = await runAgent(client([await server.start()], { timeoutMs: 400 }), env, QUESTION, options);
    assert.equal(record.error, null);
    assert.equal((record.iterations[0] as { attempts?: number }).attempts, 4);
    assert.equal(record.iterations[0].query, 'balance sheet');
  });

  it('honours Retry-After on 429', async () => {
    assert.equal(retryAfterMs({ 'retry-after': '2' }), 2000);
    assert.equal(retryAfterMs({ 'retry-after-ms': '150' }), 150);
    const times: number[] = [];
    server = new FakeOpenAI((_b, n) => {
      times.push(Date.now());
      return n === 0 ? { status: 429, headers: { 'retry-after-ms': '600' } } : answerCall(['x']);
    });
    await runAgent(client([await server.start()]), env, QUESTION, options);
    assert.ok(times[1] - times[0] >= 550, `waited ${times[1] - times[0]} ms`);
  });

  it('gives up after the retry budget and records the error, keeping the steps so far', async () => {
    server = new FakeOpenAI((_b, n) => (n === 0 ? searchCall('balance sheet') : { status: 503 }));
    const record = await runAgent(client([await server.start()]), env, QUESTION, options);
    assert.match(record.error ?? '', /HTTP 503/);
    assert.equal(record.iterations.length, 1);
    assert.equal(server.requests.length, 1 + 4);
  });

  it('forces provide_answer on the last step', async () => {
    server = new FakeOpenAI((b) =>
      typeof b.tool_choice === 'object' ? answerCall(['forced']) : searchCall('balance sheet'),
    );
    const record = await runAgent(client([await server.start()]), env, QUESTION, { ...options, maxIterations: 3 });
    assert.deepEqual(record.final_answer, ['forced']);
    const last = server.requests[2];
    assert.deepEqual(last.tool_choice, { type: 'function', function: { name: 'provide_answer' } });
    assert.equal((last.messages[last.messages.length - 1] as { content: string }).content, FINAL_STEP_MESSAGE);
    // The forcing message is transient: the next request would not carry it.
    assert.equal(
      server.requests[1].messages.some((m) => m.content === FINAL_STEP_MESSAGE),
      false,
    );
  });

  it('cancels within a second, aborting the request in flight', async () => {
    server = new FakeOpenAI(() => ({ stallMs: 10_000 }));
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 200);
    await assert.rejects(
      runAgent(client([await server.start()], { timeoutMs: 60_000 }), env, QUESTION, options, controller.signal),
      CancelledError,
    );
    assert.ok(Date.now() - started < 1200, `took ${Date.now() - started} ms`);
  });

  it('spreads requests over several base URLs', async () => {
    const a = new FakeOpenAI(() => searchCall('balance sheet'));
    const b = new FakeOpenAI(() => searchCall('cash flows'));
    const urls = [await a.start(), await b.start()];
    try {
      await runAgent(client(urls), env, QUESTION, { ...options, maxIterations: 4 });
      assert.equal(a.requests.length, 2);
      assert.equal(b.requests.length, 2);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it("runs DRAG's tag mode", async () => {
    server = new FakeOpenAI((_b, n) => ({
      reply: { content: n === 0 ? 'no tags here' : '<think>cash</think><search>cash flows</search>' },
    }));
    const record = await runAgent(client([await server.start()]), env, QUESTION, { ...options, tagMode: true });
    assert.deepEqual(
      record.iterations.map((i) => i.action),
      ['text_response', 'search'],
    );
    assert.equal(record.iterations[1].reasoning, 'cash');
    assert.equal(server.requests[0].tools, undefined);
  });

  it('keeps the presets frozen and applies overrides to a copy', () => {
    const s = resolveSampling('diverse', { temperature: 0.2 });
    assert.equal(s.temperature, 0.2);
    assert.equal(SAMPLING_PRESETS.diverse.temperature, 0.9);
    assert.throws(() => resolveSampling('hot'), /unknown sampling preset/);
  });
});

describe('endpoint health check', function () {
  this.timeout(20_000);
  let server: FakeOpenAI | undefined;
  afterEach(async () => server?.stop());

  it('says when the server is down', async () => {
    const r = await checkEndpoint('http://127.0.0.1:9/v1', 'k', 'm', 2000);
    assert.equal(r.ok, false);
    assert.match(r.problems[0], /cannot reach http:\/\/127\.0\.0\.1:9\/v1/);
  });

  it('says when the model is not served, and when tool calling is off', async () => {
    server = new FakeOpenAI(() => ({
      status: 400,
      body: {
        object: 'error',
        message: '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
        type: 'BadRequestError',
        code: 400,
      },
    }));
    const url = await server.start();
    const r = await checkEndpoint(url, 'k', 'Qwen/Qwen3-VL-8B-Thinking');
    assert.equal(r.ok, false);
    assert.deepEqual(r.models, ['test-model']);
    assert.match(r.problems[0], /model "Qwen\/Qwen3-VL-8B-Thinking" is not served .* it serves: test-model/);
    assert.match(r.problems[1], /tool calling is off .* --enable-auto-tool-choice --tool-call-parser hermes/);
  });

  it('is happy with a server that serves the model with tools', async () => {
    server = new FakeOpenAI(() => ({ reply: { content: 'pong' } }));
    const r = await checkEndpoint(await server.start(), 'k', 'test-model');
    assert.deepEqual(r, { ok: true, models: ['test-model'], problems: [] });
  });
});
