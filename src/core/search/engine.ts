import SearchableMap from 'minisearch/SearchableMap';
import { analyzeWithSpans } from './analyzer';
import type { IndexData } from './index';
import { byteToLength } from './lengths';
import { type Field, parseQuery, type Query } from './query';

/** One hit, as DRAG's search returns it plus our score (callers assign rank by position). */
export interface SearchHit {
  file: string;
  page_number: number;
  total_pages: number;
  rank: number;
  score: number;
  /** Internal document number (OCR line order). */
  doc: number;
}

/** The interface every search backend implements, so the agent and the UI never see which one runs. */
export interface SearchEngine {
  readonly docCount: number;
  search(query: string, topK?: number): SearchHit[];
  /** Analysed terms of a query (what to highlight). */
  queryTerms(query: string): string[];
}

/** BM25F parameters, Whoosh's defaults (docs/drag-compatibility.md#search-engine). */
export const B = 0.75;
export const K1 = 1.2;

/** Matched documents in increasing order, with their scores. */
interface Matches {
  docs: Uint32Array;
  scores: Float64Array;
}

const EMPTY: Matches = { docs: new Uint32Array(0), scores: new Float64Array(0) };

function scale(m: Matches, boost: number): Matches {
  if (boost === 1) return m;
  const scores = new Float64Array(m.scores.length);
  for (let i = 0; i < scores.length; i++) scores[i] = m.scores[i] * boost;
  return { docs: m.docs, scores };
}

/** Intersection; the score is the sum (or, with `scoreFrom`, only that side's). */
function intersect(a: Matches, b: Matches, scoreFrom?: 'a'): Matches {
  const n = Math.min(a.docs.length, b.docs.length);
  const docs = new Uint32Array(n);
  const scores = new Float64Array(n);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.docs.length && j < b.docs.length) {
    const x = a.docs[i];
    const y = b.docs[j];
    if (x < y) i++;
    else if (y < x) j++;
    else {
      docs[k] = x;
      scores[k] = scoreFrom === 'a' ? a.scores[i] : a.scores[i] + b.scores[j];
      k++;
      i++;
      j++;
    }
  }
  return { docs: docs.subarray(0, k), scores: scores.subarray(0, k) };
}

function union(a: Matches, b: Matches): Matches {
  const docs = new Uint32Array(a.docs.length + b.docs.length);
  const scores = new Float64Array(docs.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.docs.length || j < b.docs.length) {
    const x = i < a.docs.length ? a.docs[i] : 0xffffffff;
    const y = j < b.docs.length ? b.docs[j] : 0xffffffff;
    if (x < y) {
      docs[k] = x;
      scores[k] = a.scores[i++];
    } else if (y < x) {
      docs[k] = y;
      scores[k] = b.scores[j++];
    } else {
      docs[k] = x;
      scores[k] = a.scores[i++] + b.scores[j++];
    }
    k++;
  }
  return { docs: docs.subarray(0, k), scores: scores.subarray(0, k) };
}

/** a's documents not in b, a's scores. */
function subtract(a: Matches, b: Matches): Matches {
  const docs = new Uint32Array(a.docs.length);
  const scores = new Float64Array(a.docs.length);
  let j = 0;
  let k = 0;
  for (let i = 0; i < a.docs.length; i++) {
    const x = a.docs[i];
    while (j < b.docs.length && b.docs[j] < x) j++;
    if (j < b.docs.length && b.docs[j] === x) continue;
    docs[k] = x;
    scores[k++] = a.scores[i];
  }
  return { docs: docs.subarray(0, k), scores: scores.subarray(0, k) };
}

/** a's documents; b's score added where b matches too. */
function maybe(a: Matches, b: Matches): Matches {
  const scores = new Float64Array(a.scores);
  let j = 0;
  for (let i = 0; i < a.docs.length; i++) {
    while (j < b.docs.length && b.docs[j] < a.docs[i]) j++;
    if (j < b.docs.length && b.docs[j] === a.docs[i]) scores[i] += b.scores[j];
  }
  return { docs: a.docs, scores };
}

/** Sums a list the way Whoosh's balanced binary matcher tree does (order matters for float ties). */
function binaryTree(items: Matches[], combine: (a: Matches, b: Matches) => Matches): Matches {
  if (items.length === 1) return items[0];
  const half = items.length >> 1;
  return combine(binaryTree(items.slice(0, half), combine), binaryTree(items.slice(half), combine));
}

function wildcardRegex(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else out += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`, 'su');
}

/**
 * The Whoosh-compatible BM25F engine over an {@link IndexData}. The term dictionary for prefix
 * and wildcard expansion is minisearch's radix tree (SearchableMap), built on first use.
 */
export class WhooshCompatibleEngine implements SearchEngine {
  private readonly termIds = new Map<string, number>();
  private readonly avgLength: number;
  private readonly docLength: Float64Array;
  private dictionary: SearchableMap<number> | null = null;
  private fileDocs: Map<string, Uint32Array> | null = null;

  constructor(readonly index: IndexData) {
    index.terms.forEach((t, i) => this.termIds.set(t, i));
    // Whoosh: avg_field_length = total tokens / doc count (or 1 when that is 0).
    this.avgLength = index.docCount ? index.totalLength / index.docCount || 1 : 1;
    this.docLength = new Float64Array(index.docCount);
    for (let d = 0; d < index.docCount; d++) this.docLength[d] = byteToLength(index.lengthByte[d]);
  }

  get docCount(): number {
    return this.index.docCount;
  }

  private terms(): SearchableMap<number> {
    if (!this.dictionary) {
      this.dictionary = new SearchableMap<number>();
      for (const [term, id] of this.termIds) this.dictionary.set(term, id);
    }
    return this.dictionary;
  }

  /** Pages containing the (analysed) term. */
  docFrequency(term: string): number {
    const id = this.termIds.get(term);
    return id === undefined ? 0 : this.index.postStart[id + 1] - this.index.postStart[id];
  }

  /** Whoosh's idf of an (analysed) term: ln(N / (df + 1)) + 1 (0 df for unknown terms). */
  termIdf(term: string): number {
    return Math.log(this.index.docCount / (this.docFrequency(term) + 1)) + 1;
  }

  private idf(termId: number): number {
    const df = this.index.postStart[termId + 1] - this.index.postStart[termId];
    return Math.log(this.index.docCount / (df + 1)) + 1;
  }

  /** BM25F score of every document containing the term (Whoosh's bm25(), same operation order). */
  private termMatches(termId: number): Matches {
    const { postStart, postDocs, postTf } = this.index;
    const start = postStart[termId];
    const end = postStart[termId + 1];
    const docs = postDocs.subarray(start, end);
    const scores = new Float64Array(end - start);
    const idf = this.idf(termId);
    const avgfl = this.avgLength;
    for (let i = start; i < end; i++) {
      const tf = postTf[i];
      const fl = this.docLength[postDocs[i]];
      scores[i - start] = idf * ((tf * (K1 + 1)) / (tf + K1 * (1 - B + (B * fl) / avgfl)));
    }
    return { docs, scores };
  }

  /**
   * Several expanded terms (prefix, wildcard, range). Whoosh ORs them "without weighting": with 2
   * terms, or on a corpus over 5,000 pages (and under 1,024 terms), its default OR still sums BM25
   * scores; otherwise its preloaded array OR gives every matching page a constant score of 1.
   */
  private multiTerm(ids: number[]): Matches {
    if (ids.length === 0) return EMPTY;
    if (ids.length === 1) return this.termMatches(ids[0]);
    ids.sort((a, b) => a - b);
    const summed = ids.length < 1024 && (ids.length === 2 || this.index.docCount > 5000);
    const merged = ids.map((id) => this.termMatches(id)).reduce(union);
    return summed ? merged : { docs: merged.docs, scores: new Float64Array(merged.docs.length).fill(1) };
  }

  private fieldDocs(field: Field, text: string): Matches {
    const n = this.index.docCount;
    if (field === 'file') {
      if (!this.fileDocs) {
        const lists = new Map<string, number[]>();
        for (let d = 0; d < n; d++) {
          const f = this.index.files[this.index.docFile[d]];
          let l = lists.get(f);
          if (!l) lists.set(f, (l = []));
          l.push(d);
        }
        this.fileDocs = new Map([...lists].map(([k, v]) => [k, Uint32Array.from(v)]));
      }
      const docs = this.fileDocs.get(text);
      return docs ? { docs, scores: new Float64Array(docs.length).fill(1) } : EMPTY;
    }
    const values = field === 'page_number' ? this.index.pageNumber : this.index.totalPages;
    const want = Number(text);
    const docs: number[] = [];
    for (let d = 0; d < n; d++) if (values[d] === want) docs.push(d);
    return { docs: Uint32Array.from(docs), scores: new Float64Array(docs.length).fill(1) };
  }

  private phrase(words: string[], slop: number): Matches {
    const ids = words.map((w) => this.termIds.get(w));
    if (ids.some((id) => id === undefined)) return EMPTY;
    const lists = (ids as number[]).map((id) => this.termMatches(id));
    const all = binaryTree(lists, (a, b) => intersect(a, b));
    const { postStart, postDocs, posStart, positions } = this.index;
    const positionsOf = (termId: number, doc: number): Uint32Array => {
      // Binary search the doc in the term's postings.
      let lo = postStart[termId];
      let hi = postStart[termId + 1] - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        if (postDocs[mid] < doc) lo = mid + 1;
        else if (postDocs[mid] > doc) hi = mid - 1;
        else return positions.subarray(posStart[mid], posStart[mid + 1]);
      }
      return new Uint32Array(0);
    };
    const keepDocs: number[] = [];
    const keepScores: number[] = [];
    for (let i = 0; i < all.docs.length; i++) {
      const doc = all.docs[i];
      // Ordered spans with each next word 1..slop positions after the previous (SpanNear2, mindist 1).
      let current = Array.from(positionsOf(ids[0] as number, doc));
      for (let w = 1; w < ids.length && current.length; w++) {
        const next = positionsOf(ids[w] as number, doc);
        const reached: number[] = [];
        for (const p of next) if (current.some((c) => p - c >= 1 && p - c <= slop)) reached.push(p);
        current = reached;
      }
      if (current.length) {
        keepDocs.push(doc);
        keepScores.push(all.scores[i]);
      }
    }
    return { docs: Uint32Array.from(keepDocs), scores: Float64Array.from(keepScores) };
  }

  private all(boost: number, field: Field | null): Matches {
    const docs: number[] = [];
    for (let d = 0; d < this.index.docCount; d++)
      if (field === null || field !== 'text' || this.index.lengthByte[d] > 0) docs.push(d);
    return { docs: Uint32Array.from(docs), scores: new Float64Array(docs.length).fill(boost) };
  }

  evaluate(q: Query): Matches {
    switch (q.type) {
      case 'null':
        return EMPTY;
      case 'term': {
        if (q.field !== 'text') return scale(this.fieldDocs(q.field, q.text), q.boost);
        const id = this.termIds.get(q.text);
        return id === undefined ? EMPTY : scale(this.termMatches(id), q.boost);
      }
      case 'and': {
        const positives = q.children.filter((c) => c.type !== 'not');
        const negatives = q.children.filter((c): c is Extract<Query, { type: 'not' }> => c.type === 'not');
        let m = positives.length
          ? binaryTree(
              positives.map((c) => this.evaluate(c)),
              (a, b) => intersect(a, b),
            )
          : this.all(1, null);
        // NOT inside AND filters (Whoosh's InverseMatcher adds a constant 1.0, which never reorders).
        for (const n of negatives) m = subtract(m, this.evaluate(n.child));
        return scale(m, q.boost);
      }
      case 'or':
        return scale(q.children.map((c) => this.evaluate(c)).reduce(union), q.boost);
      case 'not':
        return scale(subtract(this.all(1, null), this.evaluate(q.child)), q.boost);
      case 'andnot':
        return scale(subtract(this.evaluate(q.a), this.evaluate(q.b)), q.boost);
      case 'andmaybe':
        return scale(maybe(this.evaluate(q.a), this.evaluate(q.b)), q.boost);
      case 'require':
        return scale(intersect(this.evaluate(q.a), this.evaluate(q.b), 'a'), q.boost);
      case 'phrase':
        return scale(this.phrase(q.words, q.slop), q.boost);
      case 'prefix': {
        if (q.field !== 'text') return EMPTY;
        const ids: number[] = [];
        for (const [, id] of this.terms().atPrefix(q.text)) ids.push(id);
        return scale(this.multiTerm(ids), q.boost);
      }
      case 'wildcard': {
        if (q.field !== 'text') return EMPTY;
        const cut = q.pattern.search(/[*?[]/);
        const prefix = cut < 0 ? q.pattern : q.pattern.slice(0, cut);
        const re = wildcardRegex(q.pattern);
        const ids: number[] = [];
        for (const [term, id] of prefix ? this.terms().atPrefix(prefix) : this.termIds) if (re.test(term)) ids.push(id);
        return scale(this.multiTerm(ids), q.boost);
      }
      case 'range': {
        if (q.field !== 'text') return EMPTY;
        const ids: number[] = [];
        for (const [term, id] of this.termIds) {
          if (q.start !== null && (term < q.start || (q.startExcl && term === q.start))) continue;
          if (q.end !== null && (term > q.end || (q.endExcl && term === q.end))) continue;
          ids.push(id);
        }
        return scale(this.multiTerm(ids), q.boost);
      }
      case 'every':
        return this.all(q.boost, q.field);
    }
  }

  /** Top-k by score, ties to the lower document number (Whoosh's collector order). */
  searchParsed(q: Query, topK = 5): SearchHit[] {
    const m = this.evaluate(q);
    const best: number[] = []; // indexes into m, kept sorted best-first, at most topK
    for (let i = 0; i < m.docs.length; i++) {
      if (best.length === topK && !(m.scores[i] > m.scores[best[best.length - 1]])) continue;
      let j = best.length;
      // Docs arrive in increasing order, so a later doc only passes an earlier one on a strictly higher score.
      while (j > 0 && m.scores[i] > m.scores[best[j - 1]]) j--;
      best.splice(j, 0, i);
      if (best.length > topK) best.pop();
    }
    return best.map((i, r) => {
      const doc = m.docs[i];
      return {
        file: this.index.files[this.index.docFile[doc]],
        page_number: this.index.pageNumber[doc],
        total_pages: this.index.totalPages[doc],
        rank: r + 1,
        score: m.scores[i],
        doc,
      };
    });
  }

  search(query: string, topK = 5): SearchHit[] {
    return this.searchParsed(parseQuery(query), topK);
  }

  queryTerms(query: string): string[] {
    const out = new Set<string>();
    const walk = (q: Query) => {
      switch (q.type) {
        case 'term':
          if (q.field === 'text') out.add(q.text);
          break;
        case 'phrase':
          q.words.forEach((w) => out.add(w));
          break;
        case 'and':
        case 'or':
          q.children.forEach(walk);
          break;
        case 'andnot':
        case 'require':
          walk(q.a);
          break;
        case 'andmaybe':
          walk(q.a);
          walk(q.b);
          break;
        default:
          break;
      }
    };
    walk(parseQuery(query));
    return [...out];
  }
}

/** A snippet of `text` around the first matched term, with matched spans marked (never HTML). */
export function snippet(
  text: string,
  terms: readonly string[],
  width = 220,
): { text: string; highlights: Array<[number, number]> } {
  const wanted = new Set(terms);
  const spans = analyzeWithSpans(text).filter((s) => wanted.has(s.token));
  const first = spans[0]?.start ?? 0;
  const start = Math.max(0, first - Math.floor(width / 3));
  const end = Math.min(text.length, start + width);
  const slice = text.slice(start, end);
  const lead = start > 0 ? '…' : '';
  const tail = end < text.length ? '…' : '';
  const highlights = spans
    .filter((s) => s.start >= start && s.end <= end)
    .map((s): [number, number] => [s.start - start + lead.length, s.end - start + lead.length]);
  return { text: `${lead}${slice}${tail}`.replace(/\s/g, ' '), highlights };
}
