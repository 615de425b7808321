import { z } from 'zod';

/** An OpenAI-compatible endpoint (vLLM). The API key never lives here: it comes from an env var or SecretStorage. */
export const Endpoint = z.strictObject({
  baseUrl: z.string().url().describe('OpenAI-compatible base URL, e.g. http://localhost:8001/v1'),
  model: z.string().optional().describe('Default model or LoRA adapter name served at this endpoint'),
  apiKeyEnv: z.string().optional().describe('Name of the environment variable holding the API key'),
});

/** A sampling preset (DRAG-SPEC §3.5). */
export const SamplingPreset = z.strictObject({
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  repetition_penalty: z.number().gt(0).optional(),
  max_tokens: z.number().int().positive().optional(),
});

/** A GPU host for remote jobs (SSH, SLURM or this machine). */
export const Host = z.strictObject({
  ssh: z.string().optional().describe('SSH alias from ~/.ssh/config, or user@host'),
  port: z.number().int().min(1).max(65535).optional(),
  workdir: z.string().describe('Remote folder in which each job gets its own directory'),
  python: z.string().optional().describe('Python interpreter on the host'),
  vllm: z.string().optional().describe('vLLM command on the host, for evaluating adapters (default: vllm)'),
  launcher: z.enum(['ssh', 'slurm', 'local']).default('ssh'),
  slurm: z
    .strictObject({
      partition: z.string().optional(),
      gpus: z.number().int().min(0).optional(),
      cpus: z.number().int().min(1).optional(),
      mem: z.string().optional(),
      time: z.string().optional(),
      account: z.string().optional(),
      extra: z.array(z.string()).optional(),
    })
    .optional(),
  env: z.record(z.string(), z.string()).optional(),
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
  hosts: z.record(z.string(), Host).optional(),
});
export type DragConfig = z.infer<typeof DragConfig>;

/** The JSON Schema the editor uses to complete and check `drag.config.json` (generated at build time). */
export function dragConfigJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(DragConfig, { io: 'input', target: 'draft-7' }) as Record<string, unknown>;
  return { ...schema, title: 'DRAG Studio workspace configuration (drag.config.json)' };
}
