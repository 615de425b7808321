import * as assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { ChatRequest } from '../../src/core/agent/client';
import { extractValue, extremeRow, KeywordAgentClient } from '../../src/core/agent/keyword';
import { WhooshCompatibleEngine } from '../../src/core/search/engine';
import { buildIndex } from '../../src/core/search/index';
import { useTempDir } from './helpers';

describe('embedded keyword agent', function () {
  this.timeout(30_000);
  const tmp = useTempDir();
  // One report with a running header on every page, among 54 pages of other reports: a chief
  // executive named once (very rare words) and topic words on many pages.
  const header = (p: number) => `Quornex Robotics - Annual Report 2023 - page ${p}`;
  const report = [
    `${header(1)}\nQuornex Robotics\nAnnual Report 2023\nHeadquarters: Lisbon\nEmployees at year end: 1,200`,
    `${header(2)}\nConsolidated Revenue\nFiscal year Revenue (EUR millions)\n2022 480.5\n2023 512.0`,
    `${header(3)}\nIntellectual Property\nThe company held 123 granted patents at the end of 2023.\n2021 97.5`,
    `${header(4)}\nLetter to Shareholders\nChief executive Zedra Vollmark reflected on the year.`,
    `${header(5)}\nProduct Specifications\nModel Rated power (kW)\nQR-107 272\nQR-164 155\nQR-211 489`,
    `${header(6)}\nSegment Information\nSegment Operating margin (%)\nIndustrial 8.8\nDefense 24.1`,
  ];
  const pages = [
    ...report.map((text, i) => ({ file: 'QUORNEX_2023.pdf', page_number: i + 1, total_pages: report.length, text })),
    ...Array.from({ length: 54 }, (_, i) => ({
      file: `OTHER_${i % 9}.pdf`,
      page_number: 1 + Math.floor(i / 9),
      total_pages: 6,
      text:
        `Other Report ${i}\nThe company held ${i} granted patents. ` +
        'Revenue grew in the year. Headquarters and employees.',
    })),
  ];
  async function agent(seed = 0): Promise<KeywordAgentClient> {
    const file = path.join(tmp(), 'ocr.jsonl');
    writeFileSync(file, pages.map((p) => JSON.stringify(p)).join('\n') + '\n');
    const engine = new WhooshCompatibleEngine((await buildIndex(file)).index);
    const text = new Map(pages.map((p) => [`${p.file}:${p.page_number}`, p.text]));
    return new KeywordAgentClient(engine, async (f, p) => text.get(`${f}:${p}`) ?? null, seed);
  }
  /** The agent's reply after one search for `query` that found pages. */
  async function answerAfter(
    client: KeywordAgentClient,
    question: string,
    query: string,
  ): Promise<{ answer: string[]; citations: Array<{ file: string; page: number }> }> {
    const request: ChatRequest = {
      model: 'keyword',
      temperature: 0,
      messages: [
        { role: 'user', content: question },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: 'c1',
              type: 'function',
              function: { name: 'search_documents', arguments: JSON.stringify({ query }) },
            },
          ],
        },
        { role: 'tool', tool_call_id: 'c1', content: 'Found 1 matching pages.' },
      ],
    };
    const reply = await client.complete(request);
    const call = reply.tool_calls?.[0];
    assert.equal(call?.function.name, 'provide_answer');
    return JSON.parse(call!.function.arguments);
  }

  it('answers with what the top page adds to the question, never its running header', async () => {
    const client = await agent();
    // The cover page: the title and the running header repeat the question's words; the line that
    // adds something does.
    const hq = await answerAfter(
      client,
      "Based on the report's cover page, in which city does Quornex Robotics have its headquarters?",
      'quornex headquarters',
    );
    assert.deepEqual(hq, { answer: ['Lisbon'], citations: [{ file: 'QUORNEX_2023.pdf', page: 1 }] });
    // Running text that adds one number to a quantity question: the number.
    const patents = await answerAfter(
      client,
      'How many granted patents did Quornex Robotics hold at the end of 2023?',
      'quornex patents',
    );
    assert.deepEqual(patents.answer, ['123']);
    // A quantity in a table: the row with a number, not the column header that repeats the question
    // (and not taken for a running line because the next page has a row of the same shape).
    const revenue = await answerAfter(
      client,
      'What consolidated revenue in EUR millions did Quornex Robotics record for fiscal 2022?',
      'quornex consolidated revenue',
    );
    assert.deepEqual(revenue.answer, ['480.5']);
    // A number under a "(%)" column header is a percentage.
    const margin = await answerAfter(
      client,
      'What operating margin did the Defense segment of Quornex Robotics report in 2023?',
      'quornex defense margin',
    );
    assert.deepEqual(margin, { answer: ['24.1%'], citations: [{ file: 'QUORNEX_2023.pdf', page: 6 }] });
  });

  it('answers which item is the highest or lowest with the label of that table row', async () => {
    const client = await agent();
    const highest = await answerAfter(
      client,
      'Which product model of Quornex Robotics has the highest rated power, according to the product specifications?',
      'quornex specifications',
    );
    assert.deepEqual(highest, { answer: ['QR-211'], citations: [{ file: 'QUORNEX_2023.pdf', page: 5 }] });
    const lowest = await answerAfter(
      client,
      'Which Quornex Robotics model has the lowest rated power?',
      'quornex specifications',
    );
    assert.deepEqual(lowest.answer, ['QR-164']);
  });

  it('reads table rows: labels with letters, the first number, totals and sentences left out', () => {
    const table = [
      'Region Net revenues Adjusted EBITDAR',
      'Las Vegas Strip Resorts $ 8,369 $ 3,117',
      'Regional Operations 3,611 1,183',
      'MGM China (12.5) (40.1)',
      'Total $ 13,127 $ 4,260',
      '2022 14,000',
      'Revenue rose 99,999 percent in the year.',
    ];
    assert.equal(extremeRow(table, false), 'Las Vegas Strip Resorts');
    assert.equal(extremeRow(table, true), 'MGM China');
    // One row is no comparison.
    assert.equal(extremeRow(['QR-107 272', 'The company held 5 granted patents.'], false), null);
  });

  it('extracts a value from a sentence, or keeps the sentence', () => {
    assert.equal(extractValue('Headquarters: Lisbon', 'Where are the headquarters?'), 'Lisbon');
    assert.equal(extractValue('Consumer 22.9', 'What operating margin did the Consumer segment report?'), '22.9');
    // Nothing beyond the question's words, or nothing of them: the sentence as it is.
    assert.equal(extractValue('Operating margin (%)', 'What operating margin?'), 'Operating margin (%)');
    assert.equal(extractValue('Demand varied by region.', 'What operating margin?'), 'Demand varied by region.');
    // Running text keeps its sentence; a short line with only common words left is not a value.
    const text = 'The audited consolidated balance sheets of the Company and its subsidiaries as of December 31, 2022.';
    assert.equal(extractValue(text, 'What is the effective tax rate of American Express in 2022?'), text);
    assert.equal(extractValue('Title of each class', 'What is the title of the class?'), 'Title of each class');
    // A date's day is not a quantity; running text with no other number stays whole.
    const dated = 'Cash dividends of $0.55 per share were paid on August 1, 2022.';
    assert.equal(extractValue(dated, 'How much did CVS pay in dividends per share in 2022?'), '$0.55');
    assert.equal(
      extractValue(
        'The plan was approved on March 3, 2022 by the board of the company.',
        'What total did the plan approve in 2022?',
      ),
      'The plan was approved on March 3, 2022 by the board of the company.',
    );
    // Two numbers left: no guess between them.
    assert.equal(extractValue('2022 480.5 512.0', 'What revenue in 2022?'), '480.5 512.0');
  });

  it('explores at temperature: the top word of a very rare name does not lead every sample', async () => {
    const question =
      'Zedra Vollmark leads Quornex Robotics. How many granted patents did Quornex Robotics hold in 2023?';
    const firstQueries = await Promise.all(
      Array.from({ length: 24 }, async (_, seed) => (await agent(seed)).plan(question, 1.2)[0]),
    );
    // Greedy always starts from the chief executive's surname (the rarest word, capitalised)...
    const greedy = (await agent(0)).plan(question, 0)[0];
    assert.match(greedy, /vollmark/);
    // ...sampling at 1.2 ("creative") tries queries without it, and varies.
    const without = firstQueries.filter((q) => !/vollmark/.test(q));
    assert.ok(
      without.length >= 2,
      `only ${without.length} of 24 samples leave the surname out: ${firstQueries.join(' | ')}`,
    );
    assert.ok(new Set(firstQueries).size >= 8, `samples hardly differ: ${firstQueries.join(' | ')}`);
  });
});
