import * as assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import * as path from 'node:path';
import { runCli } from '../../src/cli/main';
import { findWorkspaceRoot } from '../../src/core/workspace/cli';
import { answerCall, type ChatBody, FakeOpenAI, searchCall } from '../helpers/fakeOpenAI';
import { FIXTURES, useTempDir } from './helpers';

const OCR = path.join(FIXTURES, 'workspace', 'corpus', 'ocr_output.jsonl');

/** The environment variables the CLI reads for its model server; each test starts with none of them. */
const SERVER_ENV = [
  'VLLM_BASE_URL',
  'OPENAI_BASE_URL',
  'DRAG_API_KEY',
  'VLLM_API_KEY',
  'OPENAI_API_KEY',
  'GPU_KEY',
] as const;

/** A model that searches once, then answers. */
const script = (body: ChatBody) =>
  body.messages.some((m) => m.role === 'tool')
    ? answerCall(['x'], [{ file: 'ACME_2023_10K.pdf', page: 1 }])
    : searchCall('property plant equipment');

/** A fake server that also keeps each chat request's Authorization header (the key the CLI chose). */
async function serverWithKeys(): Promise<{ fake: FakeOpenAI; url: string; keys: string[] }> {
  const fake = new FakeOpenAI(script, { models: ['m', 'm2'] });
  const url = await fake.start();
  const keys: string[] = [];
  (fake as unknown as { server: Server }).server.on('request', (req) => {
    if (req.url?.endsWith('/chat/completions')) keys.push(String(req.headers.authorization));
  });
  return { fake, url, keys };
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(
    args,
    { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
    new AbortController().signal,
  );
  return { code, stdout, stderr };
}

describe('the CLI in a workspace (drag.config.json defaults, endpoints by name)', function () {
  this.timeout(180_000);
  const tmp = useTempDir();
  const saved: Partial<Record<(typeof SERVER_ENV)[number], string>> = {};
  const cwd = process.cwd();
  const servers: FakeOpenAI[] = [];
  beforeEach(() => {
    for (const k of SERVER_ENV) {
      saved[k] = process.env[k];
      delete process.env[k];
    }
  });
  afterEach(async () => {
    process.chdir(cwd);
    for (const k of SERVER_ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    for (const s of servers.splice(0)) await s.stop();
  });

  /** A workspace whose corpus, questions and cache live where only its config says. */
  function workspace(endpoints: Record<string, unknown> = {}): string {
    const ws = path.join(tmp(), 'ws');
    mkdirSync(path.join(ws, 'data'), { recursive: true });
    mkdirSync(path.join(ws, 'sets'), { recursive: true });
    copyFileSync(OCR, path.join(ws, 'data', 'pages.jsonl'));
    const questions = ['property plant equipment', 'net sales segment'].map((q, i) =>
      JSON.stringify({
        question_id: `q${i}`,
        question: `Question ${i} about ${q}?`,
        answers: ['x'],
        answer_locations: [{ document: 'ACME_2023_10K.pdf', page: 1 }],
      }),
    );
    writeFileSync(path.join(ws, 'sets', 'qs.jsonl'), `${questions.join('\n')}\n`);
    writeFileSync(
      path.join(ws, 'drag.config.json'),
      JSON.stringify(
        {
          questions: 'sets/qs.jsonl',
          corpus: { ocrFile: 'data/pages.jsonl', cacheDir: 'data/cache' },
          search: { topK: 2 },
          agent: { maxIterations: 4, samplingPreset: 'greedy' },
          endpoints,
        },
        null,
        2,
      ),
    );
    return ws;
  }

  const runConfig = (out: string) => JSON.parse(readFileSync(path.join(out, 'run.json'), 'utf8')).config;

  it('collect --endpoint NAME takes the endpoint and every default from drag.config.json', async () => {
    const gpu = await serverWithKeys();
    servers.push(gpu.fake);
    const ws = workspace({ gpu: { baseUrl: gpu.url, model: 'm', apiKeyEnv: 'GPU_KEY' } });
    process.env.GPU_KEY = 'key-from-gpu-env';
    process.env.OPENAI_API_KEY = 'not-this-one';
    const out = path.join(tmp(), 'run');
    const r = await cli(['collect', '--workspace', ws, '--endpoint', 'gpu', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const config = runConfig(out);
    assert.equal(config.agent, 'openai');
    assert.deepEqual(config.base_urls, [gpu.url]);
    assert.equal(config.model, 'm');
    assert.equal(config.questions, path.join(ws, 'sets', 'qs.jsonl'));
    assert.equal(config.ocr, path.join(ws, 'data', 'pages.jsonl'));
    assert.equal(config.top_k, 2);
    assert.equal(config.max_iterations, 4);
    assert.equal(config.sampling_preset, 'greedy');
    assert.ok(existsSync(path.join(ws, 'data', 'cache')), 'the search index went to corpus.cacheDir');
    assert.equal(gpu.fake.requests.length, 4, 'two questions, a search and an answer each');
    assert.ok(gpu.fake.requests.every((b) => b.model === 'm' && b.temperature === 0));
    assert.deepEqual(new Set(gpu.keys), new Set(['Bearer key-from-gpu-env']));
  });

  it('finds drag.config.json from a subfolder, and runs eval there too', async () => {
    const gpu = await serverWithKeys();
    servers.push(gpu.fake);
    const ws = workspace({ gpu: { baseUrl: gpu.url, model: 'm' } });
    const sub = path.join(ws, 'deep', 'er');
    mkdirSync(sub, { recursive: true });
    assert.equal(findWorkspaceRoot(sub), ws);
    process.chdir(sub);
    const r = await cli(['eval', '--endpoint', 'gpu', '--out', 'ev']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(readFileSync(path.join(sub, 'ev', 'summary.json'), 'utf8'));
    assert.equal(summary.total_questions, 2);
    assert.equal(summary.model, 'm');
  });

  it('finds the workspace of the job and host commands from a subfolder too', async () => {
    const ws = workspace({});
    const sub = path.join(ws, 'runs', 'deep');
    mkdirSync(sub, { recursive: true });
    process.chdir(sub);
    // The hosts come from the workspace's config, not from the folder the command runs in.
    const check = await cli(['hosts', 'check', 'nope']);
    assert.notEqual(check.code, 0);
    assert.match(
      check.stderr,
      new RegExp(`no host "nope" in ${path.join(ws, 'drag.config.json').replace(/[.\\/]/g, '\\$&')}`),
    );
  });

  it('honours OPENAI_BASE_URL and OPENAI_API_KEY when no flag or endpoint names a server', async () => {
    const env = await serverWithKeys();
    servers.push(env.fake);
    const ws = workspace();
    process.env.OPENAI_BASE_URL = env.url;
    process.env.OPENAI_API_KEY = 'key-from-openai-env';
    const out = path.join(tmp(), 'run');
    const r = await cli(['collect', '--workspace', ws, '--model', 'm', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(runConfig(out).agent, 'openai', 'a server in the environment makes the model the agent');
    assert.deepEqual(runConfig(out).base_urls, [env.url]);
    assert.equal(env.fake.requests.length, 4);
    assert.deepEqual(new Set(env.keys), new Set(['Bearer key-from-openai-env']));
  });

  it('explicit flags win over the endpoint, the config and the environment', async () => {
    const gpu = await serverWithKeys();
    const other = await serverWithKeys();
    servers.push(gpu.fake, other.fake);
    const ws = workspace({ gpu: { baseUrl: gpu.url, model: 'm', apiKeyEnv: 'GPU_KEY' } });
    process.env.GPU_KEY = 'key-from-gpu-env';
    process.env.OPENAI_BASE_URL = gpu.url;
    const questions = path.join(tmp(), 'one.jsonl');
    writeFileSync(questions, `${JSON.stringify({ question_id: 'only', question: 'Question about cash flows?' })}\n`);
    const out = path.join(tmp(), 'run');
    const r = await cli([
      'collect',
      '--workspace',
      ws,
      '--endpoint',
      'gpu',
      '--base-url',
      other.url,
      '--model',
      'm2',
      '--api-key',
      'key-from-flag',
      '--questions',
      questions,
      '--ocr',
      OCR,
      '--top-k',
      '5',
      '--max-iterations',
      '3',
      '--sampling-config',
      'high_temp',
      '--out',
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const config = runConfig(out);
    assert.deepEqual(config.base_urls, [other.url]);
    assert.equal(config.model, 'm2');
    assert.equal(config.questions, questions);
    assert.equal(config.ocr, OCR);
    assert.equal(config.top_k, 5);
    assert.equal(config.max_iterations, 3);
    assert.equal(config.sampling_preset, 'high_temp');
    assert.equal(gpu.fake.requests.length, 0, 'the endpoint named in the config was not used');
    assert.equal(other.fake.requests.length, 2);
    assert.ok(other.fake.requests.every((b) => b.model === 'm2'));
    assert.deepEqual(new Set(other.keys), new Set(['Bearer key-from-flag']));
    assert.ok(!existsSync(path.join(ws, 'data', 'cache')), 'a corpus given by flag keeps its own cache');
  });

  it('names the config file and field of an unknown endpoint, and of a missing file', async () => {
    const ws = workspace({ gpu: { baseUrl: 'http://127.0.0.1:9/v1' }, cpu: { baseUrl: 'http://127.0.0.1:9/v1' } });
    const r = await cli(['collect', '--workspace', ws, '--endpoint', 'nope', '--out', path.join(tmp(), 'x')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /drag\.config\.json: endpoints\.nope: no such endpoint \(known: gpu, cpu\)/);
    assert.ok(r.stderr.includes(path.join(ws, 'drag.config.json')), r.stderr);
    assert.ok(!existsSync(path.join(tmp(), 'x')), 'nothing was started');

    const outside = await cli([
      'collect',
      '--workspace',
      tmp(),
      '--endpoint',
      'gpu',
      '--questions',
      'q',
      '--ocr',
      OCR,
      '--out',
      path.join(tmp(), 'z'),
    ]);
    assert.equal(outside.code, 1);
    assert.match(outside.stderr, /endpoints\.gpu: no such endpoint \(known: none\)/);

    const config = JSON.parse(readFileSync(path.join(ws, 'drag.config.json'), 'utf8'));
    writeFileSync(path.join(ws, 'drag.config.json'), JSON.stringify({ ...config, questions: 'sets/gone.jsonl' }));
    const missing = await cli(['collect', '--workspace', ws, '--out', path.join(tmp(), 'y')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /drag\.config\.json: questions: no such file: .*gone\.jsonl/);
  });

  it('search and index build read the OCR file, cache and top-k from the workspace', async () => {
    const ws = workspace();
    const built = await cli(['index', 'build', '--workspace', ws, '--json']);
    assert.equal(built.code, 0, built.stderr);
    assert.equal(JSON.parse(built.stdout).ocr, path.join(ws, 'data', 'pages.jsonl'));
    assert.ok(JSON.parse(built.stdout).cacheFile.startsWith(path.join(ws, 'data', 'cache')));
    process.chdir(path.join(ws, 'sets'));
    const found = await cli(['search', '--json', '-q', 'net']);
    assert.equal(found.code, 0, found.stderr);
    assert.equal(JSON.parse(found.stdout).results.length, 2, 'search.topK of the config');
    const one = await cli(['search', '--json', '--top-k', '1', '-q', 'net']);
    assert.equal(JSON.parse(one.stdout).results.length, 1, 'the flag wins');
  });

  it('corpus build takes the PDF folder and the OCR file from the workspace', async () => {
    const ws = tmp();
    mkdirSync(path.join(ws, 'corpus', 'pdfs'), { recursive: true });
    for (const pdf of ['ACME_2023_10K.pdf', 'GLOBEX_2022_EARNINGS.pdf'])
      copyFileSync(path.join(FIXTURES, 'workspace', 'corpus', 'pdfs', pdf), path.join(ws, 'corpus', 'pdfs', pdf));
    writeFileSync(path.join(ws, 'drag.config.json'), JSON.stringify({ corpus: { ocrFile: 'corpus/pages.jsonl' } }));
    const r = await cli(['corpus', 'build', '--workspace', ws]);
    assert.equal(r.code, 0, r.stderr);
    const pages = readFileSync(path.join(ws, 'corpus', 'pages.jsonl'), 'utf8')
      .trim()
      .split('\n');
    assert.ok(pages.length >= 2, `${pages.length} pages`);
    assert.match(pages[0], /ACME_2023_10K\.pdf|GLOBEX_2022_EARNINGS\.pdf/);
  });

  it('warns about a broken drag.config.json (file, line, field) and still runs on explicit flags', async () => {
    const ws = path.join(tmp(), 'broken');
    mkdirSync(ws);
    writeFileSync(path.join(ws, 'drag.config.json'), '{\n  "search": {\n    "topK": "two"\n  }\n}\n');
    const r = await cli(['search', '--workspace', ws, '--ocr', OCR, '--json', '-q', 'net']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /drag\.config\.json:3: search\.topK: /);
    assert.equal(JSON.parse(r.stdout).results.length, 3, 'the built-in default');
    const noOcr = await cli(['search', '--workspace', ws, '-q', 'net']);
    assert.equal(noOcr.code, 1);
    assert.match(noOcr.stderr, /corpus\.ocrFile \(default corpus\/ocr_output\.jsonl\): no such file/);
  });
});
