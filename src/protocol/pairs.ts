import { z } from 'zod';

/** Messages of the DPO Pair Editor webview (zod on both sides; no paths, no commands). */
export const PairCandidate = z.strictObject({
  query: z.string(),
  rank: z.number().int().nullable(),
  rankScore: z.number(),
  trajectoryId: z.string().nullable(),
  step: z.number().int().nullable(),
  source: z.string(),
});
export type PairCandidate = z.infer<typeof PairCandidate>;

export const PairsToHost = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ready') }),
  z.strictObject({ type: z.literal('try'), requestId: z.number().int(), query: z.string().min(1).max(2000) }),
  z.strictObject({ type: z.literal('save'), chosen: PairCandidate, rejected: PairCandidate }),
]);
export type PairsToHost = z.infer<typeof PairsToHost>;

export const HostToPairs = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('question'),
    questionId: z.string(),
    question: z.string(),
    topK: z.number().int(),
    groundTruth: z.array(z.strictObject({ file: z.string(), page: z.number().int().nullable() })),
    candidates: z.array(PairCandidate),
    proposals: z.array(z.strictObject({ chosen: z.number().int(), rejected: z.number().int(), margin: z.number() })),
    pairs: z.array(z.strictObject({ chosen: z.string(), rejected: z.string(), user: z.string() })),
  }),
  z.strictObject({ type: z.literal('tried'), requestId: z.number().int(), candidate: PairCandidate }),
  z.strictObject({ type: z.literal('notice'), message: z.string(), level: z.enum(['info', 'warning', 'error']) }),
]);
export type HostToPairs = z.infer<typeof HostToPairs>;
