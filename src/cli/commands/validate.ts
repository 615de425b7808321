import { parseArgs } from 'node:util';
import { formatLineError } from '../../core/io/errors';
import { validateFile } from '../../core/io/validate';
import type { FileKind } from '../../core/schema/kinds';
import { type CliCommand, UsageError } from '../args';

const KINDS = ['auto', 'ocr', 'questions', 'trajectories', 'eval', 'eval-summary'] as const;

export const validateCommand: CliCommand = {
  name: 'validate',
  summary: 'check a DRAG file (OCR, questions, trajectories, evaluation) line by line',
  usage: `drag validate <file> [--kind ${KINDS.join('|')}] [--json]

Prints each bad line as "file:line: field: message" and exits 1 if there is any, 0 otherwise.
Bad lines are skipped and the rest of the file is still checked.`,
  async run(argv, io, signal) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { kind: { type: 'string', default: 'auto' }, json: { type: 'boolean', default: false } },
    });
    if (positionals.length !== 1) throw new UsageError('expected exactly one file');
    const kind = values.kind as (typeof KINDS)[number];
    if (!KINDS.includes(kind)) throw new UsageError(`--kind must be one of ${KINDS.join(', ')}`);
    const file = positionals[0];
    const report = await validateFile(file, kind as FileKind | 'auto', signal);
    if (values.json) {
      io.stdout(`${JSON.stringify(report)}\n`);
    } else {
      for (const error of report.errors) io.stdout(`${formatLineError(error)}\n`);
      const lines =
        report.errors.length === 0
          ? 'no problems'
          : `${report.errors.length} problem${report.errors.length === 1 ? '' : 's'}`;
      io.stderr(
        `${file}: ${report.kind ?? 'unknown kind'}, ` +
          `${report.records} valid record${report.records === 1 ? '' : 's'}, ${lines}\n`,
      );
    }
    return report.errors.length > 0 ? 1 : 0;
  },
};
