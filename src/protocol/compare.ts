import { z } from 'zod';

/** Messages of the Evaluation Comparison webview (zod on both sides; no paths, no commands). */
const Num = z.number().nullable();
export const CompareMetric = z.strictObject({
  key: z.string(),
  label: z.string(),
  higherIsBetter: z.boolean(),
  a: Num,
  b: Num,
  delta: Num,
  relative: Num,
  ci95: z.tuple([z.number(), z.number()]).nullable(),
  p: Num,
});

export const HostToCompare = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('comparison'),
    runs: z.tuple([z.string(), z.string()]),
    paired: z.number().int(),
    metrics: z.array(CompareMetric),
    questions: z.strictObject({
      wins: z.array(z.strictObject({ id: z.string(), question: z.string() })),
      losses: z.array(z.strictObject({ id: z.string(), question: z.string() })),
      ties: z.array(z.strictObject({ id: z.string(), question: z.string() })),
    }),
    charts: z
      .strictObject({
        hitAtK: z.array(z.strictObject({ k: z.number().int(), a: z.number(), b: z.number() })),
        rankDistribution: z.strictObject({
          labels: z.array(z.string()),
          a: z.array(z.number()),
          b: z.array(z.number()),
        }),
        iterations: z.strictObject({ labels: z.array(z.string()), a: z.array(z.number()), b: z.array(z.number()) }),
        scatter: z.array(z.strictObject({ id: z.string(), a: Num, b: Num })),
      })
      .nullable(),
  }),
  z.strictObject({ type: z.literal('notice'), message: z.string() }),
]);
export type HostToCompare = z.infer<typeof HostToCompare>;

export const CompareToHost = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ready') }),
  z.strictObject({ type: z.literal('openQuestion'), id: z.string().max(500) }),
  z.strictObject({ type: z.literal('export'), format: z.enum(['markdown', 'html']) }),
]);
export type CompareToHost = z.infer<typeof CompareToHost>;
