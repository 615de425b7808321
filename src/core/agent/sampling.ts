/** DRAG's sampling presets (DRAG-SPEC §3.5), frozen so no caller can change them for others (§9.23). */
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

/** A preset with overrides applied; throws on an unknown preset name. */
export function resolveSampling(name: string, overrides: Partial<Sampling> = {}): Sampling {
  const preset = SAMPLING_PRESETS[name];
  if (!preset)
    throw new Error(`unknown sampling preset "${name}"; choose from ${Object.keys(SAMPLING_PRESETS).join(', ')}`);
  const out = { ...preset };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) (out as Record<string, number>)[k] = v as number;
  return out;
}
