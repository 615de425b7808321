import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { compareRuns, comparisonJson, comparisonMarkdown, loadEvaluation } from '../../core/eval/compare';
import { updateJobMeta } from '../../core/jobs/engine';
import { startAdapterServer } from '../../core/jobs/serve';
import { type CliCommand, UsageError } from '../args';
import { evalCommand } from './collect';
import { workspaceOf } from './jobs';

/**
 * Takes every `--vllm-arg` out of the options: `--vllm-arg=--flag=value` and `--vllm-arg=--flag`
 * as one word, `--vllm-arg --flag value` as two (the next word is the flag's value unless it starts
 * with "-"), `--vllm-arg --flag` alone. Node's parser would refuse a value starting with "-".
 */
export function takeVllmArgs(argv: readonly string[]): { vllmArgs: string[]; rest: string[] } {
  const vllmArgs: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--vllm-arg=')) {
      vllmArgs.push(a.slice('--vllm-arg='.length));
      continue;
    }
    if (a !== '--vllm-arg') {
      rest.push(a);
      continue;
    }
    const flag = argv[i + 1];
    if (flag === undefined)
      throw new UsageError('--vllm-arg needs a vLLM option, e.g. --vllm-arg --max-model-len 16384');
    vllmArgs.push(flag);
    i++;
    const value = argv[i + 1];
    if (flag.startsWith('--') && !flag.includes('=') && value !== undefined && !value.startsWith('-')) {
      vllmArgs.push(value);
      i++;
    }
  }
  return { vllmArgs, rest };
}

export const evalAdapterCommand: CliCommand = {
  name: 'eval-adapter',
  summary: "serve a training job's LoRA adapter with vLLM on its host, evaluate it, compare with the base",
  usage:
    `drag eval-adapter <train job id> [--base-model M] [--lora-name N] [--port 8001] [--vllm CMD]
                  [--vllm-arg --flag [value] ...] [--ready-timeout 900] [--compare-with <eval dir>] [--workspace DIR]
                  -- <drag eval options>

Reads the adapter's rank from its adapter_config.json on the host, then starts
"vllm serve <base> --enable-lora --lora-modules <name>=<job dir>/out/final --max-lora-rank R
--max-model-len 32768" on the job's host as a job of its own (R: the adapter's rank rounded up to one
vLLM accepts: 1, 8, 16, 32, 64, 128, 256, 320, 512). An adapter with modules_to_save (--tune-mlp,
--tune-vision), which vLLM cannot load as LoRA, is first merged into its base model on the host
(out/merged, a job of its own) and the merged model is served under the same name. --vllm-arg passes
one vLLM option: "--vllm-arg --max-model-len 16384" or "--vllm-arg=--max-model-len=16384" (a flag
without a value just before the job id: write it as --vllm-arg=--flag). ` +
    `Then it forwards its port over SSH (to the compute node on SLURM), waits until
/v1/models lists the adapter, runs drag eval against it with the options after "--" (--questions,
--ocr, --out are required there; --base-url and --model are set), stops the server, and with
--compare-with writes <out>/comparison.md and comparison.json against that evaluation.
Example: drag eval-adapter 20261126-0315-sft-curated-a1b2 --compare-with evals/base -- \\
           --questions questions.jsonl --ocr corpus/ocr_output.jsonl --out evals/sft-curated`,
  async run(argv, io, signal) {
    const dash = argv.indexOf('--');
    if (dash < 0) throw new UsageError('give drag eval options after "--" (--questions, --ocr, --out)');
    const { vllmArgs, rest } = takeVllmArgs(argv.slice(0, dash));
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        workspace: { type: 'string' },
        'base-model': { type: 'string' },
        'lora-name': { type: 'string' },
        port: { type: 'string' },
        vllm: { type: 'string' },
        'ready-timeout': { type: 'string', default: '900' },
        'compare-with': { type: 'string' },
      },
    });
    const id = positionals[0];
    if (!id) throw new UsageError('give the training job id (drag jobs ls)');
    const evalArgs = argv.slice(dash + 1);
    if (evalArgs.some((a) => a === '--base-url' || a === '--model' || a === '--agent'))
      throw new UsageError('--base-url, --model and --agent are set by eval-adapter');
    const outAt = evalArgs.indexOf('--out');
    const out = outAt >= 0 ? evalArgs[outAt + 1] : undefined;
    if (!out) throw new UsageError('--out <eval dir> is required after "--"');
    const workspace = workspaceOf(values.workspace);
    const server = await startAdapterServer({
      workspace,
      trainJobId: id,
      baseModel: values['base-model'],
      loraName: values['lora-name'],
      port: values.port ? Number(values.port) : undefined,
      vllm: values.vllm,
      vllmArgs,
      readyTimeoutMs: Number(values['ready-timeout']) * 1000,
      signal,
      onProgress: (m) => io.stderr(`${m}\n`),
    });
    let code: number;
    try {
      code = await evalCommand.run([...evalArgs, '--base-url', server.baseUrl, '--model', server.model], io, signal);
    } finally {
      io.stderr(`stopping vLLM (job ${server.job.id})\n`);
      await server.stop();
    }
    const outDir = path.resolve(out);
    await updateJobMeta(workspace, id, { evaluation: path.relative(workspace, outDir) });
    if (code === 0 && values['compare-with']) {
      const [a, b] = [await loadEvaluation(values['compare-with']), await loadEvaluation(outDir)];
      const c = compareRuns(a, b);
      const md = comparisonMarkdown(c);
      await writeFile(path.join(outDir, 'comparison.md'), `# ${c.runs[1]} vs ${c.runs[0]}\n\n${md}\n`);
      await writeFile(path.join(outDir, 'comparison.json'), `${JSON.stringify(comparisonJson(c), null, 2)}\n`);
      io.stdout(`${c.runs[1]} vs ${c.runs[0]}\n\n${md}\n`);
    }
    return code;
  },
};
