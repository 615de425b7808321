/**
 * A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions wire format, scripted per
 * test (including faults), so the real `openai` client is exercised end to end. It is as strict as
 * vLLM's OpenAI-compatible server where our agent can trip: each rule below names the vLLM behaviour
 * it copies (in vLLM's vllm/entrypoints/openai/ and vllm/entrypoints/chat_utils.py).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ChatBody {
  model: string;
  messages: Array<{
    role: string;
    content: unknown;
    tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }>;
    tool_call_id?: string;
  }>;
  tools?: unknown[];
  tool_choice?: unknown;
  temperature?: number;
  max_tokens?: number;
  [key: string]: unknown;
}

export interface ScriptedReply {
  content?: string | null;
  reasoning_content?: string;
  tool_calls?: Array<{ name: string; arguments: string; id?: string }>;
}

export type Action =
  | { reply: ScriptedReply; delayMs?: number }
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | { stallMs: number }
  | { reset: true };

export type Script = (body: ChatBody, n: number) => Action;

export interface FakeOptions {
  /** vLLM's `--max-model-len`: prompt plus `max_tokens` must fit (default 32,768). */
  maxModelLen?: number;
  /**
   * The shape of the server's own errors: 'nested' (`{"error": {...}}`, current vLLM) or 'top-level'
   * (`{"object": "error", "message": ...}`, vLLM's ErrorResponse before it was nested).
   */
  errorShape?: 'nested' | 'top-level';
  /** The served model ids in /v1/models (default ['test-model']). */
  models?: string[];
}

export const searchCall = (query: string): Action => ({
  reply: { content: null, tool_calls: [{ name: 'search_documents', arguments: JSON.stringify({ query }) }] },
});
export const answerCall = (answer: string[], citations: Array<{ file: string; page: number }> = []): Action => ({
  reply: { content: null, tool_calls: [{ name: 'provide_answer', arguments: JSON.stringify({ answer, citations }) }] },
});

/** Tokens of a text, for this fake: 4 characters a token (our agent's estimate, at 3, must stay above it). */
export const fakeTextTokens = (text: string): number => Math.ceil(text.length / 4);

/** Width and height from a PNG's IHDR or a JPEG's start-of-frame; null when the bytes are neither. */
function pixelSize(bytes: Buffer): { width: number; height: number } | null {
  if (bytes.length >= 24 && bytes.subarray(1, 4).toString('ascii') === 'PNG')
    return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  for (let i = 2; i + 9 < bytes.length; i += 2 + bytes.readUInt16BE(i + 2)) {
    const marker = bytes[i + 1];
    if (marker >= 0xc0 && marker <= 0xc3)
      return { height: bytes.readUInt16BE(i + 5), width: bytes.readUInt16BE(i + 7) };
  }
  return null;
}

/** A PNG header of the given size: enough for this fake (and our agent) to count the image's tokens. */
export function pngHeader(width: number, height: number): Buffer {
  const b = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b, 0);
  b.writeUInt32BE(13, 8);
  b.write('IHDR', 12, 'ascii');
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  b[24] = 8;
  b[25] = 2;
  return b;
}

class RequestError extends Error {}

/**
 * Prompt tokens of a chat request. Images cost what Qwen-VL's processor makes of them: one token per
 * 28×28 pixels (14-pixel patches merged 2×2), plus the vision start and end markers. An image that
 * cannot be read is refused, as vLLM refuses an image its loader cannot open.
 */
function promptTokens(body: ChatBody): number {
  let tokens = body.tools ? fakeTextTokens(JSON.stringify(body.tools)) : 0;
  for (const m of body.messages) {
    tokens += 4;
    if (typeof m.content === 'string') tokens += fakeTextTokens(m.content);
    else if (Array.isArray(m.content))
      for (const part of m.content as Array<{ type: string; text?: string; image_url?: { url: string } }>) {
        if (part.type === 'text') tokens += fakeTextTokens(part.text ?? '');
        else if (part.type === 'image_url') {
          const url = part.image_url?.url ?? '';
          const size = url.startsWith('data:')
            ? pixelSize(Buffer.from(url.slice(url.indexOf(',') + 1), 'base64'))
            : null;
          if (!size) throw new RequestError(`Failed to load image ${url.slice(0, 40)}…: cannot identify image file`);
          tokens += Math.ceil(size.width / 28) * Math.ceil(size.height / 28) + 2;
        }
      }
    for (const c of m.tool_calls ?? []) tokens += fakeTextTokens(c.function.name + c.function.arguments) + 8;
  }
  return tokens;
}

export class FakeOpenAI {
  readonly requests: ChatBody[] = [];
  /** The requests refused before the script saw them, with the server's message. */
  readonly refused: Array<{ body: ChatBody; message: string }> = [];
  private server: Server | null = null;
  url = '';
  private n = 0;
  readonly maxModelLen: number;

  constructor(
    public script: Script,
    private readonly options: FakeOptions = {},
  ) {
    this.maxModelLen = options.maxModelLen ?? 32_768;
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(() => r(undefined)) ?? r(undefined));
  }

  /** vLLM's ErrorResponse: `{"error": {...}}` now, `{"object": "error", ...}` at the top level before. */
  private error(res: ServerResponse, message: string): void {
    const error = { message, type: 'BadRequestError', param: null, code: 400 };
    res
      .writeHead(400, { 'content-type': 'application/json' })
      .end(JSON.stringify(this.options.errorShape === 'top-level' ? { object: 'error', ...error } : { error }));
  }

  /**
   * The checks vLLM makes before generating; a message when it would refuse the request with 400.
   * - chat_utils.py `_postprocess_messages`: every assistant tool call's `arguments` in the history is
   *   `json.loads`-ed to render the chat template; a string that is not JSON fails the request.
   * - serving_engine.py `OpenAIServing._validate_input`: prompt tokens (images included) plus
   *   `max_tokens` must not exceed `--max-model-len`; vLLM refuses rather than shortening `max_tokens`,
   *   with "This model's maximum context length is N tokens…" (the newer wording is copied here).
   */
  private refusal(body: ChatBody): { message: string } | { prompt: number; maxTokens: number } {
    for (const [i, m] of body.messages.entries())
      for (const c of m.tool_calls ?? []) {
        if (!c.function.arguments) continue;
        try {
          JSON.parse(c.function.arguments);
        } catch (err) {
          return { message: `messages[${i}]: tool call arguments are not JSON: ${(err as Error).message} None` };
        }
      }
    let prompt: number;
    try {
      prompt = promptTokens(body);
    } catch (err) {
      if (err instanceof RequestError) return { message: err.message };
      throw err;
    }
    const max = this.maxModelLen;
    if (prompt >= max)
      return {
        message:
          `This model's maximum context length is ${max} tokens. ` +
          `However, your request has ${prompt} input tokens. Please reduce the length of the input messages. None`,
      };
    if (typeof body.max_tokens === 'number' && prompt + body.max_tokens > max)
      return {
        message:
          `'max_tokens' or 'max_completion_tokens' is too large: ${body.max_tokens}. ` +
          `This model's maximum context length is ${max} tokens and your request has ${prompt} input tokens ` +
          `(${body.max_tokens} > ${max} - ${prompt}). None`,
      };
    // Without max_tokens, vLLM generates up to the rest of the context.
    return { prompt, maxTokens: typeof body.max_tokens === 'number' ? body.max_tokens : max - prompt };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    if (req.url?.endsWith('/models')) {
      // vLLM's ModelCard (vllm/entrypoints/openai/protocol.py) carries the served max_model_len.
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          object: 'list',
          data: (this.options.models ?? ['test-model']).map((id) => ({
            id,
            object: 'model',
            created: 0,
            owned_by: 'vllm',
            root: id,
            parent: null,
            max_model_len: this.maxModelLen,
          })),
        }),
      );
      return;
    }
    const body = JSON.parse(raw || '{}') as ChatBody;
    this.requests.push(body);
    const checked = this.refusal(body);
    if ('message' in checked) {
      this.refused.push({ body, message: checked.message });
      this.error(res, checked.message);
      return;
    }
    const action = this.script(body, this.n++);
    if ('reset' in action) {
      req.socket.destroy();
      return;
    }
    if ('stallMs' in action) {
      const t = setTimeout(() => {
        if (!res.writableEnded)
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify(completion(body, { content: 'late' })));
      }, action.stallMs);
      res.on('close', () => clearTimeout(t));
      return;
    }
    if ('status' in action) {
      res
        .writeHead(action.status, { 'content-type': 'application/json', ...action.headers })
        .end(JSON.stringify(action.body ?? { error: { message: `injected ${action.status}`, type: 'server_error' } }));
      return;
    }
    if (action.delayMs) await new Promise((r) => setTimeout(r, action.delayMs));
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify(completion(body, action.reply, checked)));
  }
}

/**
 * A reply as vLLM would send it for a model that generated `reply`. When `max_tokens` runs out first,
 * generation stops mid-text with `finish_reason: "length"` (vLLM's sampler stops at max_tokens); the
 * hermes tool parser then finds no complete <tool_call> block, so the cut text comes back as content
 * (and with a reasoning parser, a cut inside the thinking leaves everything in reasoning_content).
 */
let callId = 0;
export function completion(
  body: ChatBody,
  reply: ScriptedReply,
  budget: { prompt: number; maxTokens: number } = { prompt: 100, maxTokens: Infinity },
) {
  const calls = (reply.tool_calls ?? []).map(
    (c) => `<tool_call>\n{"name": "${c.name}", "arguments": ${c.arguments}}\n</tool_call>`,
  );
  const reasoning = reply.reasoning_content ?? '';
  const answer = `${reply.content ?? ''}${calls.join('\n')}`;
  const generated = fakeTextTokens(reasoning) + fakeTextTokens(answer);
  const cut = generated > budget.maxTokens;
  let message: Record<string, unknown>;
  if (cut) {
    const chars = budget.maxTokens * 4;
    message = {
      role: 'assistant',
      content: reasoning.length >= chars ? null : answer.slice(0, chars - reasoning.length),
      ...(reasoning ? { reasoning_content: reasoning.slice(0, chars) } : {}),
    };
  } else {
    message = {
      role: 'assistant',
      content: reply.content ?? null,
      ...(reasoning ? { reasoning_content: reasoning } : {}),
      ...(reply.tool_calls?.length
        ? {
            tool_calls: reply.tool_calls.map((c, i) => ({
              id: c.id ?? `call_${callId + 1}_${i}`,
              type: 'function',
              function: { name: c.name, arguments: c.arguments },
            })),
          }
        : {}),
    };
  }
  const completionTokens = Math.min(generated, budget.maxTokens);
  return {
    id: `chatcmpl-${++callId}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: body.model,
    choices: [
      {
        index: 0,
        finish_reason: cut ? 'length' : reply.tool_calls?.length ? 'tool_calls' : 'stop',
        message,
      },
    ],
    usage: {
      prompt_tokens: budget.prompt,
      completion_tokens: completionTokens,
      total_tokens: budget.prompt + completionTokens,
    },
  };
}
