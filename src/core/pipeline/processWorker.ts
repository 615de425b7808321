// A worker thread of `drag process`: the trajectories in one byte range of a file, processed as the
// main thread processes the rest, and what it made handed back in one message (see runProcess.ts).
import { parentPort, workerData } from 'node:worker_threads';
import type { LineError } from '../io/errors';
import { indexJsonl, indexProblems } from '../io/jsonl';
import type { FormatOptions } from './format';
import { type ExportedSink, ProcessSink, type Retained, trajectoryStep } from './processSink';

export interface ProcessWorkerData {
  file: string;
  range: { start: number; end: number };
  topK: number;
  includeFailed: boolean;
  processed: boolean;
  dataset: FormatOptions | null;
}

export type ProcessWorkerReply =
  { ok: true; retained: Retained[]; errors: LineError[]; sink: ExportedSink } | { ok: false; message: string };

async function main(port: NonNullable<typeof parentPort>): Promise<void> {
  const d = workerData as ProcessWorkerData;
  const sink = new ProcessSink(d.processed, d.dataset);
  const retained: Retained[] = [];
  try {
    const step = trajectoryStep(d.topK, d.includeFailed, (r, kept) => retained.push(sink.retain(r, kept)));
    const index = await indexJsonl(d.file, step, undefined, { range: d.range });
    const exported = sink.export();
    const reply: ProcessWorkerReply = { ok: true, retained, errors: indexProblems(index), sink: exported };
    port.postMessage(reply, ProcessSink.transferList(exported));
  } catch (err) {
    port.postMessage({ ok: false, message: (err as Error).message } satisfies ProcessWorkerReply);
  }
}

if (parentPort) void main(parentPort);
