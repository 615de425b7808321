import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { PageImageCache } from '../corpus/pageCache';
import { PdfWorkerPool } from '../corpus/pool';
import { CorpusText } from '../corpus/text';
import type { LineError } from '../io/errors';
import { indexJsonl } from '../io/jsonl';
import { toJsonLine, writeJsonAtomic } from '../io/write';
import { openSearchEngine } from '../search/open';
import { isFinal } from '../trajectories/summary';
import { type AgentEnvironment, type AgentQuestion, runAgent } from './agent';
import { DEFAULT_KEEP_IMAGES } from './budget';
import { CancelledError, type ChatClient, OpenAIChatClient, type RetryPolicy } from './client';
import { KeywordAgentClient } from './keyword';
import { loadWriterModel } from './writer';
import { loadIdList, loadQuestionSet } from './questions';
import { resolveSampling, type Sampling } from './sampling';

export interface CollectOptions {
  questions: string;
  ocr: string;
  /** The run folder (trajectories.jsonl + run.json), or with `outFile` DRAG's single output file. */
  outDir: string;
  outFile?: string;
  agent: 'openai' | 'keyword' | 'writer';
  /** For agent 'writer': the model trained by `drag writer train`. */
  writerModel?: string;
  baseUrls?: string[];
  model?: string;
  apiKey?: string;
  concurrency?: number;
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  maxIterations?: number;
  topK?: number;
  samples?: number;
  samplingPreset?: string;
  samplingOverrides?: Partial<Sampling>;
  limit?: number;
  include?: string[];
  exclude?: string[];
  resume?: boolean;
  tagMode?: boolean;
  /** A file whose text replaces the built-in system prompt. */
  systemPromptFile?: string;
  pdfDir?: string;
  cacheDir?: string;
  maxPixels?: number;
  /** The server's context length when it does not say (vLLM reports it in /v1/models); it wins when given. */
  maxModelLen?: number;
  /** Page images kept in the conversation (the newest); default DEFAULT_KEEP_IMAGES. */
  keepImages?: number;
  signal?: AbortSignal;
  onEvent?: (event: CollectEvent) => void;
  /** For tests: a client to use instead of building one. */
  client?: ChatClient;
}

export type CollectEvent =
  | {
      type: 'start';
      runId: string;
      total: number;
      skipped: number;
      questions: number;
      samples: number;
      agent: string;
      model: string;
      file: string;
    }
  | {
      type: 'progress';
      done: number;
      total: number;
      gtFound: number;
      errors: number;
      perMinute: number;
      etaSeconds: number | null;
      last: { id: string; gtRank: number | null; error: string | null };
    }
  | {
      type: 'done';
      done: number;
      total: number;
      gtFound: number;
      errors: number;
      seconds: number;
      cancelled: boolean;
      file: string;
    };

export interface CollectSummary {
  runId: string;
  file: string;
  done: number;
  total: number;
  gtFound: number;
  errors: number;
  cancelled: boolean;
  problems: LineError[];
}

/**
 * Appends records in completion order, each durable (fsynced) before its promise resolves. Records
 * that arrive while a write is in flight are written together with one fsync (group commit), so
 * 32 concurrent workers do not queue behind 32 fsyncs.
 */
class Appender {
  private queue: Array<{ line: string; resolve: () => void; reject: (e: Error) => void }> = [];
  private writing = false;
  constructor(private readonly handle: fsp.FileHandle) {}

  append(record: unknown): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ line: toJsonLine(record), resolve, reject });
      if (!this.writing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.writing = true;
    while (this.queue.length) {
      const batch = this.queue.splice(0);
      try {
        await this.handle.write(batch.map((b) => b.line).join(''));
        await this.handle.sync();
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err as Error);
      }
    }
    this.writing = false;
  }
}

/** (question id, sample) pairs that already have a final record; trims a half-written last line. */
async function resumeState(file: string): Promise<Set<string>> {
  const done = new Set<string>();
  if (!existsSync(file)) return done;
  const index = await indexJsonl<string | null>(file, (v) => ({
    ok: true,
    summary:
      isFinal(v as { error?: unknown }) && v.question_id != null
        ? `${String(v.question_id)}\u0000${Number(v.sample ?? 0)}`
        : null,
  }));
  for (const key of index.summaries) if (key) done.add(key);
  const size = (await fsp.stat(file)).size;
  // A kill -9 mid-write leaves a partial last line: cut it, or the next append would glue onto it.
  if (index.indexedBytes < size) await fsp.truncate(file, index.indexedBytes);
  else if (size > 0) {
    const h = await fsp.open(file, 'r');
    const last = Buffer.alloc(1);
    await h.read(last, 0, 1, size - 1);
    await h.close();
    if (last[0] !== 0x0a) await fsp.appendFile(file, '\n');
  }
  return done;
}

/**
 * `drag collect`: runs the agent over a question set with bounded concurrency, appending each
 * trajectory (fsynced) as it completes. With `resume`, (question, sample) pairs that have a final
 * record are skipped and errored ones retried; a kill at any moment loses at most the trajectories
 * in flight.
 */
export async function runCollection(o: CollectOptions): Promise<CollectSummary> {
  // A missing, broken or outdated writer model is refused before anything is written.
  if (o.agent === 'writer' && !o.writerModel)
    throw new Error('--agent writer needs --writer-model <model.json> (drag writer train)');
  const writer = o.agent === 'writer' ? await loadWriterModel(o.writerModel!) : null;
  const file = o.outFile ?? path.join(o.outDir, 'trajectories.jsonl');
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const runId = `${new Date()
    .toISOString()
    .replace(/[-:.TZ]/g, '')
    .slice(0, 14)}-${randomBytes(3).toString('hex')}`;
  const { questions: all, errors: problems } = await loadQuestionSet(o.questions);
  let questions = all;
  for (const f of o.exclude ?? []) {
    const ids = await loadIdList(f);
    questions = questions.filter((q) => !ids.has(q.id));
  }
  if (o.include?.length) {
    const keep = new Set<string>();
    for (const f of o.include) for (const id of await loadIdList(f)) keep.add(id);
    questions = questions.filter((q) => keep.has(q.id));
  }
  if (o.limit !== undefined) questions = questions.slice(0, o.limit);
  const samples = o.samples ?? 1;
  const done = o.resume ? await resumeState(file) : new Set<string>();
  if (!o.resume && existsSync(file) && (await fsp.stat(file)).size > 0) {
    throw new Error(`${file} already has trajectories: pass --resume to continue it, or choose another --out`);
  }
  const tasks: Array<{ q: AgentQuestion; sample: number }> = [];
  for (const q of questions)
    for (let s = 0; s < samples; s++) if (!done.has(`${q.id}\u0000${s}`)) tasks.push({ q, sample: s });

  const opened = await openSearchEngine(o.ocr, { cacheDir: o.cacheDir, signal: o.signal });
  const engine = opened.engine;
  const systemPrompt = o.systemPromptFile ? await fsp.readFile(o.systemPromptFile, 'utf8') : undefined;
  const samplingName = o.samplingPreset ?? 'default';
  const model =
    o.agent === 'keyword'
      ? 'keyword-agent'
      : o.agent === 'writer'
        ? `query-writer:${path.basename(o.writerModel ?? 'model.json')}`
        : (o.model ?? 'Qwen/Qwen2.5-VL-3B-Instruct');
  const sampling = resolveSampling(samplingName, o.samplingOverrides, model);
  const text = o.agent !== 'openai' ? await CorpusText.open(o.ocr) : null;
  let shared: ChatClient | undefined;
  const clientFor = (sample: number): ChatClient => {
    if (o.client) return o.client;
    if (o.agent === 'keyword') return new KeywordAgentClient(engine, (f, p) => text!.get(f, p), sample);
    if (writer)
      return new KeywordAgentClient(
        engine,
        (f, p) => text!.get(f, p),
        sample,
        writer.scorer,
        writer.model.queryLength,
        'query writer (local)',
      );
    return (shared ??= new OpenAIChatClient({
      baseUrls: o.baseUrls?.length ? o.baseUrls : ['http://localhost:8001/v1'],
      apiKey: o.apiKey ?? 'abc123',
      timeoutMs: o.timeoutMs,
      retry: o.retry,
    }));
  };

  // The context every request is fitted under: given, or as the server reports it (once per run).
  const maxModelLen =
    o.agent === 'openai' ? (o.maxModelLen ?? (await clientFor(0).maxModelLen?.(model, o.signal)) ?? null) : null;
  const keepImages = o.keepImages ?? DEFAULT_KEEP_IMAGES;

  // Page images for a vision model: rendered once per (PDF hash, page, budget), sent as base64.
  let pool: PdfWorkerPool | null = null;
  const pdfDir = o.pdfDir ?? path.join(path.dirname(o.ocr), 'pdfs');
  const env: AgentEnvironment = { search: (query, k) => engine.search(query, k) };
  if (o.agent === 'openai' && existsSync(pdfDir)) {
    const cache = new PageImageCache(path.join(o.cacheDir ?? path.join(path.dirname(opened.cacheFile), '..'), 'pages'));
    pool = new PdfWorkerPool();
    const memo = new Map<string, Promise<string | null>>();
    env.pageImage = (f, page) => {
      const key = `${f}\u0000${page}`;
      let p = memo.get(key);
      if (!p) {
        const pdf = path.join(pdfDir, f);
        const options = { maxPixels: o.maxPixels ?? 1_003_520, format: 'jpeg' as const };
        p = existsSync(pdf)
          ? cache
              .get(pdf, page, options, () => pool!.render(pdf, page, options))
              .then(async (img) => `data:image/jpeg;base64,${(await fsp.readFile(img.file)).toString('base64')}`)
              .catch(() => null)
          : Promise.resolve(null);
        if (memo.size > 512) memo.clear();
        memo.set(key, p);
      }
      return p;
    };
  }

  const runJson = path.join(path.dirname(file), o.outFile ? `${path.basename(file, '.jsonl')}.run.json` : 'run.json');
  const config = {
    agent: o.agent,
    model,
    base_urls: o.agent === 'openai' ? (o.baseUrls ?? ['http://localhost:8001/v1']) : [],
    questions: path.resolve(o.questions),
    ocr: path.resolve(o.ocr),
    concurrency: o.concurrency ?? 8,
    max_iterations: o.maxIterations ?? 5,
    top_k: o.topK ?? 3,
    samples,
    sampling_preset: samplingName,
    sampling,
    max_model_len: maxModelLen,
    keep_images: keepImages,
    tag_mode: !!o.tagMode,
    limit: o.limit ?? null,
    resume: !!o.resume,
    system_prompt_file: o.systemPromptFile ? path.resolve(o.systemPromptFile) : null,
  };
  const started = Date.now();
  await writeJsonAtomic(runJson, {
    run_id: runId,
    status: 'running',
    started: new Date(started).toISOString(),
    config,
    counts: { total: tasks.length },
  });
  o.onEvent?.({
    type: 'start',
    runId,
    total: tasks.length,
    skipped: questions.length * samples - tasks.length,
    questions: questions.length,
    samples,
    agent: o.agent,
    model,
    file,
  });

  const handle = await fsp.open(file, 'a');
  const appender = new Appender(handle);
  let next = 0;
  let completed = 0;
  let gtFound = 0;
  let errors = 0;
  let cancelled = false;
  const worker = async () => {
    while (next < tasks.length) {
      if (o.signal?.aborted) {
        cancelled = true;
        return;
      }
      const { q, sample } = tasks[next++];
      let record;
      try {
        record = await runAgent(
          clientFor(sample),
          env,
          q,
          {
            model,
            sampling,
            samplingName,
            maxIterations: o.maxIterations ?? 5,
            topK: o.topK ?? 3,
            tagMode: o.tagMode,
            runId,
            sample,
            id: samples > 1 ? `traj_${q.id}_s${sample}` : `traj_${q.id}`,
            systemPrompt,
            maxModelLen,
            keepImages,
          },
          o.signal,
        );
      } catch (err) {
        if (err instanceof CancelledError) {
          cancelled = true;
          return;
        }
        throw err;
      }
      // The next question starts while this record is being fsynced (it counts as in flight until then).
      writes.push(
        appender.append(record).then(() => {
          completed++;
          if (record.gt_ever_found) gtFound++;
          if (!isFinal(record)) errors++;
          const elapsed = (Date.now() - started) / 1000;
          const perMinute = elapsed > 0 ? (completed / elapsed) * 60 : 0;
          o.onEvent?.({
            type: 'progress',
            done: completed,
            total: tasks.length,
            gtFound,
            errors,
            perMinute: Math.round(perMinute * 10) / 10,
            etaSeconds: perMinute > 0 ? Math.round(((tasks.length - completed) / perMinute) * 60) : null,
            last: { id: record.id, gtRank: record.best_gt_rank ?? null, error: record.error ?? null },
          });
        }),
      );
    }
  };
  const writes: Array<Promise<void>> = [];
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 8, tasks.length || 1)) }, worker));
    await Promise.all(writes);
  } finally {
    await handle.close();
    await pool?.close();
  }
  const seconds = (Date.now() - started) / 1000;
  await writeJsonAtomic(runJson, {
    run_id: runId,
    status: cancelled ? 'cancelled' : 'finished',
    started: new Date(started).toISOString(),
    finished: new Date().toISOString(),
    seconds,
    config,
    counts: { total: tasks.length, done: completed, gt_found: gtFound, errors },
    model,
  });
  o.onEvent?.({ type: 'done', done: completed, total: tasks.length, gtFound, errors, seconds, cancelled, file });
  return { runId, file, done: completed, total: tasks.length, gtFound, errors, cancelled, problems };
}
