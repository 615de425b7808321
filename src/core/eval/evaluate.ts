import * as path from 'node:path';
import { type CollectOptions, runCollection } from '../agent/collect';
import { scoreTrajectoriesFile, writeEvaluation } from './score';

/**
 * `drag eval`: the agent core over a question set (the same loop and prompt as collection, with
 * explicit sampling; DRAG's evaluator had its own loop and prompt and sent no sampling parameters),
 * then the metrics. The evaluation folder
 * holds trajectories.jsonl (every query and rank kept), run.json, summary.json, per_question.jsonl.
 * Interrupted evaluations continue with `resume`.
 */
export async function runEvaluation(
  options: Omit<CollectOptions, 'outFile'>,
): Promise<{ summary: Record<string, unknown>; trajectories: string; cancelled: boolean }> {
  const collected = await runCollection(options);
  const trajectories = path.join(options.outDir, 'trajectories.jsonl');
  const scored = await scoreTrajectoriesFile(trajectories, { topK: options.topK ?? 3 });
  await writeEvaluation(options.outDir, scored);
  return { summary: scored.summary, trajectories, cancelled: collected.cancelled };
}
