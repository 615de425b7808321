import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { BACKGROUND_HASH_BYTES, readHash } from '../../src/core/io/hash';
import { indexJsonl, indexProblems, readLine, type Summarizer } from '../../src/core/io/jsonl';
import { appendJsonl, LineStore, writeFileAtomic, writeJsonAtomic, writeLinesAtomic } from '../../src/core/io/write';
import { trajectorySummarizer } from '../../src/core/trajectories/summary';
import { BROKEN_RUN, FIXTURE_RUN, useTempDir } from './helpers';

/** Keeps every object line; summary = its `n` field. */
const keepN: Summarizer<unknown> = (v) => ({ ok: true, summary: v.n });

/** Expected (offset, length) of each non-blank line, computed independently of the indexer. */
function expectedSpans(bytes: Buffer): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      let end = i;
      if (end > start && bytes[end - 1] === 0x0d) end--;
      if (bytes.subarray(start, end).toString().trim()) spans.push([start, end - start]);
      start = i + 1;
    }
  }
  return spans;
}

describe('JSONL index', () => {
  const tmp = useTempDir();

  it('records the exact byte offset and length of every line, with multi-byte text', async () => {
    const file = path.join(tmp(), 'a.jsonl');
    const lines = [
      { n: 1, t: 'plain' },
      { n: 2, t: 'Zürich — 東京 🚀' },
      { n: 3, t: 'x'.repeat(5000) },
    ];
    writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    // A tiny chunk size forces lines to span reads.
    const index = await indexJsonl(file, keepN, undefined, { chunkSize: 7 });
    assert.deepEqual(index.summaries, [1, 2, 3]);
    assert.deepEqual(index.lines, [1, 2, 3]);
    assert.deepEqual(
      index.offsets.map((o, i) => [o, index.lengths[i]]),
      expectedSpans(readFileSync(file)),
    );
    for (let i = 0; i < 3; i++) assert.deepEqual(await readLine(file, index.offsets[i], index.lengths[i]), lines[i]);
    assert.equal(index.errors.length, 0);
    assert.equal(index.indexedBytes, readFileSync(file).length);
  });

  it('handles CRLF line ends and blank lines without errors, with the right line numbers', async () => {
    const file = path.join(tmp(), 'crlf.jsonl');
    writeFileSync(file, '{"n":1}\r\n\r\n   \n{"n":2}\r\n\n{"n":3}');
    const index = await indexJsonl(file, keepN, undefined, { chunkSize: 4 });
    assert.deepEqual(index.summaries, [1, 2, 3]);
    assert.deepEqual(index.lines, [1, 4, 6]);
    assert.deepEqual(
      index.offsets.map((o, i) => [o, index.lengths[i]]),
      expectedSpans(readFileSync(file)),
    );
    assert.equal(indexProblems(index).length, 0);
  });

  it('skips a UTF-8 byte-order mark', async () => {
    const file = path.join(tmp(), 'bom.jsonl');
    writeFileSync(file, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"n":1}\n{"n":2}\n')]));
    const index = await indexJsonl(file, keepN);
    assert.deepEqual(index.summaries, [1, 2]);
    assert.equal(index.offsets[0], 3);
    assert.deepEqual(await readLine(file, index.offsets[0], index.lengths[0]), { n: 1 });
  });

  it('reports invalid JSON, non-objects and invalid UTF-8 by line and keeps going', async () => {
    const file = path.join(tmp(), 'bad.jsonl');
    writeFileSync(
      file,
      Buffer.concat([
        Buffer.from('{"n":1}\n{"n":\n[1,2]\n'),
        Buffer.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d, 0x0a]), // {"n":"\xff\xfe"}
        Buffer.from('"text"\nnull\n{"n":7}\n'),
      ]),
    );
    const index = await indexJsonl(file, keepN);
    assert.deepEqual(index.summaries, [1, 7]);
    assert.deepEqual(index.lines, [1, 7]);
    assert.deepEqual(
      index.errors.map((e) => [e.line, e.fieldPath]),
      [
        [2, ''],
        [3, ''],
        [4, ''],
        [5, ''],
        [6, ''],
      ],
    );
    assert.match(index.errors[0].message, /invalid JSON/);
    assert.match(index.errors[1].message, /expected a JSON object, found an array/);
    assert.match(index.errors[2].message, /invalid UTF-8/);
    assert.match(index.errors[3].message, /found string/);
    assert.match(index.errors[4].message, /found null/);
    for (const e of index.errors) assert.equal(e.file, file);
  });

  it('gives the same index at every read size: multi-byte text split across reads, one invalid line', async () => {
    const file = path.join(tmp(), 'mixed.jsonl');
    const good = (n: number) => Buffer.from(`${JSON.stringify({ n, t: 'Zürich — 東京 🚀'.repeat(n % 4) })}\n`);
    const parts: Buffer[] = [];
    for (let n = 1; n <= 40; n++)
      parts.push(n === 17 ? Buffer.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xe6, 0x9d, 0x22, 0x7d, 0x0a]) : good(n));
    writeFileSync(file, Buffer.concat(parts));
    const reference = await indexJsonl(file, keepN, undefined, { chunkSize: 1 << 20 });
    assert.equal(reference.summaries.length, 39);
    assert.deepEqual(
      reference.errors.map((e) => [e.line, e.message]),
      [[17, 'invalid UTF-8 byte sequence; line skipped']],
    );
    for (const chunkSize of [3, 5, 8, 13, 31, 64, 100]) {
      const index = await indexJsonl(file, keepN, undefined, { chunkSize });
      for (const key of ['summaries', 'lines', 'offsets', 'lengths', 'errors', 'indexedBytes'] as const)
        assert.deepEqual(index[key], reference[key], `${key} with reads of ${chunkSize} bytes`);
    }
  });

  it('reports a truncated last line and picks it up once the writer finishes it', async () => {
    const file = path.join(tmp(), 'growing.jsonl');
    writeFileSync(file, '{"n":1}\n{"n":2,"t":"hal');
    const first = await indexJsonl(file, keepN);
    assert.deepEqual(first.summaries, [1]);
    assert.equal(first.errors.length, 0);
    assert.equal(first.tailError?.line, 2);
    assert.match(first.tailError?.message ?? '', /truncated last line/);
    assert.equal(first.indexedBytes, 8);
    appendFileSync(file, 'f"}\n{"n":3}\n');
    const second = await indexJsonl(file, keepN, first);
    assert.deepEqual(second.summaries, [1, 2, 3]);
    assert.deepEqual(second.lines, [1, 2, 3]);
    assert.equal(second.tailError, null);
    assert.deepEqual(
      second.offsets.map((o, i) => [o, second.lengths[i]]),
      expectedSpans(readFileSync(file)),
    );
  });

  it('keeps a complete last line without a newline', async () => {
    const file = path.join(tmp(), 'nonl.jsonl');
    writeFileSync(file, '{"n":1}\n{"n":2}');
    const index = await indexJsonl(file, keepN);
    assert.deepEqual(index.summaries, [1, 2]);
    assert.equal(index.tailError, null);
    assert.equal(index.nextLine, 3);
  });

  it('reads only appended bytes when following a growing file, and starts over if it was replaced', async () => {
    const file = path.join(tmp(), 'live.jsonl');
    writeFileSync(file, '{"n":1}\n');
    let seen = 0;
    const counting: Summarizer<unknown> = (v) => {
      seen++;
      return { ok: true, summary: v.n };
    };
    const a = await indexJsonl(file, counting);
    appendFileSync(file, '{"n":2}\n');
    const b = await indexJsonl(file, counting, a);
    assert.equal(seen, 2, 'line 1 must not be parsed twice');
    assert.deepEqual(b.summaries, [1, 2]);
    writeFileSync(`${file}.new`, '{"n":9}\n');
    const { renameSync } = await import('node:fs');
    renameSync(`${file}.new`, file);
    const c = await indexJsonl(file, counting, b);
    assert.deepEqual(c.summaries, [9]);
  });

  it('indexes a 10 MB line among normal ones', async () => {
    const file = path.join(tmp(), 'huge.jsonl');
    const big = JSON.stringify({ n: 2, text: 'é'.repeat(5 * 1024 * 1024) });
    writeFileSync(file, `{"n":1}\n${big}\n{"n":3}\n`);
    const index = await indexJsonl(file, keepN);
    assert.deepEqual(index.summaries, [1, 2, 3]);
    assert.equal(index.lengths[1], Buffer.byteLength(big));
    const back = (await readLine(file, index.offsets[1], index.lengths[1])) as { text: string };
    assert.equal(back.text.length, 5 * 1024 * 1024);
    assert.equal(index.offsets[2], 8 + Buffer.byteLength(big) + 1);
  });

  it('reports schema problems in DRAG trajectories with line and field path', async () => {
    const index = await indexJsonl(BROKEN_RUN, trajectorySummarizer);
    assert.deepEqual(
      index.summaries.map((s) => s.id),
      ['traj_financebench_id_03029', 'traj_financebench_id_00685'],
    );
    assert.deepEqual(
      indexProblems(index).map((e) => [e.line, e.fieldPath]),
      [
        [2, ''],
        [3, 'question'],
        [6, 'iterations[1].results[0].page_number'],
        [7, ''],
        [8, ''],
      ],
    );
  });

  it('can be cancelled', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await assert.rejects(indexJsonl(FIXTURE_RUN, keepN, undefined, { signal: controller.signal }), /stop/);
  });
});

describe('JSONL writers', () => {
  const tmp = useTempDir();

  it('appends records without touching earlier bytes', async () => {
    const file = path.join(tmp(), 'sub', 'out.jsonl');
    await appendJsonl(file, [{ a: 1 }]);
    const before = readFileSync(file);
    await appendJsonl(file, [{ b: 'ü' }, { c: [1] }]);
    const after = readFileSync(file);
    assert.deepEqual(after.subarray(0, before.length), before);
    assert.equal(after.toString(), '{"a":1}\n{"b":"ü"}\n{"c":[1]}\n');
  });

  it('rewrites atomically and leaves no temp file behind', async () => {
    const file = path.join(tmp(), 'state.json');
    await writeJsonAtomic(file, { v: 1 });
    await writeFileAtomic(file, 'second');
    assert.equal(readFileSync(file, 'utf8'), 'second');
    assert.deepEqual(readdirSync(tmp()), ['state.json']);
  });

  it('keeps the old content when the rename fails', async () => {
    const dir = path.join(tmp(), 'target');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'keep'), 'x');
    // Renaming a file over a non-empty directory fails: the directory must survive, and no temp file remain.
    await assert.rejects(writeFileAtomic(dir, 'data'));
    assert.deepEqual(readdirSync(tmp()), ['target']);
    assert.equal(readFileSync(path.join(dir, 'keep'), 'utf8'), 'x');
  });
});

describe('writing lines', () => {
  const tmp = useTempDir();

  const hashTitle =
    'hashes the bytes it indexes, here or on a thread of its own, so a caller need not read the file twice';
  it(hashTitle, async () => {
    const file = path.join(tmp(), 'h.jsonl');
    // Lines longer than the small chunks, so that unfinished lines move between the buffers handed around.
    writeFileSync(
      file,
      Array.from({ length: 500 }, (_, i) => JSON.stringify({ n: i, t: 'é'.repeat(i * 7) })).join('\n'),
    );
    const expected = createHash('sha256').update(readFileSync(file)).digest('hex');
    // 1,000-byte buffers share Node's pool (the thread hashes copies); 5,000-byte ones are handed over whole.
    for (const chunkSize of [1000, 5000])
      for (const [size, cores] of [
        [0, 8],
        [BACKGROUND_HASH_BYTES, 2],
        [BACKGROUND_HASH_BYTES, 8],
      ]) {
        const plain = await indexJsonl(file, keepN, undefined, { chunkSize });
        const hash = readHash(size, cores);
        const index = await indexJsonl(file, keepN, undefined, { chunkSize, hash });
        assert.equal(await hash.digest(), expected, `chunks of ${chunkSize}, input size ${size}`);
        assert.deepEqual(index, plain, `chunks of ${chunkSize}, input size ${size}`);
      }
    // Which way it hashed: a thread takes the buffer (it is detached here) and gives back a spare.
    for (const [cores, threaded] of [
      [2, false],
      [8, true],
    ] as const) {
      const hash = readHash(BACKGROUND_HASH_BYTES, cores);
      const buffer = Buffer.alloc(5000, 1);
      const next = hash.take(buffer, 0, 5000);
      assert.equal(next !== buffer, threaded, `${cores} cores`);
      assert.equal(buffer.length, threaded ? 0 : 5000, `${cores} cores`);
      assert.equal(next.length, 5000, 'a buffer of the same size to read into again');
      assert.equal(await hash.digest(), createHash('sha256').update(Buffer.alloc(5000, 1)).digest('hex'));
    }
  });

  it('LineStore gives back every line byte for byte, across chunks and for lines bigger than a chunk', () => {
    const store = new LineStore(64);
    const lines = ['a\n', 'naïve ✓ 日本\n', 'x'.repeat(200) + '\n', '', '😀'.repeat(30) + '\n', 'end\n'];
    for (const [i, l] of lines.entries()) assert.equal(store.add(l), i);
    assert.equal(store.length, lines.length);
    for (const [i, l] of lines.entries()) assert.equal(store.bytes(i).toString('utf8'), l);
  });

  it('LineStore.addJsonText keeps each JSON line with its newline, also where a line ends a chunk exactly', () => {
    const values = [1, 12345678, 'ü', { a: [1, 2] }, 'x'.repeat(30), null, '日本'];
    for (let chunkSize = 2; chunkSize <= 24; chunkSize++) {
      const store = new LineStore(chunkSize);
      for (const v of values) store.addJsonText(JSON.stringify(v));
      values.forEach((v, i) =>
        assert.equal(store.bytes(i).toString('utf8'), `${JSON.stringify(v)}\n`, `line ${i}, chunks of ${chunkSize}`),
      );
    }
  });

  it('writeLinesAtomic writes strings and bytes in order, including lines bigger than its buffer', async () => {
    const file = path.join(tmp(), 'out.jsonl');
    const big = `${'é'.repeat(3 << 20)}\n`; // 6 MB of UTF-8, more than the 4 MB buffer
    const lines = ['one ✓\n', Buffer.from('two\n'), big, Buffer.from(`${'b'.repeat(5 << 20)}\n`), 'last\n'];
    assert.equal(await writeLinesAtomic(file, lines), 5);
    const expected = Buffer.concat(lines.map((l) => (typeof l === 'string' ? Buffer.from(l) : l)));
    assert.ok(readFileSync(file).equals(expected));
    assert.deepEqual(
      readdirSync(tmp()).filter((f) => f.endsWith('.tmp')),
      [],
    );
    // Many short lines of both kinds, several buffers' worth: strings encoded, bytes gathered, in order.
    const many = Array.from({ length: 30_000 }, (_, i) => {
      const text = `${i} ${'ü'.repeat(i % 400)}\n`;
      return i % 3 ? Buffer.from(text) : text;
    });
    assert.equal(await writeLinesAtomic(file, many), many.length);
    assert.ok(readFileSync(file).equals(Buffer.concat(many.map((l) => (typeof l === 'string' ? Buffer.from(l) : l)))));
  });
});
