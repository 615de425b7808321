/**
 * Whoosh 2.7's StandardAnalyzer exactly as DRAG used it (docs/drag-compatibility.md#search-engine), for index and
 * query: tokens are matches of `\w+(\.?\w+)*` with Python's Unicode `\w` (letters, numbers, underscore),
 * lower-cased, then tokens shorter than 2 characters and stop words are dropped and positions
 * renumbered. No stemming.
 */
export const STOP_WORDS: ReadonlySet<string> = new Set([
  'a',
  'an',
  'and',
  'are',
  'as',
  'at',
  'be',
  'by',
  'can',
  'for',
  'from',
  'have',
  'if',
  'in',
  'is',
  'it',
  'may',
  'not',
  'of',
  'on',
  'or',
  'tbd',
  'that',
  'the',
  'this',
  'to',
  'us',
  'we',
  'when',
  'will',
  'with',
  'yet',
  'you',
  'your',
]);

/** Python's `\w` for str patterns: Unicode letters and numbers, and `_` (not combining marks). */
const TOKEN = /[\p{L}\p{N}_]+(?:\.?[\p{L}\p{N}_]+)*/gu;

/** Code points, not UTF-16 units, as Python's len() counts. */
function charLength(token: string): number {
  let n = 0;
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff) n++; // count everything but low surrogates
  }
  return n;
}

/** The analysed tokens of `text`, in order; a token's index is its (renumbered) position. */
export function analyze(text: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = TOKEN.exec(text)) !== null) {
    const token = m[0].toLowerCase();
    if (token.length < 2 || (token.length < 4 && charLength(token) < 2) || STOP_WORDS.has(token)) continue;
    out.push(token);
  }
  return out;
}

/** Like {@link analyze}, with each token's character span in `text` (for snippets and highlights). */
export function analyzeWithSpans(text: string): Array<{ token: string; start: number; end: number }> {
  const out: Array<{ token: string; start: number; end: number }> = [];
  const re = new RegExp(TOKEN.source, 'gu');
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const token = m[0].toLowerCase();
    if (token.length < 2 || (token.length < 4 && charLength(token) < 2) || STOP_WORDS.has(token)) continue;
    out.push({ token, start: m.index, end: m.index + m[0].length });
  }
  return out;
}
