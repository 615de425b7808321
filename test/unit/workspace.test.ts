import * as assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CONVENTIONS, loadConfig, trajectoryGlobs } from '../../src/core/workspace/layout';
import { useTempDir } from './helpers';

describe('workspace config', () => {
  const tmp = useTempDir();
  it('works by convention with no drag.config.json', async () => {
    const loaded = await loadConfig(tmp());
    assert.equal(loaded.exists, false);
    assert.deepEqual(trajectoryGlobs(loaded.config), [CONVENTIONS.runsGlob]);
  });
  it('reads runs globs from the config', async () => {
    writeFileSync(path.join(tmp(), 'drag.config.json'), JSON.stringify({ runs: ['old/*.jsonl'] }));
    assert.deepEqual(trajectoryGlobs((await loadConfig(tmp())).config), ['old/*.jsonl']);
  });
  it('names the file, line and field of a bad value', async () => {
    writeFileSync(path.join(tmp(), 'drag.config.json'), '{\n  "search": {\n    "topK": "three"\n  }\n}\n');
    const loaded = await loadConfig(tmp());
    assert.equal(loaded.errors.length, 1);
    assert.equal(loaded.errors[0].line, 3);
    assert.equal(loaded.errors[0].fieldPath, 'search.topK');
    assert.equal(loaded.errors[0].file, path.join(tmp(), 'drag.config.json'));
  });
});
