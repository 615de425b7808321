import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { exportCuratedDataset } from '../../core/curation/export';
import { type CliCommand, UsageError } from '../args';

/** runs/<id>/trajectories.jsonl of a workspace. */
function workspaceRuns(workspace: string): string[] {
  const runs = path.join(workspace, 'runs');
  if (!existsSync(runs)) return [];
  return readdirSync(runs)
    .map((d) => path.join(runs, d, 'trajectories.jsonl'))
    .filter((f) => existsSync(f))
    .sort();
}

export const exportCuratedCommand: CliCommand = {
  name: 'export-curated',
  summary: 'build SFT/DPO datasets from the curation log (accepted trajectories, pairs, edited queries)',
  usage:
    'drag export-curated --workspace <dir> --name <dataset> [--runs <trajectories.jsonl> ...] ' +
    `[--train-ratio 0.9] [--seed 42] [--json]

Reads <workspace>/curation/decisions.jsonl and the runs' trajectories (default: every
runs/*/trajectories.jsonl), and writes <workspace>/datasets/<name>/ in every format with a
manifest naming the decisions used. Deterministic for a given log and seed.`,
  async run(argv, io) {
    const { values } = parseArgs({
      args: argv,
      options: {
        workspace: { type: 'string', default: '.' },
        name: { type: 'string' },
        runs: { type: 'string', multiple: true },
        'train-ratio': { type: 'string', default: '0.9' },
        seed: { type: 'string', default: '42' },
        json: { type: 'boolean', default: false },
      },
    });
    if (!values.name || !/^[\w.-]+$/.test(values.name))
      throw new UsageError('--name is required (letters, digits, . _ -)');
    const runs = values.runs ?? workspaceRuns(values.workspace);
    if (runs.length === 0) throw new UsageError('no trajectories: give --runs or put runs under <workspace>/runs/');
    const out = await exportCuratedDataset(values.workspace, runs, values.name, {
      trainRatio: Number(values['train-ratio']),
      seed: Number(values.seed),
    });
    const summary = {
      type: 'done',
      dataset: path.join(values.workspace, 'datasets', values.name),
      accepted: out.accepted,
      pairs: out.pairs,
      edits: out.edits,
      decisions: out.decisionsUsed.length,
      formats: out.report.formats,
    };
    if (values.json) io.stdout(`${JSON.stringify(summary)}\n`);
    io.stderr(
      `${summary.dataset}: ${out.accepted} accepted trajectories, ${out.pairs} pairs, ` +
        `${out.edits} edited queries from ${out.decisionsUsed.length} decisions\n`,
    );
    return 0;
  },
};
