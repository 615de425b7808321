/**
 * DRAG's sampling presets, as its collector defines them (all with `max_tokens` 4096), frozen: the
 * original shares one mutable copy, so one caller's change leaked into every other.
 */
export interface Sampling {
  temperature: number;
  top_p: number;
  repetition_penalty: number;
  max_tokens: number;
}

export const SAMPLING_PRESETS: Readonly<Record<string, Readonly<Sampling>>> = Object.freeze({
  default: Object.freeze({ temperature: 0.7, top_p: 0.95, repetition_penalty: 1.0, max_tokens: 4096 }),
  greedy: Object.freeze({ temperature: 0.0, top_p: 1.0, repetition_penalty: 1.0, max_tokens: 4096 }),
  low_temp: Object.freeze({ temperature: 0.3, top_p: 0.9, repetition_penalty: 1.0, max_tokens: 4096 }),
  high_temp: Object.freeze({ temperature: 1.0, top_p: 0.95, repetition_penalty: 1.0, max_tokens: 4096 }),
  creative: Object.freeze({ temperature: 1.2, top_p: 0.95, repetition_penalty: 1.0, max_tokens: 4096 }),
  diverse: Object.freeze({ temperature: 0.9, top_p: 0.98, repetition_penalty: 1.1, max_tokens: 4096 }),
});

/**
 * `max_tokens` for Thinking models when none is given: their reasoning alone often runs past DRAG's
 * 4,096, and a reply cut there is no answer (Qwen's model cards suggest budgets far above it).
 */
export const THINKING_MAX_TOKENS = 16_384;

/** A Thinking model by its served name (Qwen3-VL-8B-Thinking and the like). */
export const isThinkingModel = (model: string): boolean => /thinking/i.test(model);

/**
 * A preset with overrides applied; throws on an unknown preset name. For a Thinking `model`, the
 * preset's `max_tokens` is raised to {@link THINKING_MAX_TOKENS} unless overridden.
 */
export function resolveSampling(name: string, overrides: Partial<Sampling> = {}, model?: string): Sampling {
  const preset = SAMPLING_PRESETS[name];
  if (!preset)
    throw new Error(`unknown sampling preset "${name}"; choose from ${Object.keys(SAMPLING_PRESETS).join(', ')}`);
  const out = { ...preset };
  if (model && isThinkingModel(model)) out.max_tokens = Math.max(out.max_tokens, THINKING_MAX_TOKENS);
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) (out as Record<string, number>)[k] = v as number;
  return out;
}
