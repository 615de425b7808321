import { answerLocations, isGroundTruthPage, type Location } from '../schema/question';
import { rankScore } from '../trajectories/rankScore';
import type { Iteration, Trajectory } from '../schema/trajectory';
import { type ChatClient, type ChatMessage, type ChatReply, type ContentPart, CancelledError } from './client';
import { FINAL_STEP_MESSAGE, SYSTEM_PROMPT, TAG_MODE_PROMPT, TOOLS } from './prompts';
import type { Sampling } from './sampling';
import { extractThinking } from './thinking';

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
}

type IterationRecord = Iteration & {
  turn: number;
  latency_ms?: number;
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  images?: Array<{ file: string; page: number }>;
  error?: string;
  attempts?: number;
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

/** DRAG's evaluator reading of an answer given as plain text (§7.1). */
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

/**
 * One question through the agent loop (DRAG-SPEC §3.3, with the fixes of §9.11-13): the same
 * code collects trajectories and evaluates models. Every tool call of a reply is executed and
 * logged as its own iteration (`turn` is the model turn); bad arguments become a failed step and
 * a tool error the model sees; a text reply ends the run with the answer read from the text, as
 * DRAG's evaluator does; the last turn forces provide_answer.
 */
export async function runAgent(
  client: ChatClient,
  env: AgentEnvironment,
  q: AgentQuestion,
  options: AgentOptions,
  signal?: AbortSignal,
): Promise<Trajectory & Record<string, unknown>> {
  const gt: Location[] = answerLocations(q.ground_truth?.answer_locations);
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
  const started = performance.now();
  try {
    if (options.tagMode) await tagLoop(client, env, q, options, gt, iterations, record, signal);
    else await toolLoop(client, env, q, options, gt, iterations, record, signal);
  } catch (err) {
    if (err instanceof CancelledError) throw err;
    record.error = (err as Error).message;
  }
  record.elapsed_ms = Math.round(performance.now() - started);
  finish(record, iterations);
  return record;
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

function searchStep(env: AgentEnvironment, query: string, options: AgentOptions, gt: Location[]) {
  const results = env
    .search(query, options.topK)
    .map((h, i) => ({ file: h.file, page_number: h.page_number, total_pages: h.total_pages, rank: i + 1 }));
  const hit = gt.length ? results.find((r) => isGroundTruthPage(r, gt)) : undefined;
  return {
    results,
    gt_found: !!hit,
    gt_rank: hit ? hit.rank : null,
    rank_score: hit ? rankScore(hit.rank, options.topK) : null,
  };
}

async function toolLoop(
  client: ChatClient,
  env: AgentEnvironment,
  q: AgentQuestion,
  options: AgentOptions,
  gt: Location[],
  iterations: IterationRecord[],
  record: Record<string, unknown>,
  signal?: AbortSignal,
): Promise<void> {
  const messages: ChatMessage[] = [
    { role: 'system', content: options.systemPrompt ?? SYSTEM_PROMPT },
    { role: 'user', content: q.question },
  ];
  for (let turn = 1; turn <= options.maxIterations; turn++) {
    const final = turn === options.maxIterations;
    const request = {
      model: options.model,
      messages: final ? [...messages, { role: 'user' as const, content: FINAL_STEP_MESSAGE }] : messages,
      tools: TOOLS,
      tool_choice: final ? { type: 'function' as const, function: { name: 'provide_answer' } } : ('auto' as const),
      ...sampleParams(options),
    };
    const reply: ChatReply = await client.complete(request, signal);
    const reasoning = reply.reasoning_content?.trim() || extractThinking(reply.content);
    const meta = { turn, latency_ms: Math.round(reply.latency_ms), usage: reply.usage, attempts: reply.attempts };
    if (reply.tool_calls.length === 0) {
      // DRAG's evaluator: a text reply ends the run; its answer is read from the text.
      const parsed = answerFromText(reply.content ?? '');
      iterations.push({
        step: iterations.length + 1,
        reasoning,
        action: 'text_response',
        query: null,
        results: null,
        gt_found: false,
        gt_rank: null,
        rank_score: null,
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
    messages.push({ role: 'assistant', content: reply.content, tool_calls: reply.tool_calls });
    const imageParts: ContentPart[] = [];
    let answered = false;
    for (const call of reply.tool_calls) {
      const base = { step: iterations.length + 1, reasoning, raw_response: reply.content ?? '', ...meta };
      const args = parseJson(call.function.arguments);
      if (call.function.name === 'search_documents') {
        const query =
          args.ok && typeof args.value.query === 'string' && args.value.query.trim() ? args.value.query : null;
        if (!query) {
          const why = args.ok ? 'missing "query" string' : args.error;
          iterations.push({
            ...base,
            action: 'search',
            query: null,
            results: null,
            gt_found: false,
            gt_rank: null,
            rank_score: null,
            answer: null,
            citations: null,
            error: `invalid search_documents arguments: ${why}`,
          });
          messages.push({
            role: 'tool',
            tool_call_id: call.id,
            content: `Error: Invalid search query format (${why}). Call search_documents with {"query": "..."}.`,
          });
          continue;
        }
        const s = searchStep(env, query, options, gt);
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
        messages.push({ role: 'tool', tool_call_id: call.id, content: `Found ${s.results.length} matching pages.` });
        if (s.results.length) {
          imageParts.push({
            type: 'text',
            text: imageParts.length ? `\nResults for "${query}":\n` : 'Here are the matching pages:\n',
          });
          for (const r of s.results) {
            imageParts.push({ type: 'text', text: `\nFile: ${r.file}, Page: ${r.page_number}` });
            const url = env.pageImage ? await env.pageImage(r.file, r.page_number).catch(() => null) : null;
            if (url) {
              imageParts.push({ type: 'image_url', image_url: { url, detail: 'high' } });
              it.images!.push({ file: r.file, page: r.page_number });
            }
          }
        }
      } else if (call.function.name === 'provide_answer') {
        if (!args.ok || !Array.isArray(args.value.answer)) {
          const why = args.ok ? '"answer" must be a list of strings' : args.error;
          iterations.push({
            ...base,
            action: 'answer',
            query: null,
            results: null,
            gt_found: false,
            gt_rank: null,
            rank_score: null,
            answer: null,
            citations: null,
            error: `invalid provide_answer arguments: ${why}`,
          });
          messages.push({
            role: 'tool',
            tool_call_id: call.id,
            content: `Error: invalid provide_answer arguments (${why}).`,
          });
          continue;
        }
        const answer = (args.value.answer as unknown[]).map(String);
        const citations = Array.isArray(args.value.citations) ? args.value.citations : [];
        iterations.push({
          ...base,
          action: 'answer',
          query: null,
          results: null,
          gt_found: false,
          gt_rank: null,
          rank_score: null,
          answer,
          citations: citations as never,
        });
        record.final_answer = answer;
        record.final_citations = citations;
        record.success = true;
        answered = true;
      } else {
        iterations.push({
          ...base,
          action: 'unknown',
          query: null,
          results: null,
          gt_found: false,
          gt_rank: null,
          rank_score: null,
          answer: null,
          citations: null,
          error: `unknown tool ${call.function.name}`,
        });
        messages.push({
          role: 'tool',
          tool_call_id: call.id,
          content: `Error: unknown tool "${call.function.name}". Use search_documents or provide_answer.`,
        });
      }
    }
    if (answered) return;
    if (imageParts.length) messages.push({ role: 'user', content: imageParts });
  }
  record.error = 'Maximum iterations reached';
}

/** DRAG's tag mode (§7.5): <think> then <search>; ends at the first search that returns pages. */
async function tagLoop(
  client: ChatClient,
  env: AgentEnvironment,
  q: AgentQuestion,
  options: AgentOptions,
  gt: Location[],
  iterations: IterationRecord[],
  record: Record<string, unknown>,
  signal?: AbortSignal,
): Promise<void> {
  const tagged = `<question>${q.question}</question>`;
  const messages: ChatMessage[] = [
    { role: 'system', content: TAG_MODE_PROMPT },
    { role: 'user', content: tagged },
  ];
  for (let turn = 1; turn <= options.maxIterations; turn++) {
    const reply = await client.complete({ model: options.model, messages, ...sampleParams(options) }, signal);
    const text = reply.content ?? '';
    const think = /<think>([\s\S]*?)<\/think>/.exec(text)?.[1]?.trim() ?? reply.reasoning_content ?? null;
    const query = /<search>([\s\S]*?)<\/search>/.exec(text)?.[1]?.trim() ?? null;
    const meta = { turn, latency_ms: Math.round(reply.latency_ms), usage: reply.usage, attempts: reply.attempts };
    messages.push({ role: 'assistant', content: text });
    if (!query) {
      iterations.push({
        step: iterations.length + 1,
        reasoning: think,
        action: 'text_response',
        query: null,
        results: null,
        gt_found: false,
        gt_rank: null,
        rank_score: null,
        answer: null,
        citations: null,
        raw_response: text,
        ...meta,
      });
      messages.push({
        role: 'user',
        content: `Please answer in the format <think>...</think><search>...</search>.\n${tagged}`,
      });
      continue;
    }
    const s = searchStep(env, query, options, gt);
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
    messages.push({ role: 'user', content: `The search "${query}" found no results. Try another query.\n${tagged}` });
  }
  record.error = 'Maximum iterations reached';
}

/** Trajectory metrics (DRAG-SPEC §3.6). */
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
