#!/usr/bin/env node
// A stand-in for `vllm serve` in the remote-job tests (no GPU, no weights): takes vLLM's command
// line and refuses at start what vLLM refuses at start (each rule below says which vLLM behaviour it
// copies), then serves the OpenAI wire format on --host:--port: /v1/models lists the served model
// (or --served-model-name) and each LoRA module, with max_model_len; chat completions search with
// the question's longest words, then answer citing the first page.
// Requests are appended to requests.jsonl in the working directory (the job folder).
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';

const argv = process.argv.slice(2);
if (argv[0] !== 'serve' || !argv[1]) {
  console.error('usage: vllm serve <model> [options]');
  process.exit(2);
}
const model = argv[1];
// vLLM's argparse takes both `--flag value` and `--flag=value`, and the last one given wins.
const opt = (name, dflt) => {
  let value = dflt;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === name) value = argv[i + 1];
    else if (argv[i].startsWith(`${name}=`)) value = argv[i].slice(name.length + 1);
  }
  return value;
};
const fail = (message) => {
  console.error(message);
  process.exit(1);
};
const port = Number(opt('--port', '8000'));
const host = opt('--host', '0.0.0.0');
// Without --max-model-len vLLM takes the model's own context length (Qwen3-VL: 262,144 tokens).
const maxModelLen = Number(opt('--max-model-len', '262144'));
const served = opt('--served-model-name', model);
const loras = [];
for (let i = 0; i < argv.length; i++)
  if (argv[i] === '--lora-modules')
    for (let j = i + 1; j < argv.length && !argv[j].startsWith('--'); j++) loras.push(argv[j]);
if (loras.length && !argv.includes('--enable-lora')) fail('ValueError: --lora-modules needs --enable-lora');
// vLLM's LoRA config accepts only these for --max-lora-rank (vllm/config/lora.py, MaxLoRARanks) and
// refuses to start with another value; its default is 16.
const ALLOWED_RANKS = [1, 8, 16, 32, 64, 128, 256, 320, 512];
const maxLoraRank = Number(opt('--max-lora-rank', '16'));
if (!ALLOWED_RANKS.includes(maxLoraRank))
  fail(
    `pydantic_core.ValidationError: max_lora_rank: Input should be ${ALLOWED_RANKS.join(', ')} ` +
      `[input_value=${maxLoraRank}]`,
  );
for (const spec of loras) {
  const [name, dir] = spec.split('=');
  const file = path.join(dir, 'adapter_config.json');
  // A LoRA module without adapter_config.json cannot be loaded.
  if (!existsSync(file)) fail(`ValueError: no adapter_config.json in ${dir} for LoRA module ${name}`);
  const config = JSON.parse(readFileSync(file, 'utf8'));
  // vLLM's PEFTHelper.validate_legal (vllm/lora/peft_helper.py), run when a --lora-modules adapter is
  // loaded at start: the rank (r, and any rank_pattern) must not exceed --max-lora-rank, and
  // modules_to_save must be empty ("vLLM only supports modules_to_save being None").
  const rank = Math.max(Number(config.r ?? 8), ...Object.values(config.rank_pattern ?? {}).map(Number));
  if (rank > maxLoraRank) fail(`ValueError: LoRA rank ${rank} is greater than max_lora_rank ${maxLoraRank}.`);
  if (Array.isArray(config.modules_to_save) && config.modules_to_save.length)
    fail('ValueError: vLLM only supports modules_to_save being None.');
}
const names = [served, ...loras.map((s) => s.split('=')[0])];
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
      // vLLM's ModelCard in /v1/models carries max_model_len for the base model and each LoRA module.
      .end(
        JSON.stringify({
          object: 'list',
          data: names.map((id) => ({ id, object: 'model', owned_by: 'vllm', max_model_len: maxModelLen })),
        }),
      );
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
