/**
 * The ceiling of question-word queries on a corpus: for each question, every AND query of 1 to 3 of
 * its content words and every OR query of 2 or 3 of them is run, and the question counts as
 * reachable when at least one of those queries ranks a ground-truth page within the top K. No
 * writer that picks question words (ours learns which ones) can succeed on more questions than
 * this oracle, which knows the answer page.
 *
 *   npx tsx scripts/query-oracle.ts [questions.jsonl] [ocr_output.jsonl] [--top-k 3]
 * Default: the shared FinanceBench questions and corpus (read from ../shared; the index is cached
 * in a temporary folder, never beside the shared corpus).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { QUESTION_WORDS } from '../src/core/agent/keyword';
import { analyze } from '../src/core/search/analyzer';
import { openSearchEngine } from '../src/core/search/open';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { 'top-k': { type: 'string', default: '3' } },
});
const questionsFile = positionals[0] ?? '../shared/data/financebench-mini/questions.jsonl';
const ocrFile = positionals[1] ?? '../shared/data/financebench-mini/ocr_output.jsonl';
const topK = Number(values['top-k']);

function subsets<T>(items: readonly T[], size: number): T[][] {
  if (size === 0) return [[]];
  const out: T[][] = [];
  items.forEach((x, i) => {
    for (const rest of subsets(items.slice(i + 1), size - 1)) out.push([x, ...rest]);
  });
  return out;
}

async function main(): Promise<void> {
  const cacheDir = mkdtempSync(path.join(tmpdir(), 'drag-oracle-'));
  try {
    const { engine } = await openSearchEngine(ocrFile, { cacheDir });
    const questions = readFileSync(questionsFile, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map(
        (l) =>
          JSON.parse(l) as {
            question_id: string;
            question: string;
            answer_locations: Array<{ document: string; page: number }>;
          },
      );
    let reachable = 0;
    let queries = 0;
    const rows: string[] = [];
    for (const q of questions) {
      const gt = new Set(q.answer_locations.map((l) => `${l.document}:${l.page}`));
      const words = [...new Set(analyze(q.question))].filter(
        (t) => !QUESTION_WORDS.has(t) && engine.docFrequency(t) > 0,
      );
      const candidates = [1, 2, 3]
        .flatMap((n) => subsets(words, n).map((s) => s.join(' ')))
        .concat([2, 3].flatMap((n) => subsets(words, n).map((s) => s.join(' OR '))));
      let best: { query: string; rank: number } | null = null;
      for (const query of candidates) {
        queries++;
        const rank = engine.search(query, topK).findIndex((h) => gt.has(`${h.file}:${h.page_number}`)) + 1;
        if (rank > 0 && (!best || rank < best.rank)) best = { query, rank };
      }
      if (best) reachable++;
      rows.push(
        `${q.question_id}\t${words.length} words\t${best ? `rank ${best.rank}: ${best.query}` : 'unreachable'}`,
      );
    }
    console.log(rows.join('\n'));
    console.log(
      `${reachable}/${questions.length} questions reachable in the top ${topK} ` +
        `by some AND (1-3 words) or OR (2-3 words) query of their own words (${queries} queries)`,
    );
    console.log(
      JSON.stringify({ oracle: 'question-words', top_k: topK, reachable, questions: questions.length, queries }),
    );
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

void main();
