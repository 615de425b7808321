import { analyze } from '../search/analyzer';
import type { WhooshCompatibleEngine } from '../search/engine';
import { fnv1a, mulberry32 } from '../util/random';
import type { ChatClient, ChatReply, ChatRequest } from './client';

/** Question words that carry no retrieval signal. */
export const QUESTION_WORDS = new Set([
  'what',
  'which',
  'who',
  'whom',
  'whose',
  'how',
  'many',
  'much',
  'does',
  'did',
  'do',
  'was',
  'were',
  'has',
  'had',
  'give',
  'response',
  'question',
  'answer',
  'based',
  'using',
  'shown',
  'provide',
  'assume',
  'you',
  'please',
  'than',
]);

/**
 * The embedded keyword agent: no model server, same protocol (it answers chat requests with tool
 * calls), so the one agent loop runs it and its trajectories carry real ranks. First query: the
 * question's keywords ranked by corpus IDF; when a search finds nothing it reformulates (drops the
 * weakest term, then ORs the terms, then tries a bigram phrase); once pages come back it answers
 * with the best-matching sentence of the top page and cites it. Temperature turns into seeded
 * noise on the term ranking, so several samples of a question differ (for DPO mining).
 */
/** Scores a question's candidate terms (higher = more likely to make the ground-truth page rank first). */
export type TermScorer = (question: string, tokens: string[], idf: (t: string) => number) => Map<string, number>;

/** The terms of a question's capitalised words (names), past its first word (capitalised anyway). */
export function capitalisedTerms(question: string): Set<string> {
  return new Set(
    question
      .split(/\s+/)
      .slice(1)
      .filter((w) => /^\p{Lu}/u.test(w))
      .flatMap((w) => analyze(w)),
  );
}

/** The keyword agent's own heuristic: corpus IDF, with a boost for names and numbers. */
export const idfScorer: TermScorer = (question, tokens, idf) => {
  // Capitalised words (names) and numbers (years, amounts) are what financial questions hinge on.
  const capitalised = capitalisedTerms(question);
  return new Map(tokens.map((t) => [t, idf(t) * (capitalised.has(t) ? 1.5 : 1) * (/^\d/.test(t) ? 1.3 : 1)]));
};

export class KeywordAgentClient implements ChatClient {
  readonly label: string;
  private calls = 0;

  constructor(
    private readonly engine: WhooshCompatibleEngine,
    private readonly pageText: (file: string, page: number) => Promise<string | null>,
    private readonly seed = 0,
    private readonly scorer: TermScorer = idfScorer,
    private readonly queryLength = 3,
    label = 'keyword agent (embedded)',
  ) {
    this.label = label;
  }

  /** Candidate queries for a question, in the order the agent tries them. */
  plan(question: string, temperature: number): string[] {
    const random = mulberry32(fnv1a(question) ^ Math.imul(this.seed + 1, 0x9e3779b1));
    // Words the corpus never uses would make an AND query empty.
    const tokens = [...new Set(analyze(question))].filter(
      (t) => !QUESTION_WORDS.has(t) && this.engine.docFrequency(t) > 0,
    );
    const scores = this.scorer(question, tokens, (t) => this.engine.termIdf(t));
    // Temperature is noise relative to the spread of this question's scores, so sampling explores
    // whatever the scale (IDF up to ~8, a writer's logits): at 1.2 ("creative") a word can move by up
    // to 60% of the spread, enough for the second tier of words to lead some samples.
    const finite = tokens.map((t) => scores.get(t) ?? 0).filter(Number.isFinite);
    const spread = finite.length > 1 ? Math.max(...finite) - Math.min(...finite) || 1 : 1;
    const ranked = tokens
      .map((t) => ({
        t,
        score: (scores.get(t) ?? 0) + (temperature > 0 ? (random() - 0.5) * temperature * spread : 0),
      }))
      .sort((a, b) => b.score - a.score)
      .map((x) => x.t);
    const top = ranked.slice(0, this.queryLength);
    const plans: string[] = [];
    for (let n = top.length; n >= 2; n--) plans.push(top.slice(0, n).join(' '));
    if (top.length >= 2) plans.push(top.join(' OR '));
    const words = question
      .split(/\s+/)
      .map((w) => w.replace(/[^\p{L}\p{N}.-]/gu, ''))
      .filter(Boolean);
    for (let i = 0; i + 1 < words.length && plans.length < 8; i++) {
      const pair = analyze(`${words[i]} ${words[i + 1]}`);
      if (pair.length === 2 && !QUESTION_WORDS.has(pair[0]) && !QUESTION_WORDS.has(pair[1]))
        plans.push(`"${words[i]} ${words[i + 1]}"`);
    }
    if (plans.length === 0 && ranked.length) plans.push(ranked[0]);
    return [...new Set(plans)];
  }

  async complete(request: ChatRequest): Promise<ChatReply> {
    const started = performance.now();
    const userFirst = request.messages.find((m) => m.role === 'user');
    const question = typeof userFirst?.content === 'string' ? userFirst.content : '';
    const searches: Array<{ query: string; found: number }> = [];
    const pendingQueries = new Map<string, string>();
    for (const m of request.messages) {
      if (m.role === 'assistant')
        for (const c of m.tool_calls ?? [])
          if (c.function.name === 'search_documents')
            pendingQueries.set(c.id, (JSON.parse(c.function.arguments) as { query: string }).query);
      if (m.role === 'tool' && pendingQueries.has(m.tool_call_id)) {
        const found = Number(/Found (\d+)/.exec(m.content)?.[1] ?? 0);
        searches.push({ query: pendingQueries.get(m.tool_call_id)!, found });
      }
    }
    const forced = typeof request.tool_choice === 'object' && request.tool_choice.function.name === 'provide_answer';
    const plans = this.plan(question, request.temperature ?? 0);
    const last = searches[searches.length - 1];
    const id = `call_kw_${++this.calls}`;
    const reply = (name: string, args: unknown, thought: string): ChatReply => ({
      content: `<think>${thought}</think>`,
      reasoning_content: null,
      tool_calls: [{ id, type: 'function', function: { name, arguments: JSON.stringify(args) } }],
      finish_reason: 'tool_calls',
      usage: null,
      latency_ms: performance.now() - started,
      attempts: 1,
    });
    if ((last && last.found > 0) || forced || searches.length >= plans.length) {
      const answer = last && last.found > 0 ? await this.answer(last.query, question) : null;
      return reply(
        'provide_answer',
        answer ?? { answer: [], citations: [] },
        answer ? `The top page for "${last!.query}" should hold the answer.` : 'No search found anything useful.',
      );
    }
    const next = plans[searches.length];
    return reply(
      'search_documents',
      { query: next },
      searches.length === 0
        ? `Keywords ranked by corpus IDF: ${plans[0]}`
        : `"${last!.query}" found nothing; reformulating.`,
    );
  }

  private async answer(
    query: string,
    question: string,
  ): Promise<{ answer: string[]; citations: Array<{ file: string; page: number }> } | null> {
    const [top] = this.engine.search(query, 1);
    if (!top) return null;
    const citations = [{ file: top.file, page: top.page_number }];
    const text = (await this.pageText(top.file, top.page_number)) ?? '';
    // A running header or footer (the same words on the next or previous page, numbers aside)
    // matches every question about the document: it is never the answer. Lines of numbers only
    // (table rows: "2022 480.5" has the shape of many rows) are never taken for one.
    const neighbour =
      (await this.pageText(top.file, top.page_number + 1)) ??
      (top.page_number > 1 ? await this.pageText(top.file, top.page_number - 1) : null) ??
      '';
    const shape = (line: string) => line.replace(/\d+/g, '#').replace(/\s+/g, ' ').trim();
    const repeated = new Set(
      neighbour
        .split(/\n+/)
        .map(shape)
        .filter((l) => /\p{L}{3}/u.test(l)),
    );
    const asked = new Set(analyze(question));
    const terms = new Set([...this.engine.queryTerms(query), ...[...asked].filter((t) => !QUESTION_WORDS.has(t))]);
    const lines = text.split(/\n+/).filter((line) => !repeated.has(shape(line)));
    // "Which model has the highest rated power?": the label of the table row with the extreme value.
    const superlative = SUPERLATIVE.exec(question);
    const row = superlative ? extremeRow(lines, LOWEST.test(superlative[1])) : null;
    if (row) return { answer: [row], citations };
    // The sentence that matches most of the question's words among those that add something to it
    // (a number when a quantity is asked); a title or table header that only repeats the question
    // comes after every such sentence; between equal matches, the one that adds fewer words.
    const quantity = QUANTITY.test(question);
    let best = '';
    let bestLine = -1;
    let bestScore = -Infinity;
    lines.forEach((line, i) => {
      for (const sentence of line.split(/(?<=[.!?])\s+/)) {
        if (!sentence.trim()) continue;
        const extra = beyondQuestion(sentence, asked).extra;
        const informative = extra.length > 0 && (!quantity || extra.some((w) => /\d/.test(w)));
        const score =
          new Set(analyze(sentence).filter((t) => terms.has(t))).size + (informative ? 1000 : 0) - extra.length / 1000;
        if (score > bestScore) {
          best = sentence.trim();
          bestLine = i;
          bestScore = score;
        }
      }
    });
    let value = best ? extractValue(best, question, asked) : '';
    // A bare number out of a table row whose column header says "(%)" is a percentage.
    if (/^-?\d[\d,]*(\.\d+)?$/.test(value) && percentColumn(lines, bestLine)) value += '%';
    return { answer: value ? [value.slice(0, 300)] : [], citations };
  }
}

/**
 * Whether the table row at `row` sits under a header that marks its values as percentages: the
 * nearest line above it with no digits (the rows between have digits) says "(%)" or "in %".
 */
function percentColumn(lines: readonly string[], row: number): boolean {
  for (let i = row - 1; i >= 0 && i >= row - 12; i--) {
    if (!/\d/.test(lines[i])) return /\(%\)|\bin %|percent\)/i.test(lines[i]);
  }
  return false;
}

/** Questions that ask for a quantity: their answer is a number. */
const QUANTITY = /\b(how (many|much)|amount|revenue|margin|rate|ratio|number|percent(age)?|total|value|price|cost)\b/i;

/**
 * Questions that ask which item of a table is the extreme one, and the words that mean the lowest
 * ("most" and "least" are left out: "the most important risk", "at least").
 */
const SUPERLATIVE = /\b(highest|largest|biggest|greatest|maximum|lowest|smallest|fewest|minimum|worst)\b/i;
const LOWEST = /^(lowest|smallest|fewest|minimum|worst)$/i;

/**
 * The label of the table row with the highest (or lowest) value among a page's lines: a row is a
 * short label with a letter in it ("AR-211", "Las Vegas Strip") followed by a number ("489",
 * "$ 1,577", "(12.5)", "24.1%") and nothing but numbers; its first number is its value. Null when
 * fewer than two rows.
 */
export function extremeRow(lines: readonly string[], lowest: boolean): string | null {
  const rows: Array<{ label: string; value: number }> = [];
  for (const line of lines) {
    const tokens = line.trim().split(/\s+/);
    const i = tokens.findIndex((t) => NUMBER.test(t));
    // Only numbers after the label (a sentence goes on with words).
    if (i < 1 || i > 6 || !tokens.slice(i).every((t) => NUMBER.test(t) || /^[$%—–-]$/.test(t))) continue;
    const label = tokens
      .slice(0, i)
      .filter((t) => t !== '$')
      .join(' ');
    // A total is not one of the items compared.
    if (!/\p{L}/u.test(label) || /[.!?:;]$/.test(label) || /^total\b/i.test(label)) continue;
    const raw = tokens[i];
    const value = Number(raw.replace(/[$,%()]/g, '')) * (raw.startsWith('(') ? -1 : 1);
    if (Number.isFinite(value)) rows.push({ label, value });
  }
  if (rows.length < 2) return null;
  return rows.reduce((best, r) => ((lowest ? r.value < best.value : r.value > best.value) ? r : best)).label;
}
const NUMBER = /^\(?-?\$?\d[\d,]*(\.\d+)?%?\)?$/;

/** A sentence's words (punctuation trimmed), and those that are not the question's own words. */
function beyondQuestion(sentence: string, asked: ReadonlySet<string>): { words: string[]; extra: string[] } {
  const words = sentence
    .split(/\s+/)
    .map((w) => w.replace(/^[^\p{L}\p{N}$€£(-]+|[^\p{L}\p{N}%)]+$/gu, ''))
    .filter(Boolean);
  return {
    words,
    extra: words.filter((w) => {
      const a = analyze(w);
      return a.length > 0 && !a.every((t) => asked.has(t));
    }),
  };
}

/**
 * What a short line (a label and its value, a table row) says beyond the question's own words
 * ("Headquarters: Lisbon" -> "Lisbon", "Consumer 22.9" -> "22.9" for a quantity), or the one number a
 * sentence adds when a quantity is asked. Other running text, or a line with nothing new, or
 * nothing that is a name or a number, stays the whole sentence: left-over words out of a sentence
 * read worse than the sentence ("each", "Company its subsidiaries …").
 */
export function extractValue(
  sentence: string,
  question: string,
  asked: ReadonlySet<string> = new Set(analyze(question)),
): string {
  const { words, extra } = beyondQuestion(sentence, asked);
  if (extra.length === 0 || extra.length === words.filter((w) => analyze(w).length > 0).length) return sentence;
  // A quantity asked and one number given (a day of a date is not one): the number, from a table
  // row or from running text ("The company held 123 granted patents at the end of 2023." -> "123").
  const added = new Set(extra);
  const numbers = words.filter((w, i) => /\d/.test(w) && added.has(w) && !MONTH.test(words[i - 1] ?? ''));
  if (numbers.length === 1 && QUANTITY.test(question)) return numbers[0];
  if (words.length > 6) return sentence;
  return extra.some((w) => /[\d\p{Lu}]/u.test(w)) ? extra.join(' ') : sentence;
}
const MONTH = /^(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?$/i;
