import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as oniguruma from 'vscode-oniguruma';
import * as vsctm from 'vscode-textmate';
import { ROOT } from './helpers';

/** Tokenizes with the real TextMate engine VS Code uses (vscode-textmate + oniguruma). */
async function registry(): Promise<vsctm.Registry> {
  const wasm = readFileSync(path.join(ROOT, 'node_modules', 'vscode-oniguruma', 'release', 'onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const grammars: Record<string, string> = {
    'source.drag-query': 'syntaxes/drag-query.tmLanguage.json',
    'drag-query.injection': 'syntaxes/drag-query.injection.json',
  };
  // A minimal JSON host grammar, enough to host the injection (VS Code's own is richer).
  const json = {
    scopeName: 'source.json',
    patterns: [{ begin: '"', end: '"', name: 'string.quoted.double.json' }],
  };
  return new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (p: string[]) => new oniguruma.OnigScanner(p),
      createOnigString: (s: string) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scope) => {
      if (scope === 'source.json') return vsctm.parseRawGrammar(JSON.stringify(json), 'json.json');
      const file = grammars[scope];
      return file ? vsctm.parseRawGrammar(readFileSync(path.join(ROOT, file), 'utf8'), path.join(ROOT, file)) : null;
    },
    getInjections: (scope) => (scope === 'source.json' ? ['drag-query.injection'] : undefined),
  });
}

function scopesOf(grammar: vsctm.IGrammar, line: string): Array<[string, string]> {
  const { tokens } = grammar.tokenizeLine(line, vsctm.INITIAL);
  return tokens.map((t) => [line.slice(t.startIndex, t.endIndex), t.scopes[t.scopes.length - 1]]);
}

describe('drag-query TextMate grammar', () => {
  let reg: vsctm.Registry;
  before(async () => {
    reg = await registry();
  });

  it('highlights operators, phrases with slop, fields, wildcards and boosts', async () => {
    const g = (await reg.loadGrammar('source.drag-query'))!;
    const tokens = scopesOf(g, 'capex 2018 OR "net income"~2 NOT lease file:3M_2018_10K.pdf reven* cash^2');
    const find = (text: string) => tokens.find(([t]) => t === text)?.[1];
    assert.equal(find('OR'), 'keyword.operator.logical.drag-query');
    assert.equal(find('NOT'), 'keyword.operator.logical.drag-query');
    assert.equal(find('~2'), 'keyword.operator.slop.drag-query');
    assert.equal(find('file'), 'variable.other.field.drag-query');
    assert.equal(find('reven*'), 'keyword.other.wildcard.drag-query');
    assert.equal(find('^2'), 'constant.numeric.boost.drag-query');
    assert.equal(find('2018'), 'constant.numeric.drag-query');
    assert.ok(tokens.some(([t, s]) => t === 'net income' && s === 'string.quoted.double.phrase.drag-query'));
  });

  it('leaves lower-case and/or/not alone (they are stop words, not operators)', async () => {
    const g = (await reg.loadGrammar('source.drag-query'))!;
    const tokens = scopesOf(g, 'cash or flow');
    assert.ok(!tokens.some(([, s]) => s.startsWith('keyword.operator')));
  });

  it('is injected into "query" values of JSON/JSONL files, and only there', async () => {
    const g = (await reg.loadGrammar('source.json'))!;
    const tokens = scopesOf(g, '{"question": "revenue OR sales?", "query": "revenue OR sales*"}');
    const ors = tokens.filter(([t]) => t === 'OR');
    assert.equal(ors.length, 1, 'the question text is not a query');
    assert.equal(ors[0][1], 'keyword.operator.logical.drag-query');
    assert.ok(tokens.some(([t, s]) => t === 'sales*' && s === 'keyword.other.wildcard.drag-query'));
  });
});
