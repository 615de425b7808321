import OpenAI from 'openai';
import { contextLengthError } from './budget';

/** What the agent sends: OpenAI chat-completions fields it uses. */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  tools?: readonly unknown[];
  tool_choice?: 'auto' | { type: 'function'; function: { name: string } };
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  /** vLLM extension (sent in the body), only when != 1.0. */
  repetition_penalty?: number;
}

export type ChatMessage =
  | { role: 'system' | 'user'; content: string | ContentPart[] }
  | { role: 'assistant'; content: string | null; tool_calls?: ToolCall[] }
  | { role: 'tool'; tool_call_id: string; content: string };

export type ContentPart =
  { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string; detail?: 'high' | 'low' | 'auto' } };

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatReply {
  content: string | null;
  /** vLLM's separate reasoning field (reasoning parsers), when present. */
  reasoning_content: string | null;
  tool_calls: ToolCall[];
  /**
   * Why generation stopped, as the server says: "stop", "tool_calls", or "length" when `max_tokens`
   * ran out mid-reply (the reply is then incomplete); null when the server does not say.
   */
  finish_reason: string | null;
  usage: { prompt_tokens: number; completion_tokens: number } | null;
  latency_ms: number;
  attempts: number;
}

/** Anything that answers chat requests: a model server, or the embedded keyword policy. */
export interface ChatClient {
  readonly label: string;
  complete(request: ChatRequest, signal?: AbortSignal): Promise<ChatReply>;
  /** The server's context length for `model` (vLLM's `max_model_len` in /v1/models), or null when it does not say. */
  maxModelLen?(model: string, signal?: AbortSignal): Promise<number | null>;
}

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 500, maxDelayMs: 30_000 };

/** A request failed for good (after retries, or not retryable). */
export class ChatError extends Error {
  /** The server refused the request as longer than its context: a smaller request can succeed. */
  readonly contextLength: boolean;
  /** The server's context length and the prompt's token count, when its refusal gives them. */
  readonly maxModelLen: number | null;
  readonly inputTokens: number | null;
  constructor(
    message: string,
    readonly status: number | null,
    readonly retryable: boolean,
  ) {
    super(message);
    const context = status === 400 ? contextLengthError(message) : null;
    this.contextLength = context !== null;
    this.maxModelLen = context?.maxModelLen ?? null;
    this.inputTokens = context?.inputTokens ?? null;
  }
}

export class CancelledError extends Error {
  constructor() {
    super('cancelled');
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new CancelledError());
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CancelledError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A signal for one request that follows `outer`, and a release that detaches it afterwards: the
 * `openai` package adds an abort listener to the signal it is given and never removes it, so a
 * run-long signal would gather one listener per request.
 */
function requestSignal(outer?: AbortSignal): { signal?: AbortSignal; release: () => void } {
  if (!outer) return { release: () => undefined };
  const controller = new AbortController();
  const abort = () => controller.abort(outer.reason);
  if (outer.aborted) abort();
  else outer.addEventListener('abort', abort, { once: true });
  return { signal: controller.signal, release: () => outer.removeEventListener('abort', abort) };
}

/** Seconds or HTTP-date in Retry-After, or vLLM/OpenAI's retry-after-ms. */
export function retryAfterMs(headers: Headers | Record<string, string> | undefined): number | null {
  if (!headers) return null;
  const get = (k: string) =>
    headers instanceof Headers ? headers.get(k) : ((headers as Record<string, string>)[k] ?? null);
  const ms = get('retry-after-ms');
  if (ms && Number.isFinite(Number(ms))) return Number(ms);
  const v = get('retry-after');
  if (!v) return null;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Number(v) * 1000;
  const date = Date.parse(v);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

/**
 * `fetch` that moves an error body in the shape vLLM has used (`{"object": "error", "message": …}` at
 * the top level, vLLM's ErrorResponse before it nested it under "error") into the OpenAI shape, which
 * is the only one the `openai` package reads: otherwise vLLM's reason is lost and the user sees
 * "400 status code (no body)".
 */
export const vllmErrorFetch: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  if (res.ok) return res;
  const text = await res.text();
  let body = text;
  try {
    const v = JSON.parse(text) as Record<string, unknown> | null;
    if (v && typeof v === 'object' && !('error' in v) && typeof v.message === 'string')
      body = JSON.stringify({
        error: { message: v.message, type: v.type ?? null, param: v.param ?? null, code: v.code },
      });
  } catch {
    // not JSON: the package keeps the text as the message
  }
  const headers = new Headers(res.headers);
  headers.delete('content-length');
  headers.delete('content-encoding');
  return new Response(body, { status: res.status, statusText: res.statusText, headers });
};

/**
 * An OpenAI-compatible server (vLLM), through the `openai` package, with our own retries so their
 * policy is explicit and testable: exponential backoff with jitter on 429 (honouring
 * Retry-After), 5xx, timeouts and connection errors; a per-request timeout; cancellation that
 * aborts the request in flight; several base URLs used round-robin (several vLLM replicas).
 */
export class OpenAIChatClient implements ChatClient {
  private readonly clients: OpenAI[];
  private next = 0;
  readonly label: string;

  constructor(options: {
    baseUrls: string[];
    apiKey: string;
    timeoutMs?: number;
    retry?: Partial<RetryPolicy>;
    random?: () => number;
  }) {
    if (options.baseUrls.length === 0) throw new Error('at least one base URL is needed');
    this.clients = options.baseUrls.map(
      (baseURL) =>
        new OpenAI({
          baseURL,
          apiKey: options.apiKey,
          timeout: options.timeoutMs ?? 120_000,
          maxRetries: 0,
          fetch: vllmErrorFetch,
        }),
    );
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.random = options.random ?? Math.random;
    this.label = options.baseUrls.join(', ');
  }

  private readonly retry: RetryPolicy;
  private readonly random: () => number;
  private readonly contextLengths = new Map<string, Promise<number | null>>();

  /**
   * vLLM lists each served model with its `max_model_len` (ModelCard in vllm/entrypoints/openai/protocol.py);
   * the smallest over the base URLs, asked once. Null when no server says (OpenAI itself does not).
   */
  maxModelLen(model: string, signal?: AbortSignal): Promise<number | null> {
    let known = this.contextLengths.get(model);
    if (!known) {
      known = Promise.all(
        this.clients.map(async (client) => {
          const linked = requestSignal(signal);
          try {
            const list = await client.models.list({ signal: linked.signal });
            const card = list.data.find((m) => m.id === model) as { max_model_len?: unknown } | undefined;
            return typeof card?.max_model_len === 'number' && card.max_model_len > 0 ? card.max_model_len : null;
          } catch {
            return null;
          } finally {
            linked.release();
          }
        }),
      ).then((lengths) => {
        const said = lengths.filter((n): n is number => n !== null);
        return said.length ? Math.min(...said) : null;
      });
      this.contextLengths.set(model, known);
    }
    return known;
  }

  async complete(request: ChatRequest, signal?: AbortSignal): Promise<ChatReply> {
    const started = performance.now();
    let lastError: ChatError | null = null;
    for (let attempt = 1; attempt <= this.retry.maxAttempts; attempt++) {
      if (signal?.aborted) throw new CancelledError();
      const client = this.clients[this.next++ % this.clients.length];
      const { repetition_penalty, ...body } = request;
      const linked = requestSignal(signal);
      try {
        const response = await client.chat.completions.create(
          {
            ...(body as unknown as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming),
            ...(repetition_penalty !== undefined && repetition_penalty !== 1 ? { repetition_penalty } : {}),
          } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming,
          { signal: linked.signal },
        );
        const choice = response.choices?.[0];
        const message = choice?.message as
          | (OpenAI.Chat.ChatCompletionMessage & { reasoning_content?: string | null; reasoning?: string | null })
          | undefined;
        if (!message) throw new ChatError('the server returned no choices', null, true);
        return {
          content: message.content ?? null,
          reasoning_content: message.reasoning_content ?? message.reasoning ?? null,
          tool_calls: (message.tool_calls ?? [])
            .filter((c): c is OpenAI.Chat.ChatCompletionMessageFunctionToolCall => c.type === 'function')
            .map((c) => ({
              id: c.id,
              type: 'function',
              function: { name: c.function.name, arguments: c.function.arguments ?? '' },
            })),
          finish_reason: choice?.finish_reason ?? null,
          usage: response.usage
            ? { prompt_tokens: response.usage.prompt_tokens, completion_tokens: response.usage.completion_tokens }
            : null,
          latency_ms: performance.now() - started,
          attempts: attempt,
        };
      } catch (err) {
        if (signal?.aborted || err instanceof OpenAI.APIUserAbortError) throw new CancelledError();
        let wait: number | null = null;
        if (err instanceof ChatError) {
          lastError = err;
        } else if (err instanceof OpenAI.APIConnectionTimeoutError) {
          lastError = new ChatError(`request timed out (${err.message})`, null, true);
        } else if (err instanceof OpenAI.APIConnectionError) {
          lastError = new ChatError(`connection error: ${err.message}`, null, true);
        } else if (err instanceof OpenAI.APIError) {
          const status = err.status ?? null;
          const retryable = status === 429 || status === 408 || (status !== null && status >= 500);
          lastError = new ChatError(`HTTP ${status ?? '?'}: ${err.message}`, status, retryable);
          if (status === 429) wait = retryAfterMs(err.headers as Headers | undefined);
        } else {
          lastError = new ChatError((err as Error).message ?? String(err), null, false);
        }
        if (!lastError.retryable || attempt === this.retry.maxAttempts) break;
        const backoff = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
        linked.release();
        await sleep(wait ?? backoff * (0.5 + this.random() / 2), signal);
      } finally {
        linked.release();
      }
    }
    throw lastError ?? new ChatError('request failed', null, false);
  }
}
