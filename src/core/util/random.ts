/**
 * mulberry32: a small seeded PRNG, the one source of seeded randomness (splits, bootstrap
 * resamples, the keyword agent's sampling), so the same seed gives the same result everywhere and
 * is easy to port.
 */
/** 32-bit FNV-1a of a string: a stable seed or bucket for a text, the same on every platform. */
export function fnv1a(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
