import { answerLocations, isGroundTruthPage, type Location } from '../trajectories/groundTruth';
import { rankScore } from '../trajectories/rankScore';
import { MAX_ITERATIONS_ERROR } from '../trajectories/summary';
import type { Iteration, Trajectory } from '../schema/trajectory';
import { DEFAULT_KEEP_IMAGES, estimatePromptTokens, fitMaxTokens, minCompletionTokens } from './budget';
import {
  CancelledError,
  type ChatClient,
  ChatError,
  type ChatMessage,
  type ChatReply,
  type ChatRequest,
  type ContentPart,
} from './client';
import { FINAL_STEP_MESSAGE, SYSTEM_PROMPT, TAG_MODE_PROMPT, TOOLS } from './prompts';
import type { Sampling } from './sampling';
import { afterThinking, extractThinking } from './thinking';

/** A search result as the agent logs it. */
export interface AgentHit {
  file: string;
  page_number: number;
  total_pages: number;
  rank: number;
}

/** What the agent acts on: the search engine, and (optionally) page images for the model. */
export interface AgentEnvironment {
  search(query: string, topK: number): AgentHit[];
  /** A data URL of the page image, or null when there is none (no PDF, render failed). */
  pageImage?(file: string, page: number): Promise<string | null>;
}

export interface AgentQuestion {
  id: string;
  question: string;
  ground_truth: { answers?: unknown; answer_locations?: unknown; category?: string | null } | null;
}

export interface AgentOptions {
  model: string;
  sampling: Sampling | null;
  samplingName?: string;
  maxIterations: number;
  topK: number;
  tagMode?: boolean;
  runId?: string;
  sample?: number;
  /** Trajectory id; default DRAG's `traj_{question_id}`. */
  id?: string;
  /** Replaces the built-in system prompt (src/core/agent/prompts.ts). */
  systemPrompt?: string;
  /**
   * The server's context length (vLLM's `max_model_len`): requests are fitted under it (older images
   * dropped, `max_tokens` sized). Null or absent: unknown, `max_tokens` is sent as configured.
   */
  maxModelLen?: number | null;
  /**
   * Page images kept in the conversation, the newest; older ones become a text note. Default
   * {@link DEFAULT_KEEP_IMAGES}.
   */
  keepImages?: number;
}

type IterationRecord = Iteration & {
  turn: number;
  latency_ms?: number;
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  images?: Array<{ file: string; page: number }>;
  error?: string;
  attempts?: number;
  /** Tool-call arguments that were not valid JSON, as the model wrote them. */
  raw_arguments?: string;
  finish_reason?: string | null;
};

function parseJson(text: string): { ok: true; value: Record<string, unknown> } | { ok: false; error: string } {
  try {
    const v = JSON.parse(text || '{}');
    if (v && typeof v === 'object' && !Array.isArray(v)) return { ok: true, value: v as Record<string, unknown> };
    return { ok: false, error: 'arguments are not a JSON object' };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/**
 * An answer given as plain text, read the way DRAG's evaluator reads it: a JSON object with "answer",
 * an "Answer:" line, or the whole text.
 */
export function answerFromText(text: string): { answer: string[]; citations: unknown[] } {
  const m = /\{[\s\S]*"answer"[\s\S]*\}/.exec(text);
  if (m) {
    try {
      const v = JSON.parse(m[0]) as { answer?: unknown; citations?: unknown };
      const answer = Array.isArray(v.answer) ? v.answer.map(String) : typeof v.answer === 'string' ? [v.answer] : [];
      return { answer, citations: Array.isArray(v.citations) ? v.citations : [] };
    } catch {
      // fall through
    }
  }
  const line = /(?:answer|Answer|ANSWER)[:\s]+(.*)/.exec(text);
  if (line && line[1].trim()) return { answer: [line[1].trim()], citations: [] };
  return { answer: text.trim() ? [text.trim()] : [], citations: [] };
}

/** The `error` of a run whose last reply was cut by `max_tokens`: it is not an answer, and `--resume` retries it. */
export const TRUNCATED_ERROR = 'the reply was cut at max_tokens (finish_reason "length")';

/**
 * One question through the agent loop: the same code collects trajectories and evaluates models, with
 * the original DRAG collector's loop and these fixes: every tool call of a reply is executed and logged
 * as its own iteration (`turn` is the model turn); bad arguments become a failed step and a tool error
 * the model sees; a text reply ends the run with the answer read from the text, as DRAG's evaluator
 * does; the last turn forces provide_answer. A reply cut by `max_tokens` ends the run with
 * {@link TRUNCATED_ERROR}, never as an answer; a request longer than the server's context is retried
 * once, smaller, and otherwise ends the run with the server's reason (`error_kind` "context_length").
 */
export async function runAgent(
  client: ChatClient,
  env: AgentEnvironment,
  q: AgentQuestion,
  options: AgentOptions,
  signal?: AbortSignal,
): Promise<Trajectory & Record<string, unknown>> {
  const iterations: IterationRecord[] = [];
  const record: Trajectory & Record<string, unknown> = {
    id: options.id ?? `traj_${q.id}`,
    question_id: q.id,
    question: q.question,
    ground_truth: (q.ground_truth ?? {
      answers: null,
      answer_locations: null,
      category: null,
    }) as Trajectory['ground_truth'],
    iterations,
    final_answer: null,
    final_citations: null,
    success: false,
    gt_ever_found: false,
    first_gt_iteration: null,
    best_gt_rank: null,
    best_rank_score: null,
    total_iterations: 0,
    total_searches: 0,
    sampling_config: options.sampling ? { ...options.sampling } : null,
    model: options.model,
    timestamp: new Date().toISOString(),
    error: null,
    run_id: options.runId ?? null,
    sample: options.sample ?? 0,
    sampling_preset: options.samplingName ?? null,
    agent_mode: options.tagMode ? 'tag' : 'tool',
  };
  const run: AgentRun = {
    client,
    env,
    q,
    options,
    gt: answerLocations(q.ground_truth?.answer_locations),
    iterations,
    record,
    signal,
  };
  const started = performance.now();
  try {
    if (options.tagMode) await tagLoop(run);
    else await toolLoop(run);
  } catch (err) {
    if (err instanceof CancelledError) throw err;
    record.error = (err as Error).message;
    if (err instanceof ChatError && err.contextLength) record.error_kind = 'context_length';
  }
  record.elapsed_ms = Math.round(performance.now() - started);
  finish(record, iterations);
  return record;
}

/** Everything one run of the agent works with, passed to each loop and step. */
interface AgentRun {
  client: ChatClient;
  env: AgentEnvironment;
  q: AgentQuestion;
  options: AgentOptions;
  /** The question's ground-truth pages. */
  gt: Location[];
  iterations: IterationRecord[];
  record: Record<string, unknown>;
  signal?: AbortSignal;
}

/** A page shown to the model: its image with a caption beside it, or (once older than the newest K) a text note. */
interface PagePart {
  type: 'page';
  file: string;
  page: number;
  url: string;
}

/** The conversation as the agent keeps it; {@link renderHistory} turns it into what is sent. */
type HistoryMessage =
  | Exclude<ChatMessage, { role: 'system' | 'user' }>
  | { role: 'system' | 'user'; content: string | Array<ContentPart | PagePart> };

/**
 * The messages to send: the newest `keep` page images stay, each captioned "Image k: File …, Page N"
 * in the text right before it (k counts the images in this request), so a chat template that moves
 * all images to the front of the prompt (vLLM with Qwen2.5-VL's text-only tool template) still
 * leaves each image named; older pages become a line of text.
 */
function renderHistory(history: readonly HistoryMessage[], keep: number): ChatMessage[] {
  let pages = 0;
  for (const m of history) if (Array.isArray(m.content)) for (const p of m.content) if (p.type === 'page') pages++;
  let drop = Math.max(0, pages - keep);
  let k = 0;
  return history.map((m): ChatMessage => {
    if (m.role === 'assistant' || m.role === 'tool' || !Array.isArray(m.content)) return m as ChatMessage;
    const parts: ContentPart[] = [];
    for (const p of m.content) {
      if (p.type !== 'page') parts.push(p);
      else if (drop > 0) {
        drop--;
        parts.push({
          type: 'text',
          text: `\nFile: ${p.file}, Page: ${p.page} (its image is no longer shown, to save context)`,
        });
      } else {
        k++;
        parts.push({ type: 'text', text: `\nImage ${k}: File ${p.file}, Page ${p.page}` });
        parts.push({ type: 'image_url', image_url: { url: p.url, detail: 'high' } });
      }
    }
    return { role: m.role, content: parts };
  });
}

function sampleParams(options: AgentOptions) {
  const s = options.sampling;
  if (!s) return {};
  return {
    temperature: s.temperature,
    top_p: s.top_p,
    max_tokens: s.max_tokens,
    ...(s.repetition_penalty !== 1 ? { repetition_penalty: s.repetition_penalty } : {}),
  };
}

/**
 * One model turn, fitted to the server's context: when it is known, the oldest images are dropped
 * until half the configured `max_tokens` fits beside the (over-)estimated prompt, and `max_tokens`
 * is what is left. A refusal for length (the server counted more than the estimate) is retried once
 * with half the images and the budget the refusal implies.
 */
async function ask(
  run: AgentRun,
  history: readonly HistoryMessage[],
  fields: Pick<ChatRequest, 'tools' | 'tool_choice'>,
  extra: ChatMessage[] = [],
): Promise<ChatReply> {
  const { options } = run;
  let budget = options.sampling?.max_tokens ?? null;
  let keep = options.keepImages ?? DEFAULT_KEEP_IMAGES;
  let maxModelLen = options.maxModelLen ?? null;
  // Tokens the server counted beyond the estimate, learnt from a refusal; the last fitted estimate.
  let correction = 0;
  let estimated = 0;
  for (let attempt = 1; ; attempt++) {
    const build = (): ChatRequest => ({
      model: options.model,
      messages: [...renderHistory(history, keep), ...extra],
      ...fields,
      ...sampleParams(options),
      ...(budget !== null ? { max_tokens: budget } : {}),
    });
    let request = build();
    if (maxModelLen !== null && budget !== null) {
      let prompt = estimatePromptTokens(request) + correction;
      while (keep > 0 && prompt + minCompletionTokens(budget) > maxModelLen) {
        keep--;
        request = build();
        prompt = estimatePromptTokens(request) + correction;
      }
      request.max_tokens = fitMaxTokens(budget, prompt, maxModelLen);
      estimated = prompt;
    }
    try {
      const reply = await run.client.complete(request, run.signal);
      if (attempt > 1) run.record.context_retries = ((run.record.context_retries as number | undefined) ?? 0) + 1;
      return reply;
    } catch (err) {
      if (!(err instanceof ChatError) || !err.contextLength || attempt > 1) throw err;
      // The server counted more than the estimate: charge the difference on the retry.
      if (err.inputTokens !== null && estimated > 0) correction = Math.max(0, err.inputTokens - estimated);
      maxModelLen = err.maxModelLen ?? maxModelLen;
      keep = Math.floor(keep / 2);
      if (budget !== null && (maxModelLen === null || err.inputTokens === null))
        budget = Math.max(1, Math.floor(budget / 2));
    }
  }
}

/** The fields of a step that neither searched nor answered. */
const EMPTY_STEP = {
  query: null,
  results: null,
  gt_found: false,
  gt_rank: null,
  rank_score: null,
  answer: null,
  citations: null,
};

/** What every iteration of a model turn logs about the turn. */
interface TurnMeta {
  turn: number;
  latency_ms: number;
  usage: ChatReply['usage'];
  attempts: number;
  finish_reason: string | null;
}

const turnMeta = (turn: number, reply: ChatReply): TurnMeta => ({
  turn,
  latency_ms: Math.round(reply.latency_ms),
  usage: reply.usage,
  attempts: reply.attempts,
  finish_reason: reply.finish_reason,
});

/** Ends the run on a reply cut by `max_tokens`: a failed step, and an error `--resume` retries. */
function truncated(run: AgentRun, reply: ChatReply, reasoning: string | null, meta: TurnMeta): void {
  const error =
    `${TRUNCATED_ERROR} after ${reply.usage?.completion_tokens ?? '?'} tokens; ` +
    "raise --max-tokens (and the server's --max-model-len) and --resume";
  run.iterations.push({
    step: run.iterations.length + 1,
    reasoning,
    action: 'text_response',
    ...EMPTY_STEP,
    raw_response: reply.content ?? '',
    error,
    ...meta,
  });
  run.record.error = error;
  run.record.error_kind = 'truncated';
}

function searchStep(run: AgentRun, query: string) {
  const { topK } = run.options;
  const results = run.env
    .search(query, topK)
    .map((h, i) => ({ file: h.file, page_number: h.page_number, total_pages: h.total_pages, rank: i + 1 }));
  const hit = run.gt.length ? results.find((r) => isGroundTruthPage(r, run.gt)) : undefined;
  return {
    results,
    gt_found: !!hit,
    gt_rank: hit ? hit.rank : null,
    rank_score: hit ? rankScore(hit.rank, topK) : null,
  };
}

/** Whether `text` parses as JSON at all (vLLM json.loads every tool call's arguments in the history). */
function isJson(text: string): boolean {
  try {
    JSON.parse(text || '{}');
    return true;
  } catch {
    return false;
  }
}

async function toolLoop(run: AgentRun): Promise<void> {
  const { options, q, iterations, record, env } = run;
  const history: HistoryMessage[] = [
    { role: 'system', content: options.systemPrompt ?? SYSTEM_PROMPT },
    { role: 'user', content: q.question },
  ];
  for (let turn = 1; turn <= options.maxIterations; turn++) {
    const final = turn === options.maxIterations;
    const reply = await ask(
      run,
      history,
      {
        tools: TOOLS,
        tool_choice: final ? { type: 'function', function: { name: 'provide_answer' } } : 'auto',
      },
      final ? [{ role: 'user', content: FINAL_STEP_MESSAGE }] : [],
    );
    const reasoning = reply.reasoning_content?.trim() || extractThinking(reply.content);
    const meta = turnMeta(turn, reply);
    if (reply.finish_reason === 'length') return truncated(run, reply, reasoning, meta);
    if (reply.tool_calls.length === 0) {
      // DRAG's evaluator: a text reply ends the run; its answer is read from the text after any reasoning.
      const parsed = answerFromText(afterThinking(reply.content ?? ''));
      iterations.push({
        step: iterations.length + 1,
        reasoning,
        action: 'text_response',
        ...EMPTY_STEP,
        answer: parsed.answer,
        citations: parsed.citations as never,
        raw_response: reply.content ?? '',
        ...meta,
      });
      record.final_answer = parsed.answer;
      record.final_citations = parsed.citations;
      record.answer_from_text = true;
      return;
    }
    // Arguments that are not JSON go back as {}: the server parses every tool call in the history,
    // and one bad string would fail every later request. The tool message tells the model.
    history.push({
      role: 'assistant',
      content: reply.content,
      tool_calls: reply.tool_calls.map((c) =>
        isJson(c.function.arguments) ? c : { ...c, function: { ...c.function, arguments: '{}' } },
      ),
    });
    const pages: Array<ContentPart | PagePart> = [];
    let answered = false;
    for (const call of reply.tool_calls) {
      const base = { step: iterations.length + 1, reasoning, raw_response: reply.content ?? '', ...meta };
      const args = parseJson(call.function.arguments);
      const notJson = !isJson(call.function.arguments);
      const rejected = (action: IterationRecord['action'], error: string, told: string) => {
        iterations.push({
          ...base,
          action,
          ...EMPTY_STEP,
          error,
          ...(notJson ? { raw_arguments: call.function.arguments } : {}),
        });
        const content = notJson
          ? `Error: your ${call.function.name} arguments were not valid JSON (${args.ok ? '' : args.error}), ` +
            `so the call was not run. ${told}`
          : `Error: ${told}`;
        history.push({ role: 'tool', tool_call_id: call.id, content });
      };
      if (call.function.name === 'search_documents') {
        const query =
          args.ok && typeof args.value.query === 'string' && args.value.query.trim() ? args.value.query : null;
        if (!query) {
          const why = args.ok ? 'missing "query" string' : args.error;
          rejected(
            'search',
            `invalid search_documents arguments: ${why}`,
            notJson
              ? 'Call search_documents with {"query": "..."}.'
              : `Invalid search query format (${why}). Call search_documents with {"query": "..."}.`,
          );
          continue;
        }
        const s = searchStep(run, query);
        const it: IterationRecord = {
          ...base,
          action: 'search',
          query,
          ...s,
          answer: null,
          citations: null,
          images: [],
        };
        iterations.push(it);
        history.push({ role: 'tool', tool_call_id: call.id, content: `Found ${s.results.length} matching pages.` });
        if (s.results.length) {
          pages.push({
            type: 'text',
            text: pages.length ? `\nResults for "${query}":\n` : 'Here are the matching pages:\n',
          });
          for (const r of s.results) {
            const url = env.pageImage ? await env.pageImage(r.file, r.page_number).catch(() => null) : null;
            if (url) {
              pages.push({ type: 'page', file: r.file, page: r.page_number, url });
              it.images!.push({ file: r.file, page: r.page_number });
            } else pages.push({ type: 'text', text: `\nFile: ${r.file}, Page: ${r.page_number}` });
          }
        }
      } else if (call.function.name === 'provide_answer') {
        if (!args.ok || !Array.isArray(args.value.answer)) {
          const why = args.ok ? '"answer" must be a list of strings' : args.error;
          rejected(
            'answer',
            `invalid provide_answer arguments: ${why}`,
            notJson
              ? 'Call provide_answer with {"answer": [...], "citations": [...]}.'
              : `invalid provide_answer arguments (${why}).`,
          );
          continue;
        }
        const answer = (args.value.answer as unknown[]).map(String);
        const citations = Array.isArray(args.value.citations) ? args.value.citations : [];
        iterations.push({ ...base, action: 'answer', ...EMPTY_STEP, answer, citations: citations as never });
        record.final_answer = answer;
        record.final_citations = citations;
        record.success = true;
        answered = true;
      } else {
        rejected(
          'unknown',
          `unknown tool ${call.function.name}`,
          `unknown tool "${call.function.name}". Use search_documents or provide_answer.`,
        );
      }
    }
    if (answered) return;
    if (pages.length) history.push({ role: 'user', content: pages });
  }
  record.error = MAX_ITERATIONS_ERROR;
}

/**
 * DRAG's tag mode: <think> then <search>; ends at the first search that returns pages. The opening
 * <think> may be missing: a Thinking model's chat template puts it in the prompt (Qwen3-VL Thinking),
 * so the reply starts inside the reasoning; the query is read after the reasoning.
 */
async function tagLoop(run: AgentRun): Promise<void> {
  const { options, q, iterations, record } = run;
  const tagged = `<question>${q.question}</question>`;
  const history: HistoryMessage[] = [
    { role: 'system', content: TAG_MODE_PROMPT },
    { role: 'user', content: tagged },
  ];
  for (let turn = 1; turn <= options.maxIterations; turn++) {
    const reply = await ask(run, history, {});
    const text = reply.content ?? '';
    const think = extractThinking(text, { labels: false }) ?? reply.reasoning_content ?? null;
    const query = /<search>([\s\S]*?)<\/search>/.exec(afterThinking(text))?.[1]?.trim() || null;
    const meta = turnMeta(turn, reply);
    if (reply.finish_reason === 'length') return truncated(run, reply, think, meta);
    history.push({ role: 'assistant', content: text });
    if (!query) {
      iterations.push({
        step: iterations.length + 1,
        reasoning: think,
        action: 'text_response',
        ...EMPTY_STEP,
        raw_response: text,
        ...meta,
      });
      history.push({
        role: 'user',
        content: `Please answer in the format <think>...</think><search>...</search>.\n${tagged}`,
      });
      continue;
    }
    const s = searchStep(run, query);
    iterations.push({
      step: iterations.length + 1,
      reasoning: think,
      action: 'search',
      query,
      ...s,
      answer: null,
      citations: null,
      raw_response: text,
      ...meta,
    });
    if (s.results.length) return;
    history.push({ role: 'user', content: `The search "${query}" found no results. Try another query.\n${tagged}` });
  }
  record.error = MAX_ITERATIONS_ERROR;
}

/** Trajectory metrics as DRAG's collector computes them: searches, first and best ground-truth rank. */
function finish(record: Record<string, unknown>, iterations: IterationRecord[]): void {
  record.total_iterations = iterations.length;
  record.total_searches = iterations.filter((i) => i.action === 'search').length;
  let best: IterationRecord | null = null;
  for (const it of iterations) {
    if (it.gt_found && it.gt_rank != null) {
      if (record.first_gt_iteration === null) record.first_gt_iteration = it.step;
      if (!best || it.gt_rank < best.gt_rank!) best = it;
    }
  }
  record.gt_ever_found = best !== null;
  record.best_gt_rank = best?.gt_rank ?? null;
  record.best_rank_score = best?.rank_score ?? null;
}
