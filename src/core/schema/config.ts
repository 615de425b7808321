import { z } from 'zod';

/** An OpenAI-compatible endpoint (vLLM). The API key never lives here: it comes from an env var or SecretStorage. */
export const Endpoint = z.strictObject({
  baseUrl: z.string().url().describe('OpenAI-compatible base URL, e.g. http://localhost:8001/v1'),
  model: z.string().optional().describe('Default model or LoRA adapter name served at this endpoint'),
  apiKeyEnv: z.string().optional().describe('Name of the environment variable holding the API key'),
});

/** A sampling preset: the temperature, top-p, repetition penalty and output budget sent with each chat request. */
export const SamplingPreset = z.strictObject({
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  repetition_penalty: z.number().gt(0).optional(),
  max_tokens: z.number().int().positive().optional(),
});

/** Control characters (newlines, tabs, escape sequences, NUL) have no place in a name or a path we pass on. */
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Text without control characters: names, paths and words that reach a shell, ssh or a log line. */
export const SafeText = z.string().refine((v) => !CONTROL.test(v), {
  message: 'contains a control character (newline, tab or escape): remove it',
});

/** A word that a program reads as an argument, never as an option (`-oProxyCommand=…` would run a command). */
export const NotAnOption = SafeText.refine((v) => !v.startsWith('-'), {
  message: 'must not start with "-" (the program would read it as an option)',
});

/** A model name or path (a Hugging Face id such as Qwen/Qwen3-VL-8B-Thinking, or a folder on the host). */
export const ModelName = NotAnOption.refine((v) => v.trim() !== '', { message: 'is empty' });

/** The name of a host in `hosts` (used in job records, messages and `--host`). */
export const HostName = NotAnOption.refine((v) => v.trim() !== '', { message: 'is empty' });

/** SLURM settings of a host: what `sbatch` (and the `srun` of `drag hosts check`) ask for. */
export const SlurmSettings = z.strictObject({
  partition: SafeText.optional().describe('Partition (queue) to submit to (sbatch --partition)'),
  nodes: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe('Nodes per job (sbatch --nodes); above 1 the trainer runs under torchrun on every node'),
  gpus: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe('GPUs per node (sbatch --gres=gpu:N); torchrun starts one process per GPU'),
  cpus: z.number().int().min(1).optional().describe('CPU cores per task (sbatch --cpus-per-task)'),
  mem: SafeText.optional().describe('Memory per node, e.g. "64G" (sbatch --mem)'),
  time: SafeText.optional().describe(
    'Time limit, e.g. "12:00:00" (sbatch --time); training writes a checkpoint 120 s before it',
  ),
  account: SafeText.optional().describe('Account to charge (sbatch --account)'),
  extra: z
    .array(SafeText)
    .optional()
    .describe(
      'More sbatch options, each one word, e.g. "--qos=high" or "--constraint=a100"; ' +
        'also given to srun by drag hosts check',
    ),
});

/** A GPU host for remote jobs (SSH, SLURM or this machine). */
export const Host = z.strictObject({
  ssh: NotAnOption.optional().describe('SSH alias from ~/.ssh/config, or user@host (never an ssh option)'),
  port: z.number().int().min(1).max(65535).optional().describe('SSH port, when not the one ~/.ssh/config gives'),
  workdir: SafeText.refine((v) => v.trim() !== '', { message: 'is empty' }).describe(
    'Folder on the host in which each job gets its own directory, e.g. "~/drag-jobs" or a scratch path',
  ),
  python: NotAnOption.optional().describe(
    'Python interpreter on the host (default python3); the setup lines run first, so a venv\'s "python" works',
  ),
  vllm: NotAnOption.optional().describe('vLLM command on the host, for evaluating adapters (default: vllm)'),
  setup: z
    .array(SafeText.refine((v) => v.trim() !== '', { message: 'is empty' }))
    .optional()
    .describe(
      "Shell lines run in the job's shell before every job command and every host check, in order, " +
        'e.g. ["module load cuda/12.4", "source ~/venvs/drag/bin/activate"]; ' +
        'a failing line ends the job with its text as the reason',
    ),
  launcher: z
    .enum(['ssh', 'slurm', 'local'])
    .default('ssh')
    .describe(
      '"ssh": detached process on the host; "slurm": sbatch from the host (a login node); "local": this machine',
    ),
  slurm: SlurmSettings.optional().describe('SLURM settings (launcher "slurm")'),
  env: z
    .record(z.string(), SafeText)
    .optional()
    .describe('Environment variables set for every job on this host, e.g. {"HF_HOME": "/scratch/hf"}'),
});

/**
 * `drag.config.json`, the workspace's own settings. Every path is relative to the workspace folder.
 * Everything is optional: a workspace with no config works by the conventional layout.
 */
export const DragConfig = z.strictObject({
  $schema: z.string().optional(),
  corpus: z
    .strictObject({
      pdfDir: z.string().default('corpus/pdfs').describe('Folder of the corpus PDFs'),
      ocrFile: z.string().default('corpus/ocr_output.jsonl').describe('DRAG OCR file: one line per page'),
      cacheDir: z.string().default('corpus/.cache').describe('Search index and page image cache'),
    })
    .partial()
    .optional(),
  questions: z.string().optional().describe('Question set (JSONL) for collection and evaluation'),
  runs: z.array(z.string()).optional().describe('Trajectory files or globs; default runs/*/trajectories.jsonl'),
  search: z
    .strictObject({ topK: z.number().int().min(1).max(100).default(3) })
    .partial()
    .optional(),
  agent: z
    .strictObject({
      maxIterations: z.number().int().min(1).max(50).default(5),
      samplingPreset: z.string().default('default'),
    })
    .partial()
    .optional(),
  endpoints: z.record(z.string(), Endpoint).optional(),
  presets: z.record(z.string(), SamplingPreset).optional(),
  hosts: z
    .record(z.string(), Host)
    // Names checked here rather than as record keys, so that the message says what is wrong with one.
    .superRefine((hosts, ctx) => {
      for (const name of Object.keys(hosts)) {
        const ok = HostName.safeParse(name);
        if (!ok.success)
          ctx.addIssue({ code: 'custom', path: [name], message: `host name ${ok.error.issues[0]?.message}` });
      }
    })
    .optional()
    .describe('GPU hosts for training and serving, by name: {"gpu": {"ssh": "gpu-box", "workdir": "~/drag-jobs"}}'),
});
export type DragConfig = z.infer<typeof DragConfig>;

/** The JSON Schema the editor uses to complete and check `drag.config.json` (generated at build time). */
export function dragConfigJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(DragConfig, { io: 'input', target: 'draft-7' }) as Record<string, unknown>;
  return { ...schema, title: 'DRAG Studio workspace configuration (drag.config.json)' };
}
