import { shQuote } from './quote';
import { FINAL_STATES, type JobRecord, type JobStatus, probeJob, progressFileWord } from './engine';

/** One point of the loss curves, from a trainer_log.jsonl line. */
export interface LossPoint {
  step: number;
  loss: number | null;
  evalLoss: number | null;
  lr: number | null;
  epoch: number | null;
}

export interface GpuSample {
  index: number;
  name: string;
  utilization: number;
  memoryUsedMiB: number;
  memoryTotalMiB: number;
}

/** Everything the Training Monitor shows, gathered with the job's status in one round trip to the host. */
export interface MonitorSnapshot {
  /** The job's record, as stored after this check. */
  record: JobRecord;
  status: JobStatus;
  points: LossPoint[];
  /** null when the host has no nvidia-smi (or the job is finished). */
  gpus: GpuSample[] | null;
  logTail: string;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** Loss curve points from trainer_log.jsonl text; half-written or foreign lines are skipped. */
export function parseTrainerLog(text: string): LossPoint[] {
  const points: LossPoint[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let v: Record<string, unknown>;
    try {
      v = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const step = num(v.current_steps);
    if (step === null) continue;
    points.push({ step, loss: num(v.loss), evalLoss: num(v.eval_loss), lr: num(v.learning_rate), epoch: num(v.epoch) });
  }
  return points;
}

/** `nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits` lines. */
export function parseNvidiaSmi(text: string): GpuSample[] {
  const out: GpuSample[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(',').map((s) => s.trim());
    if (f.length < 5 || !/^\d+$/.test(f[0]!)) continue;
    out.push({
      index: Number(f[0]),
      name: f[1]!,
      utilization: Number(f[2]) || 0,
      memoryUsedMiB: Number(f[3]) || 0,
      memoryTotalMiB: Number(f[4]) || 0,
    });
  }
  return out;
}

const MARK = '@@DRAG-SECTION@@';
const SMI = 'nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits';

/**
 * The GPU query: on SLURM the GPUs are on the job's compute node, not the login node, so it runs
 * inside the job's allocation (`srun --overlap`, which shares the job's GPUs and does not queue).
 */
export function gpuQuery(slurmJobId: string | undefined): string {
  if (slurmJobId)
    return `timeout 20 srun --jobid=${shQuote(slurmJobId)} --overlap --ntasks=1 --quiet ${SMI} 2>/dev/null`;
  return `command -v nvidia-smi >/dev/null 2>&1 && ${SMI} 2>/dev/null`;
}

export async function monitorSnapshot(
  workspace: string,
  id: string,
  options: { tailBytes?: number; signal?: AbortSignal } = {},
): Promise<MonitorSnapshot> {
  // GPUs are not asked for once the job is known to be finished (and not shown for one that just finished).
  const sectionsScript = (record: JobRecord) => `pf=${progressFileWord(record)}
echo '${MARK}log'
[ -n "$pf" ] && [ -f "$pf" ] && cat "$pf"
echo '${MARK}gpu'
${record.last && FINAL_STATES.has(record.last.state) ? ':' : gpuQuery(record.slurmJobId)}
echo '${MARK}tail'
[ -f job.log ] && tail -c ${options.tailBytes ?? 6000} job.log`;
  const { record, status, extra } = await probeJob(workspace, id, { extra: sectionsScript, signal: options.signal });
  const sections = new Map<string, string>();
  for (const part of extra.split(MARK).slice(1)) {
    const nl = part.indexOf('\n');
    sections.set(part.slice(0, nl), part.slice(nl + 1));
  }
  const gpuText = sections.get('gpu') ?? '';
  return {
    record,
    status,
    points: parseTrainerLog(sections.get('log') ?? ''),
    gpus: gpuText.trim() && !FINAL_STATES.has(status.state) ? parseNvidiaSmi(gpuText) : null,
    logTail: sections.get('tail') ?? '',
  };
}
