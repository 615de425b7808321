import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { PDFDocument, type PDFFont, StandardFonts } from 'pdf-lib';
import { mulberry32 } from '../util/random';

/**
 * The demo corpus: fictional companies' technical reports as real PDFs (pdf-lib), with tables and
 * specific facts, and questions whose ground-truth page is known. Deterministic for a seed.
 */
export interface DemoQuestion {
  question_id: string;
  question: string;
  answers: string[];
  answer_locations: Array<{ document: string; page: number }>;
  question_type: string;
}

const SYLLABLES = [
  'ar',
  'bel',
  'cor',
  'dan',
  'el',
  'fir',
  'gal',
  'hor',
  'is',
  'jun',
  'kel',
  'lum',
  'mor',
  'nex',
  'or',
  'pra',
  'qui',
  'ros',
  'sol',
  'tor',
  'ul',
  'vex',
  'wen',
  'xa',
  'yor',
  'zen',
];
const SUFFIX = ['Dynamics', 'Systems', 'Robotics', 'Materials', 'Energy', 'Aerospace', 'Instruments', 'Labs'];
const CITIES = [
  'Lisbon',
  'Tampere',
  'Graz',
  'Leuven',
  'Aarhus',
  'Bilbao',
  'Turin',
  'Ghent',
  'Brno',
  'Malmo',
  'Poznan',
  'Porto',
];
const SEGMENTS = ['Industrial', 'Medical', 'Defense', 'Consumer', 'Automotive', 'Marine'];
const FILLER = [
  'The company continued to invest in research and development across all business units ' +
    'during the period under review.',
  'Management believes that the current liquidity position is sufficient to fund operations ' +
    'for the foreseeable future.',
  'Demand conditions varied by region, with stronger orders in northern markets and softer activity elsewhere.',
  'The board reviewed the capital allocation framework and reaffirmed its priorities for the coming years.',
  'Supply chain constraints eased in the second half, allowing inventories to return to normal levels.',
  'The following discussion should be read together with the consolidated financial statements and notes.',
];

export interface DemoCorpus {
  pdfDir: string;
  questions: DemoQuestion[];
  documents: string[];
  pages: number;
}

function name(random: () => number): string {
  const pick = () => SYLLABLES[Math.floor(random() * SYLLABLES.length)];
  const base = pick() + pick() + (random() < 0.5 ? pick() : '');
  return base[0].toUpperCase() + base.slice(1);
}

function drawLines(
  page: ReturnType<PDFDocument['addPage']>,
  font: PDFFont,
  bold: PDFFont,
  lines: Array<string | { text: string; bold?: boolean; size?: number }>,
): void {
  let y = 735;
  for (const line of lines) {
    const l = typeof line === 'string' ? { text: line } : line;
    const size = l.size ?? 11;
    page.drawText(l.text, { x: 50, y, size, font: l.bold ? bold : font });
    y -= size + 7;
  }
}

/** Writes `docs` PDFs of `pagesPerDoc` pages into `pdfDir` and returns the questions about them. */
export async function generateDemoCorpus(
  pdfDir: string,
  options: { docs?: number; pagesPerDoc?: number; seed?: number } = {},
): Promise<DemoCorpus> {
  const docs = options.docs ?? 40;
  const pagesPerDoc = Math.max(6, options.pagesPerDoc ?? 10);
  const random = mulberry32(options.seed ?? 7);
  await fsp.mkdir(pdfDir, { recursive: true });
  const questions: DemoQuestion[] = [];
  const documents: string[] = [];
  const used = new Set<string>();
  for (let d = 0; d < docs; d++) {
    let company = name(random);
    while (used.has(company)) company = name(random);
    used.add(company);
    const full = `${company} ${SUFFIX[d % SUFFIX.length]}`;
    const year = 2020 + (d % 4);
    const file = `${company.toUpperCase()}_${year}_REPORT.pdf`;
    documents.push(file);
    const city = CITIES[Math.floor(random() * CITIES.length)];
    const employees = 200 + Math.floor(random() * 9800);
    const revenue = [0, 1, 2].map(() => 50 + Math.floor(random() * 950) + Math.floor(random() * 10) / 10);
    const segments = [0, 1, 2].map((i) => SEGMENTS[(d + i * 2) % SEGMENTS.length]);
    const margins = segments.map(() => (5 + Math.floor(random() * 250) / 10).toFixed(1));
    const models = [0, 1, 2].map(
      (i) => `${company.slice(0, 2).toUpperCase()}-${100 + i * 50 + Math.floor(random() * 40)}`,
    );
    const power = models.map(() => 10 + Math.floor(random() * 490));
    const patents = 5 + Math.floor(random() * 300);
    // The chief executive is named once, on a narrative page: a rare word that misleads a pure IDF query.
    const ceo = `${name(random)} ${name(random)}`;
    const pdf = await PDFDocument.create();
    const font = await pdf.embedFont(StandardFonts.Helvetica);
    const bold = await pdf.embedFont(StandardFonts.HelveticaBold);
    const pages: Array<Array<string | { text: string; bold?: boolean; size?: number }>> = [
      [
        { text: `${full}`, bold: true, size: 20 },
        `Annual Technical Report ${year}`,
        '',
        `Headquarters: ${city}`,
        `Employees at year end: ${employees.toLocaleString('en-US')}`,
        '',
        FILLER[d % FILLER.length],
      ],
      [
        { text: 'Consolidated Revenue', bold: true, size: 14 },
        'Fiscal year          Revenue (EUR millions)',
        ...[0, 1, 2].map((i) => `${year - 2 + i}                 ${revenue[i].toFixed(1)}`),
        '',
        FILLER[(d + 1) % FILLER.length],
      ],
      [
        { text: 'Segment Information', bold: true, size: 14 },
        'Segment            Operating margin (%)',
        ...segments.map((s, i) => `${s}             ${margins[i]}`),
        '',
        FILLER[(d + 2) % FILLER.length],
      ],
      [
        { text: 'Product Specifications', bold: true, size: 14 },
        'Model          Rated power (kW)',
        ...models.map((m, i) => `${m}          ${power[i]}`),
        '',
        FILLER[(d + 3) % FILLER.length],
      ],
      [
        { text: 'Intellectual Property', bold: true, size: 14 },
        `The company held ${patents} granted patents at the end of ${year}.`,
        '',
        FILLER[(d + 4) % FILLER.length],
      ],
    ];
    pages.push([
      { text: 'Letter to Shareholders', bold: true, size: 14 },
      `Chief executive officer ${ceo} reflected on the year.`,
      FILLER[(d + 5) % FILLER.length],
    ]);
    while (pages.length < pagesPerDoc)
      pages.push([
        { text: 'Management Discussion', bold: true, size: 14 },
        ...[0, 1, 2, 3].map((k) => FILLER[(d + pages.length + k) % FILLER.length]),
      ]);
    // A running header names the company on every page, as real reports do.
    pages.forEach((lines, i) => {
      const page = pdf.addPage([612, 792]);
      page.drawText(`${full} - Annual Technical Report ${year} - page ${i + 1}`, { x: 50, y: 770, size: 8, font });
      drawLines(page, font, bold, lines);
    });
    await fsp.writeFile(path.join(pdfDir, file), await pdf.save());
    // Analysts often frame questions with context that is not on the answer's page (here: the CEO).
    const q = (id: string, question: string, answer: string, page: number, type: string) =>
      questions.push({
        question_id: `demo_${d}_${id}`,
        question: `${ceo} leads ${full}. ${question}`,
        answers: [answer],
        answer_locations: [{ document: file, page }],
        question_type: type,
      });
    const best = power.indexOf(Math.max(...power));
    q(
      'rev',
      `As an analyst reviewing the ${year} annual report, ` +
        `what consolidated revenue did ${full} record for fiscal ${year - 1}, in EUR millions?`,
      revenue[1].toFixed(1),
      2,
      'metrics',
    );
    q('hq', `Based on the report's cover page, in which city does ${full} have its headquarters?`, city, 1, 'fact');
    q(
      'margin',
      `What operating margin did the ${segments[0]} segment of ${full} report in ${year}?`,
      `${margins[0]}%`,
      3,
      'metrics',
    );
    q(
      'power',
      `Which product model of ${full} has the highest rated power, according to the product specifications?`,
      models[best],
      4,
      'comparison',
    );
    q('patents', `How many granted patents did ${full} hold at the end of ${year}?`, String(patents), 5, 'fact');
  }
  return { pdfDir, questions, documents, pages: docs * pagesPerDoc };
}
