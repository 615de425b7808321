import * as assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import * as path from 'node:path';
import { type AgentEnvironment, runAgent, TRUNCATED_ERROR } from '../../src/core/agent/agent';
import { CancelledError, OpenAIChatClient, retryAfterMs } from '../../src/core/agent/client';
import { checkEndpoint } from '../../src/core/agent/health';
import { resolveSampling, SAMPLING_PRESETS, THINKING_MAX_TOKENS } from '../../src/core/agent/sampling';
import { isFinal, MAX_ITERATIONS_ERROR } from '../../src/core/trajectories/summary';
import { FINAL_STEP_MESSAGE, SYSTEM_PROMPT } from '../../src/core/agent/prompts';
import { WhooshCompatibleEngine } from '../../src/core/search/engine';
import { buildIndex } from '../../src/core/search/index';
import { answerCall, FakeOpenAI, pngHeader, searchCall } from '../helpers/fakeOpenAI';
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
        return `data:image/png;base64,${pngHeader(560, 560 + page).toString('base64')}`;
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
    assert.match(user.content.find((p) => p.type === 'image_url')!.image_url!.url, /^data:image\/png;base64,/);
    assert.equal((search as { usage?: unknown }).usage !== undefined, true);
  });

  const malformedArgsTitle =
    'sends malformed tool-call arguments back as valid JSON, tells the model, and the next request passes';
  it(malformedArgsTitle, async () => {
    server = new FakeOpenAI((_b, n) =>
      n === 0
        ? { reply: { tool_calls: [{ name: 'search_documents', arguments: '{"query": "prop' }] } }
        : answerCall(['x']),
    );
    const record = await runAgent(client([await server.start()]), env, QUESTION, options);
    const bad = record.iterations[0] as { action: string; query: unknown; error?: string; raw_arguments?: string };
    assert.equal(bad.action, 'search');
    assert.equal(bad.query, null);
    assert.match(bad.error ?? '', /invalid search_documents arguments/);
    assert.equal(bad.raw_arguments, '{"query": "prop', 'what the model wrote is kept in the record');
    // vLLM json.loads every tool call in the history: the strict server accepted the next request.
    assert.deepEqual(server.refused, []);
    assert.equal(record.error, null);
    assert.deepEqual(record.final_answer, ['x']);
    const history = server.requests[1].messages;
    const assistant = history.find((m) => m.role === 'assistant')!;
    assert.equal(assistant.tool_calls![0].function.arguments, '{}');
    const tool = history.find((m) => m.role === 'tool') as { content: string };
    assert.match(tool.content, /^Error: your search_documents arguments were not valid JSON \(.+\)/);
    // No orphan tool message: the assistant's tool call precedes it.
    assert.deepEqual(history.map((m) => m.role).slice(-2), ['assistant', 'tool']);
    // A call that is valid JSON but lacks the query still gets the format hint.
    server.script = (_b, n) =>
      n === 2 ? { reply: { tool_calls: [{ name: 'search_documents', arguments: '{"q": 1}' }] } } : answerCall(['y']);
    await runAgent(client([server.url]), env, QUESTION, options);
    const told = server.requests[3].messages.find((m) => m.role === 'tool') as { content: string };
    assert.match(told.content, /^Error: Invalid search query format/);
  });

  it('keeps finish_reason from the server', async () => {
    server = new FakeOpenAI((_b, n) =>
      n === 0 ? searchCall('cash') : { reply: { content: n === 1 ? 'Answer: 8,700' : 'word '.repeat(400) } },
    );
    const c = client([await server.start()]);
    const ask = (max_tokens: number) =>
      c.complete({ model: 'test-model', messages: [{ role: 'user', content: 'q' }], max_tokens });
    assert.equal((await ask(100)).finish_reason, 'tool_calls');
    assert.equal((await ask(100)).finish_reason, 'stop');
    const cut = await ask(50);
    assert.equal(cut.finish_reason, 'length');
    assert.equal(cut.usage?.completion_tokens, 50);
  });

  it('does not take a reply cut at max_tokens for an answer: an error that --resume retries', async () => {
    server = new FakeOpenAI(() => ({
      reply: { reasoning_content: 'Let me look at the balance sheet. '.repeat(40), content: 'Answer: 8,700' },
    }));
    const record = await runAgent(client([await server.start()]), env, QUESTION, {
      ...options,
      sampling: resolveSampling('default', { max_tokens: 64 }),
    });
    assert.equal(server.requests[0].max_tokens, 64);
    assert.equal(record.final_answer, null, 'the partial reasoning is not recorded as the answer');
    assert.equal(record.success, false);
    assert.ok(record.error?.startsWith(TRUNCATED_ERROR), String(record.error));
    assert.equal(record.error_kind, 'truncated');
    assert.equal(isFinal(record), false, '--resume retries it');
    const step = record.iterations[0] as { answer: unknown; finish_reason?: string; error?: string };
    assert.equal(step.answer, null);
    assert.equal(step.finish_reason, 'length');
    assert.ok(step.error);
  });

  it("ends on a text reply with the answer read from the text (DRAG's evaluator)", async () => {
    server = new FakeOpenAI(() => ({ reply: { content: 'The net PP&E was reported.\nAnswer: 8,700' } }));
    const record = await runAgent(client([await server.start()]), env, QUESTION, options);
    assert.deepEqual(record.final_answer, ['8,700']);
    assert.equal(record.iterations[0].action, 'text_response');
    assert.equal(record.answer_from_text, true);
    assert.equal(server.requests.length, 1);
  });

  it('reads a text answer after the reasoning when the reply has only the closing </think>', async () => {
    server = new FakeOpenAI(() => ({
      reply: { content: 'I need the answer for net PP&E in 2023.\n</think>\n\nAnswer: 8,700' },
    }));
    const record = await runAgent(client([await server.start()]), env, QUESTION, options);
    assert.deepEqual(record.final_answer, ['8,700']);
    assert.equal(record.iterations[0].reasoning, 'I need the answer for net PP&E in 2023.');
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
        [{ status: 500 }, { reset: true } as const, { stallMs: 600_000 }, searchCall('balance sheet')][n] ??
        answerCall(['8,700']),
    );
    // The stalled reply never comes, so only the timeout ends that attempt; the timeout is the time
    // every other request gets too, so it is generous enough for a busy machine's round trip.
    const record = await runAgent(client([await server.start()], { timeoutMs: 1500 }), env, QUESTION, options);
    assert.equal(record.error, null);
    assert.equal((record.iterations[0] as { attempts?: number }).attempts, 4);
    assert.equal(record.iterations[0].query, 'balance sheet');
  });

  it("reports vLLM's own reason for a 400 in the error shape vLLM has used (top-level message)", async () => {
    const message = 'Invalid value for "top_p": must be in (0, 1]';
    server = new FakeOpenAI(() => ({
      status: 400,
      body: { object: 'error', message, type: 'BadRequestError', param: null, code: 400 },
    }));
    const record = await runAgent(client([await server.start()]), env, QUESTION, options);
    assert.equal(record.error, `HTTP 400: 400 ${message}`);
    assert.doesNotMatch(record.error ?? '', /no body/);
  });

  it('captions each image in the text next to it, "Image k: File …, Page N"', async () => {
    server = new FakeOpenAI((_b, n) =>
      n === 0 ? searchCall('property plant equipment') : n === 1 ? searchCall('net sales') : answerCall(['x']),
    );
    await runAgent(client([await server.start()]), env, QUESTION, options);
    const parts = server.requests[2].messages
      .filter((m) => m.role === 'user' && Array.isArray(m.content))
      .flatMap((m) => m.content as Array<{ type: string; text?: string }>);
    const images = parts.flatMap((p, i) => (p.type === 'image_url' ? [i] : []));
    const hits = [...engine.search('property plant equipment', 3), ...engine.search('net sales', 3)];
    assert.equal(images.length, hits.length);
    assert.equal(hits.length, 5);
    images.forEach((at, k) =>
      assert.equal(parts[at - 1].text, `\nImage ${k + 1}: File ${hits[k].file}, Page ${hits[k].page_number}`),
    );
  });

  it("reads the server's max_model_len from /v1/models", async () => {
    server = new FakeOpenAI(() => answerCall(['x']), { maxModelLen: 20_000 });
    const c = client([await server.start()]);
    assert.equal(await c.maxModelLen('test-model'), 20_000);
    assert.equal(await c.maxModelLen('another-model'), null);
  });

  it("fits every request under the server's context: older images become notes, max_tokens shrinks", async () => {
    // 896×896-pixel pages: 1,026 tokens each; three per search; 8,192 tokens of context.
    const big: AgentEnvironment = {
      ...env,
      pageImage: async () => `data:image/png;base64,${pngHeader(896, 896).toString('base64')}`,
    };
    const queries = ['net sales', 'property plant equipment', 'net sales', 'net sales'];
    const pages = queries.reduce((n, q) => n + engine.search(q, 3).length, 0);
    assert.equal(pages, 11);
    server = new FakeOpenAI((_b, n) => (n < queries.length ? searchCall(queries[n]) : answerCall(['8,700'])), {
      maxModelLen: 8192,
    });
    const c = client([await server.start()]);
    const record = await runAgent(c, big, QUESTION, {
      ...options,
      maxIterations: 6,
      maxModelLen: await c.maxModelLen('test-model'),
    });
    assert.deepEqual(
      server.refused.map((r) => r.message),
      [],
    );
    assert.equal(record.error, null);
    assert.deepEqual(record.final_answer, ['8,700']);
    const last = server.requests[server.requests.length - 1];
    const parts = last.messages.flatMap((m) =>
      Array.isArray(m.content) ? (m.content as Array<{ type: string; text?: string }>) : [],
    );
    const shown = parts.filter((p) => p.type === 'image_url').length;
    assert.ok(shown >= 1 && shown < 6, `${shown} images in the last request`);
    assert.equal(parts.filter((p) => /its image is no longer shown/.test(p.text ?? '')).length, pages - shown);
    assert.ok(last.max_tokens! < 4096 && last.max_tokens! >= 2048, `max_tokens ${last.max_tokens}`);
    // The newest pages keep their images: the last caption names the last search's last page.
    const newest = engine.search(queries[3], 3)[2];
    const captions = parts.filter((p) => /^\nImage \d+:/.test(p.text ?? ''));
    assert.equal(
      captions[captions.length - 1].text,
      `\nImage ${shown}: File ${newest.file}, Page ${newest.page_number}`,
    );
  });

  it('keeps only the newest --keep-images page images', async () => {
    server = new FakeOpenAI((_b, n) =>
      n === 0 ? searchCall('property plant equipment') : n === 1 ? searchCall('net sales') : answerCall(['x']),
    );
    await runAgent(client([await server.start()]), env, QUESTION, { ...options, keepImages: 2 });
    const parts = server.requests[2].messages.flatMap((m) =>
      Array.isArray(m.content) ? (m.content as Array<{ type: string; text?: string }>) : [],
    );
    assert.equal(parts.filter((p) => p.type === 'image_url').length, 2);
    assert.equal(parts.filter((p) => /its image is no longer shown/.test(p.text ?? '')).length, 3);
  });

  it('retries a request refused for its length once, smaller, and it passes', async () => {
    const big: AgentEnvironment = {
      ...env,
      pageImage: async () => `data:image/png;base64,${pngHeader(896, 896).toString('base64')}`,
    };
    server = new FakeOpenAI((_b, n) => (n === 0 ? searchCall('property plant equipment') : answerCall(['8,700'])), {
      maxModelLen: 6000,
    });
    // The agent believes in a larger context than the server has (a stale --max-model-len).
    const record = await runAgent(client([await server.start()]), big, QUESTION, { ...options, maxModelLen: 32_768 });
    assert.equal(server.refused.length, 1);
    assert.match(server.refused[0].message, /maximum context length is 6000 tokens/);
    assert.equal(record.error, null);
    assert.deepEqual(record.final_answer, ['8,700']);
    assert.equal(record.context_retries, 1);
    const retried = server.requests[server.requests.length - 1];
    assert.ok(retried.max_tokens! < 4096);
  });

  const contextLengthTitle =
    "ends with vLLM's context-length reason when even the smaller request does not fit; --resume retries it";
  it(contextLengthTitle, async () => {
    server = new FakeOpenAI(() => answerCall(['x']), { maxModelLen: 300, errorShape: 'top-level' });
    const record = await runAgent(client([await server.start()]), env, QUESTION, options);
    assert.equal(server.requests.length, 2, 'one retry, not more');
    assert.match(record.error ?? '', /This model's maximum context length is 300 tokens/);
    assert.equal(record.error_kind, 'context_length');
    assert.equal(isFinal(record), false);
  });

  it('gives Thinking models a larger max_tokens by default, and an override wins', () => {
    assert.equal(resolveSampling('default', {}, 'Qwen/Qwen3-VL-8B-Thinking').max_tokens, THINKING_MAX_TOKENS);
    assert.equal(resolveSampling('default', { max_tokens: 8000 }, 'Qwen/Qwen3-VL-8B-Thinking').max_tokens, 8000);
    assert.equal(resolveSampling('default', {}, 'Qwen/Qwen2.5-VL-7B-Instruct').max_tokens, 4096);
  });

  it('honours Retry-After on 429', async () => {
    assert.equal(retryAfterMs({ 'retry-after': '2' }), 2000);
    assert.equal(retryAfterMs({ 'retry-after-ms': '150' }), 150);
    // The server's own clock: when it sent the 429 and when the retry arrived. Only a lower bound,
    // on a wait the client makes on purpose (a busy machine makes it longer, never shorter); the
    // backoff it would otherwise use is 15 ms (base 20 ms, jitter 0.5), far below.
    const retryAfter = 400;
    const times: number[] = [];
    server = new FakeOpenAI((_b, n) => {
      times.push(performance.now());
      return n === 0 ? { status: 429, headers: { 'retry-after-ms': String(retryAfter) } } : answerCall(['x']);
    });
    const record = await runAgent(client([await server.start()]), env, QUESTION, options);
    assert.deepEqual(record.final_answer, ['x']);
    assert.equal(server.requests.length, 2);
    // 1 ms of slack: Node's timers may fire up to a millisecond early.
    assert.ok(times[1] - times[0] >= retryAfter - 1, `retried after ${times[1] - times[0]} ms`);
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

  it('cancels, aborting the request in flight', async () => {
    // The server never answers in this test's lifetime; the run is cancelled once the request has
    // arrived, and must end by closing that connection, not by waiting for a reply or a timeout.
    const controller = new AbortController();
    let closed!: () => void;
    const connectionClosed = new Promise<void>((resolve) => (closed = resolve));
    server = new FakeOpenAI(() => {
      setImmediate(() => controller.abort());
      return { stallMs: 600_000 };
    });
    const url = await server.start();
    (server as unknown as { server: Server }).server.on('connection', (socket: Socket) =>
      socket.on('close', () => closed()),
    );
    await assert.rejects(
      runAgent(client([url], { timeoutMs: 600_000 }), env, QUESTION, options, controller.signal),
      CancelledError,
    );
    await connectionClosed;
    assert.equal(server.requests.length, 1, 'not retried after the cancel');
  });

  it('spreads requests over several base URLs', async () => {
    const a = new FakeOpenAI(() => searchCall('balance sheet'));
    const b = new FakeOpenAI(() => searchCall('cash flows'));
    const urls = [await a.start(), await b.start()];
    try {
      const record = await runAgent(client(urls), env, QUESTION, { ...options, maxIterations: 4 });
      assert.equal(record.error, MAX_ITERATIONS_ERROR);
      assert.equal(isFinal(record), true, 'running out of steps is final');
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

  it('reads tag-mode reasoning without an opening <think> (a Thinking template puts it in the prompt)', async () => {
    server = new FakeOpenAI(() => ({
      reply: { content: 'A query like <search>wrong</search> would miss.\n</think>\n\n<search>cash flows</search>' },
    }));
    const record = await runAgent(client([await server.start()]), env, QUESTION, { ...options, tagMode: true });
    assert.equal(record.iterations[0].reasoning, 'A query like <search>wrong</search> would miss.');
    assert.equal(record.iterations[0].query, 'cash flows', 'the query is read after the reasoning');
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
