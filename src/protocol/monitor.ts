import { z } from 'zod';

/** Messages of the Training Monitor webview (zod on both sides; no paths, no commands). */
const Num = z.number().nullable();
export const HostToMonitor = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('snapshot'),
    job: z.strictObject({
      id: z.string(),
      name: z.string(),
      host: z.string(),
      launcher: z.string(),
      state: z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']),
      reason: z.string().nullable(),
      exitCode: Num,
      submittedAt: z.string(),
      startedAt: z.string().nullable(),
      finishedAt: z.string().nullable(),
      slurmJobId: z.string().nullable(),
      task: z.string().nullable(),
      dataset: z.string().nullable(),
      model: z.string().nullable(),
    }),
    progress: z.strictObject({
      step: Num,
      total: Num,
      percentage: Num,
      epoch: Num,
      elapsed: z.string().nullable(),
      remaining: z.string().nullable(),
    }),
    points: z.array(z.strictObject({ step: z.number(), loss: Num, evalLoss: Num, lr: Num, epoch: Num })),
    gpus: z
      .array(
        z.strictObject({
          index: z.number(),
          name: z.string(),
          utilization: z.number(),
          memoryUsedMiB: z.number(),
          memoryTotalMiB: z.number(),
        }),
      )
      .nullable(),
    logTail: z.string(),
    adapterFetched: z.boolean(),
    canFetchAdapter: z.boolean(),
    /** A finished training job: "Evaluate this adapter" is offered. */
    canEvaluate: z.boolean(),
    checkedAt: z.string(),
  }),
  z.strictObject({ type: z.literal('notice'), message: z.string(), level: z.enum(['info', 'error']) }),
]);
export type HostToMonitor = z.infer<typeof HostToMonitor>;

export const MonitorToHost = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ready') }),
  z.strictObject({ type: z.literal('cancel') }),
  z.strictObject({ type: z.literal('fetchAdapter') }),
  z.strictObject({ type: z.literal('evaluate') }),
  z.strictObject({ type: z.literal('refresh') }),
  z.strictObject({ type: z.literal('openLog') }),
]);
export type MonitorToHost = z.infer<typeof MonitorToHost>;
