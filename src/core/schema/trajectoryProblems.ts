import { formatFieldPath } from '../io/errors';
import type * as TrajectorySchema from './trajectory';
import type { Trajectory } from './trajectory';

/**
 * zod's verdict on a value that failed the generated check (`isTrajectory`): its first `max`
 * problems, or the trajectory zod made of it if it accepts the value after all. zod is loaded here,
 * at the first such line, not at start-up: loading it is most of `drag process`'s start-up time,
 * and most files have no bad line (the CLI build gives the schema a bundle of its own).
 */
export function explainTrajectory(
  value: unknown,
  max = 5,
): { ok: true; data: Trajectory } | { ok: false; problems: Array<{ fieldPath: string; message: string }> } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Trajectory } = require('./trajectory') as typeof TrajectorySchema;
  const p = Trajectory.safeParse(value);
  return p.success
    ? { ok: true, data: p.data }
    : {
        ok: false,
        problems: p.error.issues.slice(0, max).map((i) => ({ fieldPath: formatFieldPath(i.path), message: i.message })),
      };
}
