import * as assert from 'node:assert/strict';
import { answerCall, FakeOpenAI, pngHeader } from '../helpers/fakeOpenAI';

/** The fake chat server refuses what vLLM refuses, so the agent's tests mean something against it. */
describe('the fake OpenAI-compatible server is as strict as vLLM', function () {
  this.timeout(20_000);
  let server: FakeOpenAI;
  afterEach(async () => server?.stop());

  const post = async (body: object) => {
    const res = await fetch(`${server.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'test-model', ...body }),
    });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the test reads vLLM-shaped JSON freely
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  const image = (w: number, h: number) => ({
    type: 'image_url',
    image_url: { url: `data:image/png;base64,${pngHeader(w, h).toString('base64')}` },
  });

  it('lists max_model_len in /v1/models', async () => {
    server = new FakeOpenAI(() => answerCall(['x']), { maxModelLen: 12_345, models: ['a', 'b'] });
    const res = await fetch(`${await server.start()}/models`);
    const body = (await res.json()) as { data: Array<{ id: string; max_model_len: number }> };
    assert.deepEqual(
      body.data.map((m) => [m.id, m.max_model_len]),
      [
        ['a', 12_345],
        ['b', 12_345],
      ],
    );
  });

  it('refuses a history with tool-call arguments that are not JSON', async () => {
    server = new FakeOpenAI(() => answerCall(['x']));
    await server.start();
    const call = (args: string) => ({
      messages: [
        { role: 'user', content: 'q' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c1', type: 'function', function: { name: 'search_documents', arguments: args } }],
        },
        { role: 'tool', tool_call_id: 'c1', content: 'Found 0 matching pages.' },
      ],
    });
    const bad = await post(call('{"query": "pro'));
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /messages\[1\]: tool call arguments are not JSON/);
    assert.equal((await post(call('{}'))).status, 200);
    assert.equal((await post(call(''))).status, 200, 'vLLM reads empty arguments as {}');
  });

  it('counts images by pixels and refuses prompt + max_tokens over the context, with vLLM message', async () => {
    server = new FakeOpenAI(() => answerCall(['x']), { maxModelLen: 2000 });
    await server.start();
    // 896×896 pixels: 32×32 tokens plus two markers.
    const one = await post({ messages: [{ role: 'user', content: [image(896, 896)] }], max_tokens: 10 });
    assert.equal(one.status, 200);
    assert.equal(one.body.usage.prompt_tokens, 4 + 1026);
    const over = await post({ messages: [{ role: 'user', content: [image(896, 896)] }], max_tokens: 1000 });
    assert.equal(over.status, 400);
    assert.equal(
      over.body.error.message,
      "'max_tokens' or 'max_completion_tokens' is too large: 1000. " +
        "This model's maximum context length is 2000 tokens and your request has 1030 input tokens " +
        '(1000 > 2000 - 1030). None',
    );
    const two = await post({ messages: [{ role: 'user', content: [image(896, 896), image(896, 896)] }] });
    assert.equal(two.status, 400);
    assert.match(
      two.body.error.message,
      /^This model's maximum context length is 2000 tokens\. However, your request has 2056 input tokens/,
    );
    const unreadable = await post({
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }],
    });
    assert.equal(unreadable.status, 400);
    assert.equal(server.refused.length, 3);
  });

  it('answers in the top-level error shape when asked to', async () => {
    server = new FakeOpenAI(() => answerCall(['x']), { maxModelLen: 10, errorShape: 'top-level' });
    await server.start();
    const res = await post({ messages: [{ role: 'user', content: 'a question that is long enough' }] });
    assert.equal(res.status, 400);
    assert.equal(res.body.object, 'error');
    assert.match(res.body.message, /maximum context length is 10 tokens/);
  });

  it('stops at max_tokens with finish_reason "length", leaving an unfinished tool call as text', async () => {
    server = new FakeOpenAI(() => ({
      reply: {
        content: null,
        tool_calls: [{ name: 'provide_answer', arguments: JSON.stringify({ answer: ['x'.repeat(200)] }) }],
      },
    }));
    await server.start();
    const cut = await post({ messages: [{ role: 'user', content: 'q' }], max_tokens: 20 });
    const choice = cut.body.choices[0];
    assert.equal(choice.finish_reason, 'length');
    assert.equal(choice.message.tool_calls, undefined);
    assert.equal(choice.message.content.length, 80);
    assert.match(choice.message.content, /^<tool_call>/);
    assert.equal(cut.body.usage.completion_tokens, 20);
    const whole = await post({ messages: [{ role: 'user', content: 'q' }], max_tokens: 200 });
    assert.equal(whole.body.choices[0].finish_reason, 'tool_calls');
  });
});
