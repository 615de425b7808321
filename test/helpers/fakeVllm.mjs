#!/usr/bin/env node
// A stand-in for `vllm serve` in the remote-job tests (no GPU, no weights): takes vLLM's command
// line, refuses a --lora-modules path without adapter_config.json (as vLLM does), then serves the
// OpenAI wire format on --host:--port: /v1/models lists the base model and each LoRA module;
// chat completions search with the question's longest words, then answer citing the first page.
// Requests are appended to requests.jsonl in the working directory (the job folder).
import { appendFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';

const argv = process.argv.slice(2);
if (argv[0] !== 'serve' || !argv[1]) {
  console.error('usage: vllm serve <model> [options]');
  process.exit(2);
}
const model = argv[1];
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const port = Number(opt('--port', '8000'));
const host = opt('--host', '0.0.0.0');
const loras = [];
for (let i = 0; i < argv.length; i++)
  if (argv[i] === '--lora-modules')
    for (let j = i + 1; j < argv.length && !argv[j].startsWith('--'); j++) loras.push(argv[j]);
for (const spec of loras) {
  const [name, dir] = spec.split('=');
  if (!existsSync(path.join(dir, 'adapter_config.json'))) {
    console.error(`ValueError: no adapter_config.json in ${dir} for LoRA module ${name}`);
    process.exit(1);
  }
}
const names = [model, ...loras.map((s) => s.split('=')[0])];
console.log(`INFO: loading ${model} with LoRA modules ${names.slice(1).join(', ')}`);

const text = (content) =>
  typeof content === 'string' ? content : Array.isArray(content) ? content.map((p) => p.text ?? '').join(' ') : '';
const completion = (body, message) => ({
  id: `chatcmpl-${Date.now()}`,
  object: 'chat.completion',
  created: Math.floor(Date.now() / 1000),
  model: body.model,
  choices: [
    {
      index: 0,
      finish_reason: message.tool_calls ? 'tool_calls' : 'stop',
      message: { role: 'assistant', content: null, ...message },
    },
  ],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
});
const call = (name, args) => ({
  tool_calls: [
    {
      id: `call_${Math.random().toString(36).slice(2, 10)}`,
      type: 'function',
      function: { name, arguments: JSON.stringify(args) },
    },
  ],
});

createServer(async (req, res) => {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  if (req.url === '/v1/models') {
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ object: 'list', data: names.map((id) => ({ id, object: 'model' })) }));
    return;
  }
  if (req.url !== '/v1/chat/completions') {
    res.writeHead(404).end();
    return;
  }
  const body = JSON.parse(raw || '{}');
  appendFileSync('requests.jsonl', `${JSON.stringify({ model: body.model, messages: body.messages.length })}\n`);
  if (!names.includes(body.model)) {
    res
      .writeHead(404, { 'content-type': 'application/json' })
      .end(JSON.stringify({ error: { message: `model ${body.model} not found` } }));
    return;
  }
  const searched = body.messages.some((m) => m.role === 'tool');
  let message;
  if (!searched) {
    const question = text(body.messages.filter((m) => m.role === 'user').at(-1)?.content);
    const words = [...new Set(question.toLowerCase().match(/[a-z0-9]{4,}/g) ?? [])]
      .sort((a, b) => b.length - a.length)
      .slice(0, 2);
    message = call('search_documents', { query: words.join(' OR ') || 'report' });
  } else {
    const all = body.messages.map((m) => text(m.content)).join('\n');
    const hit = /File: (.+?), Page: (\d+)/.exec(all);
    message = call('provide_answer', {
      answer: ['unknown'],
      citations: hit ? [{ file: hit[1], page: Number(hit[2]) }] : [],
    });
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion(body, message)));
}).listen(port, host, () => console.log(`INFO: Uvicorn running on http://${host}:${port}`));
