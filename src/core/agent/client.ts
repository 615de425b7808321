import OpenAI from 'openai';

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
  usage: { prompt_tokens: number; completion_tokens: number } | null;
  latency_ms: number;
  attempts: number;
}

/** Anything that answers chat requests: a model server, or the embedded keyword policy. */
export interface ChatClient {
  readonly label: string;
  complete(request: ChatRequest, signal?: AbortSignal): Promise<ChatReply>;
}

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 500, maxDelayMs: 30_000 };

/** A request failed for good (after retries, or not retryable). */
export class ChatError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly retryable: boolean,
  ) {
    super(message);
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
        new OpenAI({ baseURL, apiKey: options.apiKey, timeout: options.timeoutMs ?? 120_000, maxRetries: 0 }),
    );
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.random = options.random ?? Math.random;
    this.label = options.baseUrls.join(', ');
  }

  private readonly retry: RetryPolicy;
  private readonly random: () => number;

  async complete(request: ChatRequest, signal?: AbortSignal): Promise<ChatReply> {
    const started = performance.now();
    let lastError: ChatError | null = null;
    for (let attempt = 1; attempt <= this.retry.maxAttempts; attempt++) {
      if (signal?.aborted) throw new CancelledError();
      const client = this.clients[this.next++ % this.clients.length];
      const { repetition_penalty, ...body } = request;
      try {
        const response = await client.chat.completions.create(
          {
            ...(body as unknown as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming),
            ...(repetition_penalty !== undefined && repetition_penalty !== 1 ? { repetition_penalty } : {}),
          } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming,
          { signal },
        );
        const message = response.choices?.[0]?.message as
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
        await sleep(wait ?? backoff * (0.5 + this.random() / 2), signal);
      }
    }
    throw lastError ?? new ChatError('request failed', null, false);
  }
}
