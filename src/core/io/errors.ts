/** A problem with one line of an input file: enough to jump to it and fix it. */
export interface LineError {
  file: string;
  /** 1-based line number. */
  line: number;
  /** Dotted path of the offending field (`iterations[2].results[0].rank`), or '' for the whole line. */
  fieldPath: string;
  message: string;
}

/** `file:line: field: message`, the format `drag validate` prints and problem matchers parse. */
export function formatLineError(error: LineError): string {
  return `${error.file}:${error.line}: ${error.fieldPath || '(line)'}: ${error.message}`;
}

/** Formats a zod issue path as `a.b[2].c`. */
export function formatFieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}
