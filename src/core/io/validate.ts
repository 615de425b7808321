import { promises as fsp } from 'node:fs';
import { detectKind, type FileKind, RECORD_SCHEMAS } from '../schema/kinds';
import { formatFieldPath, type LineError } from './errors';
import { indexJsonl, indexProblems } from './jsonl';

export interface ValidationReport {
  file: string;
  kind: FileKind | null;
  records: number;
  errors: LineError[];
}

/** Line (1-based) of the character at `offset` in `text`. */
function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

async function validateSummaryJson(file: string): Promise<ValidationReport> {
  const text = await fsp.readFile(file, 'utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const m = /position (\d+)/.exec((err as Error).message);
    return {
      file,
      kind: 'eval-summary',
      records: 0,
      errors: [
        {
          file,
          line: m ? lineAt(text, Number(m[1])) : 1,
          fieldPath: '',
          message: `invalid JSON: ${(err as Error).message}`,
        },
      ],
    };
  }
  const parsed = RECORD_SCHEMAS['eval-summary'].safeParse(value);
  if (parsed.success) return { file, kind: 'eval-summary', records: 1, errors: [] };
  return {
    file,
    kind: 'eval-summary',
    records: 0,
    errors: parsed.error.issues.map((i) => ({ file, line: 1, fieldPath: formatFieldPath(i.path), message: i.message })),
  };
}

/**
 * Checks every line of a DRAG file against its schema. `kind: 'auto'` decides from the first JSON
 * object line. Bad lines are reported and skipped; the rest of the file is still checked.
 */
export async function validateFile(
  file: string,
  kind: FileKind | 'auto' = 'auto',
  signal?: AbortSignal,
): Promise<ValidationReport> {
  if (kind === 'eval-summary' || (kind === 'auto' && file.endsWith('.json'))) return validateSummaryJson(file);
  let resolved: FileKind | null = kind === 'auto' ? null : kind;
  const index = await indexJsonl(
    file,
    (value) => {
      if (!resolved) {
        resolved = detectKind(value);
        if (!resolved) {
          return {
            ok: false,
            problems: [
              {
                fieldPath: '',
                message:
                  'cannot tell the file kind from this record ' +
                  '(expected an OCR page, question, trajectory or evaluation record); pass --kind',
              },
            ],
          };
        }
      }
      const parsed = RECORD_SCHEMAS[resolved].safeParse(value);
      if (parsed.success) return { ok: true, summary: null };
      return {
        ok: false,
        problems: parsed.error.issues
          .slice(0, 10)
          .map((i) => ({ fieldPath: formatFieldPath(i.path), message: i.message })),
      };
    },
    undefined,
    { signal },
  );
  return { file, kind: resolved, records: index.summaries.length, errors: indexProblems(index) };
}
