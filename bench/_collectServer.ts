/** The simulated model server for `bench collect`, in its own process (like a real vLLM). */
import { answerCall, type ChatBody, FakeOpenAI, searchCall } from '../test/helpers/fakeOpenAI';

const latency = Number(process.argv[2] ?? 200);
const server = new FakeOpenAI((body: ChatBody) => {
  const done = body.messages.some((m) => m.role === 'tool');
  const reply = done
    ? answerCall(['x'], [{ file: 'ACME_2023_10K.pdf', page: 3 }])
    : searchCall('property plant equipment');
  return { ...(reply as { reply: object }), delayMs: latency } as ReturnType<typeof searchCall>;
});
void server.start().then((url) => process.stdout.write(`${url}\n`));
process.on('message', (m) => {
  if (m === 'count') process.send?.(server.requests.length);
});
