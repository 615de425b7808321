import { analyze } from './analyzer';

/**
 * Whoosh 2.7's default QueryParser as DRAG used it (`QueryParser("text", schema)`, AND by
 * default; docs/drag-compatibility.md#search-engine), re-implemented stage by stage: the same taggers in the same
 * order, then the same filters (groups, boosts, wildcards, field names, operators), then normalisation.
 * Parsing never fails: odd input just yields fewer hits, as in Whoosh.
 */
export type TextField = 'text';
export type Field = TextField | 'file' | 'page_number' | 'total_pages';

export type Query =
  | { type: 'term'; field: Field; text: string; boost: number }
  | { type: 'and' | 'or'; children: Query[]; boost: number }
  | { type: 'not'; child: Query; boost: number }
  | { type: 'andnot' | 'andmaybe' | 'require'; a: Query; b: Query; boost: number }
  | { type: 'phrase'; field: Field; words: string[]; slop: number; boost: number }
  | { type: 'prefix'; field: Field; text: string; boost: number }
  | { type: 'wildcard'; field: Field; pattern: string; boost: number }
  | {
      type: 'range';
      field: Field;
      start: string | null;
      end: string | null;
      startExcl: boolean;
      endExcl: boolean;
      boost: number;
    }
  | { type: 'every'; field: Field | null; boost: number }
  | { type: 'null' };

export const NULL_QUERY: Query = { type: 'null' };
const FIELDS: ReadonlySet<string> = new Set(['text', 'file', 'page_number', 'total_pages']);
const NUMERIC_FIELDS: ReadonlySet<string> = new Set(['page_number', 'total_pages']);

type OpName = 'NOT' | 'AND' | 'OR' | 'ANDNOT' | 'ANDMAYBE' | 'REQUIRE';
type GroupKind = 'and' | 'or' | 'not' | 'andnot' | 'andmaybe' | 'require';

interface Base {
  fieldname?: string;
  boost?: number;
  start: number;
}
type Node = Base &
  (
    | { k: 'word'; text: string; quoted?: boolean }
    | { k: 'ws' }
    | { k: 'wild'; text: string }
    | { k: 'prefix'; text: string }
    | { k: 'phrase'; text: string; slop: number }
    | { k: 'field'; name: string; original: string }
    | { k: 'open' }
    | { k: 'close' }
    | { k: 'op'; op: OpName }
    | { k: 'boostop'; value: number; original: string }
    | { k: 'every' }
    | { k: 'range'; lo: string | null; hi: string | null; loExcl: boolean; hiExcl: boolean }
    | { k: 'group'; kind: GroupKind; children: Node[] }
  );

const W = '[\\p{L}\\p{N}_]';
const NW = '[^\\p{L}\\p{N}_]';
const QMARKS = '?\u055E\u061F\u1367';

interface Tagger {
  re: RegExp;
  make(m: RegExpExecArray, start: number): Node | null;
}

const op = (pattern: string, name: OpName): Tagger => ({
  re: new RegExp(pattern, 'uy'),
  make: (_m, start) => ({ k: 'op', op: name, start }),
});

/** Whoosh's taggers in Whoosh's priority order. */
const TAGGERS: Tagger[] = [
  op('(?<=\\s)ANDNOT(?=\\s)', 'ANDNOT'),
  op('(?<=\\s)ANDMAYBE(?=\\s)', 'ANDMAYBE'),
  { re: /[*]:[*]/uy, make: (_m, start) => ({ k: 'every', start }) },
  {
    re: new RegExp(`(?:^|(?<=${NW}))'(.*?)'(?=\\s|\\]|[)}]|$)`, 'uy'),
    make: (m, start) => ({ k: 'word', text: m[1], quoted: true, start }),
  },
  { re: new RegExp(`(${W}+|[*]):`, 'uy'), make: (m, start) => ({ k: 'field', name: m[1], original: m[0], start }) },
  { re: new RegExp(`[*${QMARKS}]`, 'uy'), make: (m, start) => ({ k: 'wild', text: m[0], start }) },
  {
    re: /"(.*?)"(~([1-9][0-9]*))?/uy,
    make: (m, start) => ({ k: 'phrase', text: m[1], slop: m[3] ? Number(m[3]) : 1, start }),
  },
  { re: /[(]/uy, make: (_m, start) => ({ k: 'open', start }) },
  { re: /[)]/uy, make: (_m, start) => ({ k: 'close', start }) },
  op('(?:^|(?<=(?:\\s|[()])))NOT(?=\\s)', 'NOT'),
  op('(?<=\\s)AND(?=\\s)', 'AND'),
  op('(?<=\\s)OR(?=\\s)', 'OR'),
  op('(?:^|(?<=\\s))REQUIRE(?=\\s)', 'REQUIRE'),
  {
    re: /\^([0-9]*(?:\.[0-9]+)?)(?:$|(?=[ \t\r\n)]))/uy,
    make: (m, start) => {
      const value = Number.parseFloat(m[1]);
      return Number.isNaN(value) ? null : { k: 'boostop', value, original: m[0], start };
    },
  },
  {
    re: /(\{|\[)('[^']*?'\s+|[^\]\}]+?(?=[Tt][Oo]))?[Tt][Oo](\s+'[^']*?'|[^\]\}]+?)?(\}|\])/uy,
    make: (m, start) => {
      const clean = (s: string | undefined) => {
        if (s === undefined) return null;
        const t = s.trim();
        return t.startsWith("'") && t.endsWith("'") && t.length >= 2 ? t.slice(1, -1) : t || null;
      };
      return { k: 'range', lo: clean(m[2]), hi: clean(m[3]), loExcl: m[1] === '{', hiExcl: m[4] === '}', start };
    },
  },
  { re: /\s+/uy, make: (_m, start) => ({ k: 'ws', start }) },
];

function tag(text: string): Node[] {
  const out: Node[] = [];
  let prev = 0;
  let pos = 0;
  while (pos < text.length) {
    let matched = false;
    for (const t of TAGGERS) {
      t.re.lastIndex = pos;
      const m = t.re.exec(text);
      if (!m || m[0].length === 0) continue;
      const node = t.make(m, pos);
      if (!node) continue;
      if (prev < pos) out.push({ k: 'word', text: text.slice(prev, pos), start: prev });
      out.push(node);
      prev = pos = pos + m[0].length;
      matched = true;
      break;
    }
    if (!matched) pos += text.codePointAt(pos)! > 0xffff ? 2 : 1;
  }
  if (prev < text.length) out.push({ k: 'word', text: text.slice(prev), start: prev });
  return out;
}

const isText = (n: Node) => n.k === 'word';
const hasText = (n: Node): n is Node & { text: string } => 'text' in n;

/** Parentheses to nested groups; an unclosed group runs to the end, a stray `)` is dropped. */
function doGroups(nodes: Node[]): Node[] {
  const stack: Node[][] = [[]];
  for (const n of nodes) {
    if (n.k === 'open') stack.push([]);
    else if (n.k === 'close') {
      if (stack.length > 1) {
        const children = stack.pop()!;
        stack[stack.length - 1].push({ k: 'group', kind: 'and', children, start: n.start });
      }
    } else stack[stack.length - 1].push(n);
  }
  while (stack.length > 1) {
    const children = stack.pop()!;
    stack[stack.length - 1].push({ k: 'group', kind: 'and', children, start: 0 });
  }
  return stack[0];
}

/** A boost after whitespace (or first) is just text. */
function cleanBoost(group: Node[]): Node[] {
  return group.map((n, i) => {
    if (n.k === 'group') return { ...n, children: cleanBoost(n.children) };
    if (n.k === 'boostop' && (i === 0 || group[i - 1].k === 'ws'))
      return { k: 'word', text: n.original, start: n.start };
    return n;
  });
}

function doWildcards(group: Node[]): Node[] {
  let i = 0;
  while (i < group.length) {
    const node = group[i];
    if (node.k === 'wild') {
      if (i < group.length - 1 && isText(group[i + 1])) {
        const next = group.splice(i + 1, 1)[0] as { text: string };
        node.text += next.text;
      }
      if (i > 0 && isText(group[i - 1])) {
        const prev = group.splice(i - 1, 1)[0] as { text: string };
        node.text = prev.text + node.text;
      } else i++;
    } else {
      if (node.k === 'group') node.children = doWildcards(node.children);
      i++;
    }
  }
  for (let j = 0; j < group.length; j++) {
    const node = group[j];
    if (
      node.k === 'wild' &&
      node.text.length > 1 &&
      ![...QMARKS].some((q) => node.text.includes(q)) &&
      node.text.indexOf('*') === node.text.length - 1
    ) {
      group[j] = { k: 'prefix', text: node.text.slice(0, -1), start: node.start };
    }
  }
  return group;
}

function toWord(n: Node & { k: 'field' }): Node {
  return { k: 'word', text: n.original, start: n.start };
}

function setFieldname(n: Node, fieldname: string): void {
  if (n.fieldname === undefined) n.fieldname = fieldname;
  if (n.k === 'group') for (const c of n.children) setFieldname(c, fieldname);
}

function doFieldnames(input: Node[]): Node[] {
  // Unknown field names become text, glued to the next text node.
  let group: Node[] = [];
  let pending: (Node & { k: 'field' }) | null = null;
  for (const node of input) {
    if (node.k === 'field' && !FIELDS.has(node.name)) {
      pending = node;
      continue;
    }
    if (pending) {
      if (hasText(node)) node.text = pending.original + node.text;
      else group.push(toWord(pending));
      pending = null;
    }
    group.push(node);
  }
  if (pending) group.push(toWord(pending));
  const out: Node[] = [];
  let i = group.length;
  while (i > 0) {
    i--;
    let node = group[i];
    if (node.k === 'field') node = toWord(node);
    else if (node.k === 'group') node = { ...node, children: doFieldnames(node.children) };
    const before = group[i - 1];
    if (i > 0 && node.k !== 'ws' && before.k === 'field') {
      setFieldname(node, before.name);
      i--;
    }
    out.push(node);
  }
  group = out.reverse();
  return group;
}

function removeWhitespace(group: Node[]): Node[] {
  return group
    .filter((n) => n.k !== 'ws')
    .map((n) => (n.k === 'group' ? { ...n, children: removeWhitespace(n.children) } : n));
}

function doBoost(group: Node[]): Node[] {
  const out: Node[] = [];
  for (const n of group) {
    if (n.k === 'boostop') {
      if (out.length > 0) out[out.length - 1].boost = n.value;
      continue;
    }
    out.push(n.k === 'group' ? { ...n, children: doBoost(n.children) } : n);
  }
  return out;
}

const OP_ORDER: Array<{ op: OpName; kind: GroupKind; prefix?: boolean; merging: boolean }> = [
  { op: 'NOT', kind: 'not', prefix: true, merging: false },
  { op: 'AND', kind: 'and', merging: true },
  { op: 'OR', kind: 'or', merging: true },
  { op: 'ANDNOT', kind: 'andnot', merging: false },
  { op: 'ANDMAYBE', kind: 'andmaybe', merging: false },
  { op: 'REQUIRE', kind: 'require', merging: false },
];

/** Operators in Whoosh's order (NOT, AND, OR, ANDNOT, ANDMAYBE, REQUIRE), all left-associative. */
function doOperators(input: Node[]): Node[] {
  const group = [...input];
  for (const spec of OP_ORDER) {
    let i = 0;
    while (i < group.length) {
      const t = group[i];
      if (!(t.k === 'op' && t.op === spec.op)) {
        i++;
        continue;
      }
      if (spec.prefix) {
        const length = group.length;
        group.splice(i, 1);
        if (i < length - 1) group[i] = { k: 'group', kind: spec.kind, children: [group[i]], start: t.start };
        continue;
      }
      if (i > 0 && i < group.length - 1) {
        const left = group[i - 1];
        const right = group[i + 1];
        if (spec.merging && left.k === 'group' && left.kind === spec.kind && left.start === -1) {
          left.children.push(right);
          group.splice(i, 2);
        } else {
          // start -1 marks a group made by an operator (mergeable), not by parentheses.
          group.splice(i - 1, 3, { k: 'group', kind: spec.kind, children: [left, right], start: -1 });
        }
      } else {
        group.splice(i, 1);
      }
    }
  }
  return group.map((n) => (n.k === 'group' ? { ...n, children: doOperators(n.children) } : n));
}

function boosted<Q extends Query>(q: Q, boost: number | undefined): Q {
  if (boost === undefined || q.type === 'null') return q;
  return { ...q, boost: (q as { boost: number }).boost * boost };
}

function numericTerm(field: Field, text: string): Query {
  const t = text.trim();
  // Whoosh's NUMERIC accepts what Python's int() accepts (no decimals here: the fields are ints).
  if (!/^[+-]?\d+$/.test(t)) return NULL_QUERY;
  return { type: 'term', field, text: String(Number.parseInt(t, 10)), boost: 1 };
}

function wordQuery(field: Field, text: string): Query {
  if (field === 'file') return { type: 'term', field, text, boost: 1 };
  if (NUMERIC_FIELDS.has(field)) return numericTerm(field, text);
  const tokens = analyze(text);
  if (tokens.length === 0) return NULL_QUERY;
  if (tokens.length === 1) return { type: 'term', field, text: tokens[0], boost: 1 };
  return { type: 'and', children: tokens.map((t) => ({ type: 'term', field, text: t, boost: 1 })), boost: 1 };
}

function toQuery(n: Node): Query {
  const field = (n.fieldname && FIELDS.has(n.fieldname) ? n.fieldname : 'text') as Field;
  switch (n.k) {
    case 'word':
      return boosted(wordQuery(field, n.text), n.boost);
    case 'phrase': {
      if (field !== 'text') return boosted(wordQuery(field, n.text), n.boost);
      const words = analyze(n.text);
      if (words.length === 0) return NULL_QUERY;
      if (words.length === 1) return boosted({ type: 'term', field, text: words[0], boost: 1 }, n.boost);
      return boosted({ type: 'phrase', field, words, slop: n.slop, boost: 1 }, n.boost);
    }
    case 'prefix':
      return boosted(
        { type: 'prefix', field, text: field === 'file' ? n.text : n.text.toLowerCase(), boost: 1 },
        n.boost,
      );
    case 'wild': {
      const pattern = field === 'file' ? n.text : n.text.toLowerCase();
      if (pattern === '*') return boosted({ type: 'every', field, boost: 1 }, n.boost);
      return boosted({ type: 'wildcard', field, pattern, boost: 1 }, n.boost);
    }
    case 'every':
      return boosted({ type: 'every', field: null, boost: 1 }, n.boost);
    case 'range':
      return boosted(
        {
          type: 'range',
          field,
          start: n.lo?.toLowerCase() ?? null,
          end: n.hi?.toLowerCase() ?? null,
          startExcl: n.loExcl,
          endExcl: n.hiExcl,
          boost: 1,
        },
        n.boost,
      );
    case 'group': {
      const children = n.children.map(toQuery);
      let q: Query;
      switch (n.kind) {
        case 'and':
          q = { type: 'and', children, boost: 1 };
          break;
        case 'or':
          q = { type: 'or', children, boost: 1 };
          break;
        case 'not':
          q = children[0] ? { type: 'not', child: children[0], boost: 1 } : NULL_QUERY;
          break;
        default:
          q = children.length === 2 ? { type: n.kind, a: children[0], b: children[1], boost: 1 } : NULL_QUERY;
      }
      return boosted(q, n.boost);
    }
    default:
      return NULL_QUERY; // stray operators, field names and boosts mean nothing on their own
  }
}

/** A stable identity for duplicate removal (Whoosh compares queries by value). */
export function queryKey(q: Query): string {
  return JSON.stringify(q);
}

/** Whoosh's normalize(): flatten nested AND/OR, drop nulls and duplicates, unwrap single children. */
export function normalize(q: Query): Query {
  switch (q.type) {
    case 'and':
    case 'or': {
      let subs: Query[] = [];
      for (const child of q.children) {
        const s = normalize(child);
        if (s.type === q.type) subs.push(...s.children.map((c) => boosted(c, s.boost)));
        else subs.push(s);
      }
      if (subs.every((s) => s.type === 'null')) return NULL_QUERY;
      if (subs.some((s) => s.type === 'every' && s.field === null)) return { type: 'every', field: null, boost: 1 };
      const everyFields = new Set(
        subs.filter((s) => s.type === 'every').map((s) => (s as { field: Field | null }).field),
      );
      const seen = new Set<string>();
      const kept: Query[] = [];
      for (const s of subs) {
        if (s.type !== 'every' && s.type !== 'null' && 'field' in s && everyFields.has(s.field)) continue;
        const key = queryKey(s);
        if (seen.has(key)) continue;
        seen.add(key);
        kept.push(s);
      }
      subs = kept.filter((s) => s.type !== 'null');
      if (subs.length === 0) return NULL_QUERY;
      if (subs.length === 1) return boosted(subs[0], q.boost);
      return { type: q.type, children: subs, boost: q.boost };
    }
    case 'not': {
      const child = normalize(q.child);
      return child.type === 'null' ? NULL_QUERY : { ...q, child };
    }
    case 'andnot': {
      const a = normalize(q.a);
      const b = normalize(q.b);
      if (a.type === 'null') return NULL_QUERY;
      if (b.type === 'null') return boosted(a, q.boost);
      return { ...q, a, b };
    }
    case 'andmaybe':
    case 'require': {
      const a = normalize(q.a);
      const b = normalize(q.b);
      if (q.type === 'require' && (a.type === 'null' || b.type === 'null')) return NULL_QUERY;
      if (a.type === 'null') return NULL_QUERY;
      if (b.type === 'null') return boosted(a, q.boost);
      return { ...q, a, b };
    }
    case 'prefix':
      return q.text === '' ? { type: 'every', field: q.field, boost: q.boost } : q;
    default:
      return q;
  }
}

/** Parses a query the way Whoosh's default QueryParser does with AND as the default group. */
export function parseQuery(text: string): Query {
  let nodes = tag(text);
  nodes = doGroups(nodes);
  nodes = cleanBoost(nodes);
  nodes = doWildcards(nodes);
  nodes = doFieldnames(nodes);
  nodes = removeWhitespace(nodes);
  nodes = doBoost(nodes);
  nodes = doOperators(nodes);
  return normalize(toQuery({ k: 'group', kind: 'and', children: nodes, start: 0 }));
}

/** Whoosh-like repr of a parsed query, for `drag search --explain`. */
export function formatQuery(q: Query): string {
  const b = (boost: number) => (boost !== 1 ? `^${boost}` : '');
  switch (q.type) {
    case 'null':
      return '<null>';
    case 'term':
      return `${q.field === 'text' ? '' : `${q.field}:`}${q.text}${b(q.boost)}`;
    case 'and':
      return `AND(${q.children.map(formatQuery).join(', ')})${b(q.boost)}`;
    case 'or':
      return `OR(${q.children.map(formatQuery).join(', ')})${b(q.boost)}`;
    case 'not':
      return `NOT(${formatQuery(q.child)})`;
    case 'andnot':
      return `ANDNOT(${formatQuery(q.a)}, ${formatQuery(q.b)})${b(q.boost)}`;
    case 'andmaybe':
      return `ANDMAYBE(${formatQuery(q.a)}, ${formatQuery(q.b)})${b(q.boost)}`;
    case 'require':
      return `REQUIRE(${formatQuery(q.a)}, ${formatQuery(q.b)})${b(q.boost)}`;
    case 'phrase':
      return `PHRASE("${q.words.join(' ')}"${q.slop !== 1 ? `~${q.slop}` : ''})${b(q.boost)}`;
    case 'prefix':
      return `PREFIX(${q.text}*)${b(q.boost)}`;
    case 'wildcard':
      return `WILDCARD(${q.pattern})${b(q.boost)}`;
    case 'range':
      return `RANGE(${q.startExcl ? '{' : '['}${q.start ?? ''} TO ${q.end ?? ''}${q.endExcl ? '}' : ']'})`;
    case 'every':
      return `EVERY(${q.field ?? '*'})`;
  }
}
