/**
 * The parity query set (also used by the search benchmark): deterministic, built from the shared
 * FinanceBench questions and corpus. Keyword queries as an agent writes them, plus operator cases:
 * phrases, OR, NOT/ANDNOT, wildcards and prefixes, hyphenated words, decimals, upper- and
 * lower-case operators, trailing '?', parentheses and the file: field.
 */
import { readFileSync } from 'node:fs';
import { STOP_WORDS } from '../../src/core/search/analyzer';

interface Question {
  question: string;
  answer_locations?: Array<{ document?: string }>;
}

function words(text: string): string[] {
  return text
    .split(/\s+/)
    .map((w) => w.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}%]+$/gu, ''))
    .filter((w) => w.length >= 3 && !STOP_WORDS.has(w.toLowerCase()));
}

function uniq(list: string[]): string[] {
  const seen = new Set<string>();
  return list.filter((w) => {
    const k = w.toLowerCase();
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function makeQueries(questionsFile: string, ocrFile: string): string[] {
  const questions = readFileSync(questionsFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Question);
  const out: string[] = [];
  const add = (q: string) => {
    if (q.trim() && !out.includes(q)) out.push(q);
  };
  questions.forEach((q, i) => {
    const w = uniq(words(q.question));
    add(q.question); // the whole question, natural '?' and all
    add(w.slice(0, 3).join(' '));
    add(w.slice(0, 5).join(' '));
    add(w.slice(1, 4).join(' '));
    add(w.slice(-4).join(' '));
    add(
      w
        .filter((_, j) => j % 2 === 0)
        .slice(0, 4)
        .join(' '),
    );
    add(w.slice(2, 4).join(' '));
    add(w.slice(0, 2).join(' '));
    for (let j = 2; j + 2 <= w.length && j < 12; j += 2) add(w.slice(j, j + 2).join(' '));
    if (w.length >= 2) add(`${w[0]} ${w[w.length - 1]}`);
    // Operator cases.
    const raw = q.question.split(/\s+/).map((x) => x.replace(/[?,.;:]+$/, ''));
    const pair = raw.findIndex(
      (x, j) =>
        j + 1 < raw.length && /^\w{3,}$/.test(x) && /^\w{3,}$/.test(raw[j + 1]) && !STOP_WORDS.has(x.toLowerCase()),
    );
    if (pair >= 0) add(`"${raw[pair]} ${raw[pair + 1]}" ${w[0] ?? ''}`.trim());
    if (w.length >= 3) add(`${w[0]} ${w[1]} OR ${w[2]}`);
    if (w.length >= 3) add(`${w[0]} or ${w[1]} ${w[2]}`);
    if (w.length >= 4) add(`${w[0]} ${w[1]} NOT ${w[3]}`);
    if (w.length >= 3 && i % 2 === 0) add(`${w[0]} ${w[1]} ANDNOT ${w[2]}`);
    if (w.length >= 2) add(`${w[0]} ${w[1].slice(0, Math.max(3, w[1].length - 3))}*`);
    if (w.length >= 2 && w[1].length >= 4) add(`${w[0]} ${w[1].slice(0, 1)}?${w[1].slice(2)}`);
    if (w.length >= 3) add(`${w.slice(0, 3).join(' ')}?`);
    if (w.length >= 3) add(`(${w[0]} OR ${w[1]}) ${w[2]}`);
    if (w.length >= 3 && i % 3 === 0) add(`${w[0]} and ${w[1]} not ${w[2]}`);
    if (w.length >= 2 && i % 3 === 1) add(`${w[0]} AND ${w[1]}`);
    if (w.length >= 2 && i % 3 === 2) add(`${w[0]} ANDMAYBE ${w[1]}`);
    const doc = q.answer_locations?.[0]?.document;
    if (doc && w.length >= 2 && i % 2 === 1) add(`file:${doc} ${w[0]} ${w[1]}`);
  });
  // Hyphenated words and decimals as they occur in the corpus.
  const text = readFileSync(ocrFile, 'utf8');
  const hyphenated = uniq([...text.matchAll(/\b[A-Za-z]{2,}-[A-Za-z0-9]{2,}\b/g)].map((m) => m[0])).slice(0, 400);
  const decimals = uniq([...text.matchAll(/\b\d+\.\d+\b/g)].map((m) => m[0])).slice(0, 400);
  for (let k = 0; k < 12; k++) add(`${hyphenated[(k * 31) % hyphenated.length]} ${k % 2 ? 'revenue' : 'net'}`);
  for (let k = 0; k < 12; k++) add(`${decimals[(k * 29) % decimals.length]} ${k % 2 ? 'million' : 'percent'}`);
  add('AH-64 Apache');
  add('3.5 million');
  add('COVID-19 impact');
  add('non-GAAP measures');
  add('U.S. revenue');
  return out;
}
