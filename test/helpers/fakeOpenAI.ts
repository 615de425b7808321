/**
 * A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions wire format, scripted per
 * test (including faults), so the real `openai` client is exercised end to end.
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
  [key: string]: unknown;
}

export type Action =
  | {
      reply: {
        content?: string | null;
        reasoning_content?: string;
        tool_calls?: Array<{ name: string; arguments: string; id?: string }>;
      };
      delayMs?: number;
    }
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | { stallMs: number }
  | { reset: true };

export type Script = (body: ChatBody, n: number) => Action;

export const searchCall = (query: string): Action => ({
  reply: { content: null, tool_calls: [{ name: 'search_documents', arguments: JSON.stringify({ query }) }] },
});
export const answerCall = (answer: string[], citations: Array<{ file: string; page: number }> = []): Action => ({
  reply: { content: null, tool_calls: [{ name: 'provide_answer', arguments: JSON.stringify({ answer, citations }) }] },
});

export class FakeOpenAI {
  readonly requests: ChatBody[] = [];
  private server: Server | null = null;
  url = '';
  private n = 0;

  constructor(public script: Script) {}

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

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    if (req.url?.endsWith('/models')) {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ object: 'list', data: [{ id: 'test-model', object: 'model' }] }));
      return;
    }
    const body = JSON.parse(raw || '{}') as ChatBody;
    this.requests.push(body);
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
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion(body, action.reply)));
  }
}

let callId = 0;
export function completion(
  body: ChatBody,
  reply: {
    content?: string | null;
    reasoning_content?: string;
    tool_calls?: Array<{ name: string; arguments: string; id?: string }>;
  },
) {
  return {
    id: `chatcmpl-${++callId}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: body.model,
    choices: [
      {
        index: 0,
        finish_reason: reply.tool_calls?.length ? 'tool_calls' : 'stop',
        message: {
          role: 'assistant',
          content: reply.content ?? null,
          ...(reply.reasoning_content ? { reasoning_content: reply.reasoning_content } : {}),
          ...(reply.tool_calls?.length
            ? {
                tool_calls: reply.tool_calls.map((c, i) => ({
                  id: c.id ?? `call_${callId}_${i}`,
                  type: 'function',
                  function: { name: c.name, arguments: c.arguments },
                })),
              }
            : {}),
        },
      },
    ],
    usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 },
  };
}
