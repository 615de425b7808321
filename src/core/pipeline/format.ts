import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { SYSTEM_PROMPT, TOOLS } from '../agent/prompts';
import { formatFieldPath, type LineError } from '../io/errors';
import { withReadHash } from '../io/hash';
import { indexJsonl, indexProblems, NO_SUMMARY } from '../io/jsonl';
import { LineStore, writeJsonAtomic, writeLinesAtomic } from '../io/write';
import { answerLocations } from '../trajectories/groundTruth';
import { mulberry32 } from '../util/random';
import type { PairSide, ProcessedRecord, ProcessedSearch } from './process';

/** DRAG's formats (the five its formatter writes) and our training-ready exports. */
export const DRAG_FORMATS = ['sft_query', 'sft_trajectory', 'sft_context', 'dpo', 'reward'] as const;
export const EXPORT_FORMATS = ['trl_sft', 'trl_dpo', 'llamafactory_sft', 'llamafactory_dpo'] as const;
export const ALL_FORMATS = [...DRAG_FORMATS, ...EXPORT_FORMATS] as const;
export type FormatName = (typeof ALL_FORMATS)[number];

export interface FormatOptions {
  formats: FormatName[];
  trainRatio: number;
  seed: number;
  splitBy: 'question' | 'document';
  reasoning: boolean;
}

type Example = Record<string, unknown> & { question_id: string };

/** The formats made of DPO pairs: the only ones that must wait until every sample of a question is read. */
export const PAIR_FORMATS: ReadonlySet<FormatName> = new Set(['dpo', 'trl_dpo', 'llamafactory_dpo']);

/** What the pair formats need of a record. */
export type PairRecord = Pick<ProcessedRecord, 'id' | 'question_id' | 'question' | 'query_pairs'>;

/** The assistant's text for a search, with its reasoning when there is some, as DRAG writes it. */
export function searchText(s: Pick<ProcessedSearch, 'query' | 'reasoning'>, reasoning = true): string {
  return reasoning && s.reasoning
    ? `<think>${s.reasoning}</think>\n<search>${s.query}</search>`
    : `<search>${s.query}</search>`;
}

const dpoPrompt = (q: string) => `<question>${q}</question>\n\nGenerate a search query to find the answer:`;

/** LLaMA-Factory wants the tool schema as a JSON string: serialised once, not once per example. */
const TOOLS_JSON = JSON.stringify(TOOLS);

/** The system turn of the agent formats: one object, shared by every example (see {@link examplePieces}). */
const SYSTEM_MESSAGE = Object.freeze({ role: 'system', content: SYSTEM_PROMPT });

/** The agent's first turn: its real system prompt, the question, and a search tool call. */
function agentPrompt(question: string) {
  return [SYSTEM_MESSAGE, { role: 'user', content: question }];
}

/**
 * The long constants of the agent formats, and their JSON, encoded once. They are most of such an
 * example (about 1.7 of its 2.2 KB), and JSON.stringify would walk and escape them again in every one,
 * and the encoder encode them again: most of the work of writing a dataset in every format.
 */
const CONSTANTS: readonly unknown[] = [SYSTEM_MESSAGE, TOOLS, SYSTEM_PROMPT, TOOLS_JSON];
const CONSTANT_BYTES = CONSTANTS.map((c) => Buffer.from(JSON.stringify(c), 'utf8'));
/** The formats that hold those constants (looking for them in the others would cost more than it saves). */
const EXPORT_FORMATS_SET: ReadonlySet<FormatName> = new Set(EXPORT_FORMATS);
/** What stands in for constant i while the rest is serialised: `MARK` and i, a string no format writes. */
const MARK = '\u0000drag-constant-';
const MARK_JSON = JSON.stringify(MARK).slice(0, -1); // the opening quote and the mark, as JSON writes them

/**
 * `JSON.stringify(example)` as pieces to write in turn, byte for byte the same: the JSON of what is not
 * a constant, and each constant's JSON encoded once. A constant is found by identity where the formats
 * put one (a field, or an element of a field's array), and marks stand in for them while the rest is
 * serialised. If the data itself holds a mark, there are more marks than constants, and the example is
 * serialised plainly.
 */
export function examplePieces(example: Example): Array<string | Uint8Array> {
  const swapped: Array<[holder: Record<string, unknown> | unknown[], key: string | number, constant: number]> = [];
  const swap = (holder: Record<string, unknown> | unknown[], key: string | number, value: unknown) => {
    const i = CONSTANTS.indexOf(value);
    if (i < 0) return false;
    swapped.push([holder, key, i]);
    (holder as Record<string | number, unknown>)[key] = `${MARK}${i}`;
    return true;
  };
  for (const key of Object.keys(example)) {
    const value = example[key];
    if (!swap(example, key, value) && Array.isArray(value))
      for (let j = 0; j < value.length; j++) swap(value, j, value[j]);
  }
  if (swapped.length === 0) return [JSON.stringify(example)];
  const json = JSON.stringify(example);
  for (const [holder, key, i] of swapped) (holder as Record<string | number, unknown>)[key] = CONSTANTS[i];
  // The marks, in the order JSON.stringify met them: the order they were swapped in (keys, then elements).
  const pieces: Array<string | Uint8Array> = [];
  let from = 0;
  for (const [, , i] of swapped) {
    const at = json.indexOf(MARK_JSON, from);
    const end = at + MARK_JSON.length + String(i).length + 1; // the index and the closing quote
    if (at < 0 || json.slice(at + MARK_JSON.length, end) !== `${i}"`) return [JSON.stringify(example)];
    pieces.push(json.slice(from, at), CONSTANT_BYTES[i]);
    from = end;
  }
  if (json.includes(MARK_JSON, from)) return [JSON.stringify(example)];
  pieces.push(json.slice(from));
  return pieces;
}

function toolCallMessage(s: ProcessedSearch | PairSide, reasoning: boolean) {
  return {
    role: 'assistant',
    content: reasoning && s.reasoning ? `<think>${s.reasoning}</think>` : '',
    tool_calls: [{ type: 'function', function: { name: 'search_documents', arguments: { query: s.query } } }],
  };
}
const functionCall = (s: ProcessedSearch | PairSide) =>
  JSON.stringify({ name: 'search_documents', arguments: { query: s.query } });

/** Examples of one of the {@link PAIR_FORMATS} from a record whose pairs have been mined. */
export function pairExamplesOf(format: FormatName, r: PairRecord, reasoning: boolean): Example[] {
  const q = r.question;
  const base = { trajectory_id: r.id, question_id: r.question_id };
  switch (format) {
    case 'dpo': {
      const prompt = dpoPrompt(q); // one string for all the record's pairs
      return r.query_pairs.map((p) => ({
        prompt,
        chosen: searchText(p.better, reasoning),
        rejected: searchText(p.worse, reasoning),
        chosen_score: p.better.rank_score ?? 0,
        rejected_score: p.worse.rank_score ?? 0,
        ...base,
        better_query: p.better.query,
        worse_query: p.worse.query,
      }));
    }
    case 'trl_dpo': {
      const prompt = agentPrompt(q);
      return r.query_pairs.map((p) => ({
        prompt,
        chosen: [toolCallMessage(p.better, reasoning)],
        rejected: [toolCallMessage(p.worse, reasoning)],
        tools: TOOLS,
        ...base,
        chosen_score: p.better.rank_score ?? 0,
        rejected_score: p.worse.rank_score ?? 0,
      }));
    }
    case 'llamafactory_dpo':
      return r.query_pairs.map((p) => ({
        conversations: [{ from: 'human', value: q }],
        chosen: { from: 'function_call', value: functionCall(p.better) },
        rejected: { from: 'function_call', value: functionCall(p.worse) },
        system: SYSTEM_PROMPT,
        tools: TOOLS_JSON,
        ...base,
      }));
    default:
      throw new Error(`${format} is not made of pairs`);
  }
}

/** Examples of one format from one processed record. */
export function examplesOf(format: FormatName, r: ProcessedRecord, reasoning: boolean): Example[] {
  const q = r.question;
  const base = { trajectory_id: r.id, question_id: r.question_id };
  const best = r.best_search;
  switch (format) {
    case 'sft_query':
      return best
        ? [
            {
              input: `<question>${q}</question>`,
              output: searchText(best, reasoning),
              ...base,
              rank_score: best.rank_score,
              format: 'query_generation',
            },
          ]
        : [];
    case 'sft_trajectory': {
      if (r.searches.length === 0) return [];
      // best_search is a copy once read back from processed.jsonl: find it by step, not by identity.
      const at = best ? r.searches.findIndex((s) => s.step === best.step && s.query === best.query) : -1;
      const stop = at >= 0 ? at : r.searches.length - 1;
      const lines: string[] = [];
      for (const s of r.searches.slice(0, stop + 1)) {
        if (reasoning && s.reasoning) lines.push(`<think>${s.reasoning}</think>`);
        lines.push(`<search>${s.query}</search>`);
        lines.push(
          s.gt_found
            ? `<result>Found relevant document at rank ${s.gt_rank ?? '?'}</result>`
            : '<result>No relevant results</result>',
        );
      }
      return [
        {
          input: `Question: ${q}`,
          output: lines.join('\n'),
          ...base,
          best_rank_score: r.best_rank_score,
          total_searches: r.total_searches,
          format: 'full_trajectory',
        },
      ];
    }
    case 'sft_context': {
      const out: Example[] = [];
      r.searches.forEach((s, i) => {
        if (i < 1 || !s.gt_found || !(s.rank_score && s.rank_score > 0)) return;
        const previous = r.searches.slice(Math.max(0, i - 2), i);
        const context = previous.flatMap((p) => [
          `Previous query: ${p.query}`,
          p.gt_found ? `  Result: Found at rank ${p.gt_rank}` : '  Result: Not found',
        ]);
        out.push({
          input: `<question>${q}</question>\n\n${context.join('\n')}`,
          output: searchText(s, reasoning),
          ...base,
          step: s.step,
          rank_score: s.rank_score,
          context_length: previous.length,
          format: 'query_with_context',
        });
      });
      return out;
    }
    case 'reward':
      return r.searches.map((s) => ({
        input: `Question: ${q}\nQuery: ${s.query}`,
        score: s.rank_score ?? 0,
        ...base,
        step: s.step,
        gt_found: s.gt_found,
        gt_rank: s.gt_rank,
      }));
    case 'trl_sft':
      return best
        ? [
            {
              messages: [...agentPrompt(q), toolCallMessage(best, reasoning)],
              tools: TOOLS,
              ...base,
              rank_score: best.rank_score,
            },
          ]
        : [];
    case 'llamafactory_sft':
      return best
        ? [
            {
              conversations: [
                { from: 'human', value: q },
                { from: 'function_call', value: functionCall(best) },
              ],
              system: SYSTEM_PROMPT,
              tools: TOOLS_JSON,
              ...base,
            },
          ]
        : [];
    default:
      return pairExamplesOf(format, r, reasoning);
  }
}

/** What JSON.stringify escapes in a string (surrogates: where unpaired), so that most text is its own JSON. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
/**
 * The JSON of a string without its quotes. Escaping is per character, so the JSON of a concatenation
 * is the concatenation of these, wherever no surrogate pair is split between two pieces: the lines
 * below always put ASCII between two values.
 */
const jsonInner = (s: string) => (NEEDS_ESCAPE.test(s) ? JSON.stringify(s).slice(1, -1) : s);

/**
 * A search's assistant text ({@link searchText}) and query, as {@link jsonInner} writes them, and the
 * JSON of its score in a pair.
 */
interface SearchJson {
  text: string;
  query: string;
  score: string;
}

/** {@link searchText} as {@link jsonInner} writes it, given the search's query so written. */
function searchTextJson(s: LineSearch, query: string, reasoning: boolean): string {
  return reasoning && s.reasoning
    ? `<think>${jsonInner(s.reasoning)}</think>\\n<search>${query}</search>`
    : `<search>${query}</search>`;
}

/** The formats {@link exampleLines} writes directly: DRAG's three that `drag process` writes most. */
const LINE_FORMATS: ReadonlySet<FormatName> = new Set(['sft_query', 'sft_trajectory', 'dpo']);

type LineSearch = Pick<ProcessedSearch, 'step' | 'query' | 'reasoning' | 'gt_found' | 'gt_rank' | 'rank_score'>;

const isScore = (x: unknown) => x === null || typeof x === 'number';
/** What {@link exampleLines} takes for granted of a search (a processed file read back may hold anything). */
const lineSafe = (s: LineSearch) =>
  typeof s.query === 'string' &&
  (s.reasoning === null || typeof s.reasoning === 'string') &&
  isScore(s.rank_score) &&
  isScore(s.gt_rank) &&
  typeof s.step === 'number';

/**
 * The JSON lines (without newlines) of `format`'s examples from a record: byte for byte
 * `JSON.stringify` of {@link examplesOf}'s examples (the tests compare the two), but each of the
 * record's strings is escaped once, not once per example and field that repeats it. The question is
 * in every example of every format, a search in every pair it takes part in: most of the work of
 * serialising DRAG's formats was escaping the same text again. Null where the record does not have
 * the shape these lines assume; {@link examplesOf} then serves.
 */
export function exampleLines(format: FormatName, r: ProcessedRecord | PairRecord, reasoning: boolean): string[] | null {
  if (!LINE_FORMATS.has(format) || typeof r.id !== 'string' || typeof r.question_id !== 'string') return null;
  if (typeof r.question !== 'string') return null;
  const ids = `"trajectory_id":${JSON.stringify(r.id)},"question_id":${JSON.stringify(r.question_id)}`;
  const q = jsonInner(r.question);
  if (format === 'dpo') {
    const pairs = r.query_pairs;
    if (!Array.isArray(pairs)) return null;
    if (!pairs.every((p) => p && lineSafe(p.better) && lineSafe(p.worse))) return null;
    // A search is a side of many pairs: its JSON is made once. (The other formats use each search once.)
    const cache = new Map<LineSearch, SearchJson>();
    const search = (s: LineSearch): SearchJson => {
      let j = cache.get(s);
      if (!j) {
        const query = jsonInner(s.query);
        const text = searchTextJson(s, query, reasoning);
        cache.set(s, (j = { text, query, score: JSON.stringify(s.rank_score ?? 0) }));
      }
      return j;
    };
    const prompt = `{"prompt":"<question>${q}</question>\\n\\nGenerate a search query to find the answer:"`;
    return pairs.map((p) => {
      const better = search(p.better);
      const worse = search(p.worse);
      return (
        `${prompt},"chosen":"${better.text}","rejected":"${worse.text}",` +
        `"chosen_score":${better.score},"rejected_score":${worse.score},${ids},` +
        `"better_query":"${better.query}","worse_query":"${worse.query}"}`
      );
    });
  }
  const rec = r as ProcessedRecord;
  if (!Array.isArray(rec.searches) || !rec.searches.every(lineSafe)) return null;
  const best = rec.best_search;
  if (best !== null && !lineSafe(best)) return null;
  const text = (s: LineSearch) => searchTextJson(s, jsonInner(s.query), reasoning);
  if (format === 'sft_query') {
    if (!best) return [];
    return [
      `{"input":"<question>${q}</question>","output":"${text(best)}",${ids},` +
        `"rank_score":${JSON.stringify(best.rank_score)},"format":"query_generation"}`,
    ];
  }
  // sft_trajectory
  if (typeof rec.best_rank_score !== 'number' || typeof rec.total_searches !== 'number') return null;
  if (rec.searches.length === 0) return [];
  const at = best ? rec.searches.findIndex((s) => s.step === best.step && s.query === best.query) : -1;
  const stop = at >= 0 ? at : rec.searches.length - 1;
  const lines: string[] = [];
  for (let i = 0; i <= stop; i++) {
    const s = rec.searches[i];
    lines.push(
      text(s), // its <think> line, if any, and its <search> line
      s.gt_found
        ? `<result>Found relevant document at rank ${s.gt_rank ?? '?'}</result>`
        : '<result>No relevant results</result>',
    );
  }
  return [
    `{"input":"Question: ${q}","output":"${lines.join('\\n')}",${ids},` +
      `"best_rank_score":${JSON.stringify(rec.best_rank_score)},` +
      `"total_searches":${JSON.stringify(rec.total_searches)},"format":"full_trajectory"}`,
  ];
}

/** mulberry32 + Fisher-Yates: the same seed shuffles the same way in every run and language port. */
export function seededShuffle<T>(items: readonly T[], seed: number): T[] {
  const random = mulberry32(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** The split group of a record: its question, or its (first) ground-truth document. */
export function splitKey(r: ProcessedRecord, by: 'question' | 'document'): string {
  if (by === 'question') return r.question_id;
  const gt = answerLocations((r.ground_truth as { answer_locations?: unknown } | null)?.answer_locations);
  return gt[0]?.file ?? `question:${r.question_id}`;
}

/**
 * Train/val assignment by group (question or document), seeded: every example of a question lands
 * on the same side, in every format, so nothing leaks from train to val (DRAG split each format's
 * examples on their own, so one question could be in both).
 */
export function assignSplit(
  records: readonly ProcessedRecord[],
  options: Pick<FormatOptions, 'trainRatio' | 'seed' | 'splitBy'>,
): Map<string, 'train' | 'val'> {
  return splitGroups(
    records.map((r) => r.question_id),
    records.map((r) => splitKey(r, options.splitBy)),
    options,
  );
}

/** {@link assignSplit} over the records' question ids and split keys, in record order. */
function splitGroups(
  questions: readonly string[],
  keys: readonly string[],
  options: Pick<FormatOptions, 'trainRatio' | 'seed'>,
): Map<string, 'train' | 'val'> {
  const groups: string[] = [];
  const seen = new Set<string>();
  for (const k of keys) {
    if (!seen.has(k)) {
      seen.add(k);
      groups.push(k);
    }
  }
  const shuffled = seededShuffle(groups, options.seed);
  const nTrain = Math.floor(shuffled.length * options.trainRatio);
  const side = new Map<string, 'train' | 'val'>();
  shuffled.forEach((g, i) => side.set(g, i < nTrain ? 'train' : 'val'));
  const byQuestion = new Map<string, 'train' | 'val'>();
  for (let i = 0; i < questions.length; i++) byQuestion.set(questions[i], side.get(keys[i])!);
  return byQuestion;
}

export interface FormatReport {
  outputDir: string;
  formats: Record<
    string,
    { total: number; train: number; val: number; train_path: string | null; val_path: string | null }
  >;
  trainQuestions: number;
  valQuestions: number;
  errors: LineError[];
}

/** A dataset's split, once made, and its files: where they go, those started, their writes. */
interface Started {
  outputDir: string;
  split: Map<string, 'train' | 'val'>;
  files: Map<FormatName, FormatReport['formats'][string]>;
  writes: Array<Promise<unknown>>;
}

/**
 * A dataset built from processed records as they come: each record's examples are serialised at once
 * (to bytes off the heap) and the record can be dropped, so only the output lines and each record's
 * split key stay in memory. Lines keep record order per format; the split is decided once every
 * question has been seen ({@link DatasetBuilder.writeUnpaired} or {@link DatasetBuilder.write}).
 * `drag format` feeds it the records of processed.jsonl; `drag process --output-dir` feeds it the
 * records it has just made, so the dataset comes out of one pass over the trajectories with nothing
 * parsed twice.
 */
export class DatasetBuilder {
  /** Each record's question id and split key (two arrays: a pair per record would outlive the record). */
  private readonly questions: string[] = [];
  private readonly keys: string[] = [];
  private lines: Array<{ text: LineStore; question: string[] }>;
  /** Once the split is made: where the files go, and those on their way. */
  private started: Started | null = null;

  constructor(private readonly options: FormatOptions) {
    this.lines = options.formats.map(() => ({ text: new LineStore(), question: [] }));
  }

  /** A record whose pairs are mined: all its examples. */
  add(r: ProcessedRecord): void {
    this.addRecord(r);
    this.addPairs(r);
  }

  /**
   * The examples of every format that does not need pairs, as soon as the record is read (its pairs
   * may not be mined yet). Every record added so must later be given to {@link addPairs}, in order.
   */
  addRecord(r: ProcessedRecord): void {
    if (this.started) throw new Error('DatasetBuilder: a record added after the split was made');
    this.questions.push(r.question_id);
    this.keys.push(splitKey(r, this.options.splitBy));
    this.addExamples(r, false);
  }

  /** The examples of the pair formats, once the record's pairs are mined. */
  addPairs(r: PairRecord): void {
    this.addExamples(r, true);
  }

  private addExamples(r: ProcessedRecord | PairRecord, pairs: boolean): void {
    const { formats, reasoning } = this.options;
    for (const [i, format] of formats.entries()) {
      if (PAIR_FORMATS.has(format) !== pairs) continue;
      const { text, question } = this.lines[i];
      const lines = exampleLines(format, r, reasoning);
      if (lines)
        for (const line of lines) {
          text.addJsonText(line);
          question.push(r.question_id);
        }
      else
        for (const ex of pairs
          ? pairExamplesOf(format, r, reasoning)
          : examplesOf(format, r as ProcessedRecord, reasoning)) {
          if (EXPORT_FORMATS_SET.has(format)) text.addJsonPieces(examplePieces(ex));
          else text.addJsonText(JSON.stringify(ex));
          question.push(r.question_id);
        }
    }
  }

  /**
   * Once every record is added ({@link addRecord}), the split is known: starts writing the formats
   * without pairs, so the disk works while the pairs are mined and serialised. {@link write} waits
   * for them; it calls this itself if no one has.
   */
  writeUnpaired(outputDir: string): void {
    this.start(outputDir);
  }

  private start(outputDir: string): Started {
    if (this.started) return this.started;
    const started: Started = {
      outputDir,
      split: splitGroups(this.questions, this.keys, this.options),
      files: new Map(),
      writes: [],
    };
    this.started = started;
    for (const format of this.options.formats) if (!PAIR_FORMATS.has(format)) this.writeFormat(format, started);
    return started;
  }

  /** Starts writing one format's train and val files, shuffled, and notes them for the report. */
  private writeFormat(format: FormatName, started: Started): void {
    const { options, lines } = this;
    const i = options.formats.indexOf(format);
    const train: number[] = [];
    const val: number[] = [];
    const { text, question } = lines[i];
    for (let j = 0; j < text.length; j++) (started.split.get(question[j]) === 'val' ? val : train).push(j);
    if (train.length + val.length === 0) return;
    const trainPath = path.join(started.outputDir, `${format}_train.jsonl`);
    const valPath = path.join(started.outputDir, `${format}_val.jsonl`);
    // Each format shuffles with its own stream derived from the seed, so adding a format changes no other file.
    const shuffled = (side: number[], seed: number) => seededShuffle(side, seed).map((j) => text.bytes(j));
    const start = (file: string, side: number[], seed: number) => {
      const w = writeLinesAtomic(file, shuffled(side, seed));
      w.catch(() => {}); // seen by write(), which waits for every file: not unhandled until then
      started.writes.push(w);
    };
    start(trainPath, train, options.seed + 1000 * (i + 1));
    if (val.length) start(valPath, val, options.seed + 1000 * (i + 1) + 1);
    started.files.set(format, {
      total: train.length + val.length,
      train: train.length,
      val: val.length,
      train_path: trainPath,
      val_path: val.length ? valPath : null,
    });
  }

  /**
   * Splits, shuffles and writes every format (those without pairs may be on their way already, see
   * {@link writeUnpaired}), then stats.json, manifest.json and, for the LLaMA-Factory exports,
   * dataset_info.json. `inputs` are the files the records came from, with the hashes of the bytes
   * that were read; `provenance` adds to the manifest what made the records.
   */
  async write(
    outputDir: string,
    inputs: ReadonlyArray<{ path: string; sha256: string }>,
    errors: LineError[],
    provenance: Record<string, unknown> = {},
  ): Promise<FormatReport> {
    const { options, keys } = this;
    const started = this.start(outputDir);
    if (path.resolve(started.outputDir) !== path.resolve(outputDir))
      throw new Error(`DatasetBuilder: started writing to ${started.outputDir}, asked for ${outputDir}`);
    for (const format of options.formats) if (PAIR_FORMATS.has(format)) this.writeFormat(format, started);
    const { split, files, writes } = started;
    const report: FormatReport = {
      outputDir,
      formats: {},
      errors,
      trainQuestions: [...split.values()].filter((s) => s === 'train').length,
      valQuestions: [...split.values()].filter((s) => s === 'val').length,
    };
    // In the order of the formats asked for, whichever was written first.
    for (const format of options.formats) {
      const f = files.get(format);
      if (f) report.formats[format] = f;
    }
    const lf: Record<string, unknown> = {};
    for (const [name, kind] of [
      ['llamafactory_sft', 'sft'],
      ['llamafactory_dpo', 'dpo'],
    ] as const) {
      const f = report.formats[name];
      if (!f) continue;
      for (const side of ['train', 'val'] as const) {
        const p = side === 'train' ? f.train_path : f.val_path;
        if (!p) continue;
        lf[`drag_${kind}_${side}`] = {
          file_name: path.basename(p),
          formatting: 'sharegpt',
          ...(kind === 'dpo' ? { ranking: true } : {}),
          columns: {
            messages: 'conversations',
            system: 'system',
            tools: 'tools',
            ...(kind === 'dpo' ? { chosen: 'chosen', rejected: 'rejected' } : {}),
          },
          tags: {
            role_tag: 'from',
            content_tag: 'value',
            user_tag: 'human',
            assistant_tag: 'gpt',
            observation_tag: 'observation',
            function_tag: 'function_call',
          },
        };
      }
    }
    if (Object.keys(lf).length) writes.push(writeJsonAtomic(path.join(outputDir, 'dataset_info.json'), lf));
    writes.push(
      writeJsonAtomic(path.join(outputDir, 'stats.json'), { total_trajectories: keys.length, ...report.formats }),
    );
    const failed = (await Promise.allSettled(writes)).find((w) => w.status === 'rejected');
    if (failed) throw failed.reason;
    this.lines = options.formats.map(() => ({ text: new LineStore(), question: [] })); // let the written lines go
    // The manifest last: a dataset with one is complete.
    await writeJsonAtomic(path.join(outputDir, 'manifest.json'), {
      tool: 'drag-studio',
      created: new Date().toISOString(),
      inputs: inputs.map((i) => ({ path: path.resolve(i.path), sha256: i.sha256 })),
      ...provenance,
      options: { ...options },
      split: {
        by: options.splitBy,
        seed: options.seed,
        train_ratio: options.trainRatio,
        train_questions: report.trainQuestions,
        val_questions: report.valQuestions,
      },
      counts: report.formats,
      system_prompt_sha256: createHash('sha256').update(SYSTEM_PROMPT).digest('hex'),
    });
    return report;
  }
}

/** `drag format`: processed records -> per-format train/val files, stats.json, manifest.json. */
export async function formatProcessed(
  inputs: readonly string[],
  outputDir: string,
  options: FormatOptions,
): Promise<FormatReport> {
  const dataset = new DatasetBuilder(options);
  const errors: LineError[] = [];
  const read: Array<{ path: string; sha256: string }> = [];
  for (const input of inputs) {
    const [index, sha256] = await withReadHash(input, (hash) =>
      indexJsonl(
        input,
        (v) => {
          if (typeof v.id !== 'string' || typeof v.question !== 'string' || !Array.isArray(v.searches)) {
            return {
              ok: false,
              problems: [
                {
                  fieldPath: formatFieldPath([
                    typeof v.id !== 'string' ? 'id' : typeof v.question !== 'string' ? 'question' : 'searches',
                  ]),
                  message: 'not a processed record (run drag process first)',
                },
              ],
            };
          }
          const r = v as unknown as ProcessedRecord;
          r.question_id = String(v.question_id ?? v.id);
          dataset.add(r);
          return NO_SUMMARY;
        },
        undefined,
        { hash },
      ),
    );
    // Hashed while they were read: the bytes that were formatted, not whatever is there now.
    read.push({ path: input, sha256 });
    errors.push(...indexProblems(index));
  }
  return dataset.write(outputDir, read, errors);
}
