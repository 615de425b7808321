import * as assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { WhooshCompatibleEngine } from '../../../src/core/search/engine';
import { buildIndex } from '../../../src/core/search/index';
import type { DragStudioApi } from '../../../src/extension/extension';
import { answerCall, FakeOpenAI, searchCall } from '../../helpers/fakeOpenAI';
import type { TrajectoryNode } from '../../../src/extension/trajectories/tree';

const EXTENSION_ID = 'drag-studio.drag-studio';

async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function workspaceRoot(): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the test workspace must be open');
  return folder.uri.fsPath;
}

describe('DRAG Studio in a real VS Code', function () {
  let api: DragStudioApi;

  before(async () => {
    const ext = vscode.extensions.getExtension<DragStudioApi>(EXTENSION_ID);
    assert.ok(ext, `${EXTENSION_ID} is not installed in this extension host`);
    api = await ext.activate();
    await api.store.ready();
  });

  const labelOf = (node: TrajectoryNode) => {
    const label = api.trajectories.getTreeItem(node).label;
    return typeof label === 'string' ? label : (label?.label ?? '');
  };
  const descriptionOf = (node: TrajectoryNode) => String(api.trajectories.getTreeItem(node).description ?? '');

  async function fileNode(relative: string): Promise<TrajectoryNode> {
    const roots = await api.trajectories.getChildren();
    const node = roots.find((n) => labelOf(n) === relative);
    assert.ok(node, `no tree node for ${relative}; have ${roots.map(labelOf).join(', ')}`);
    return node;
  }

  it('registers every command it contributes', async () => {
    const pkg = JSON.parse(
      readFileSync(path.join(vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath, 'package.json'), 'utf8'),
    );
    const contributed: string[] = pkg.contributes.commands.map((c: { command: string }) => c.command);
    const registered = new Set(await vscode.commands.getCommands(true));
    const missing = contributed.filter((c) => !registered.has(c));
    assert.deepEqual(missing, []);
    assert.ok(contributed.length >= 8);
  });

  it('shows each trajectories file of runs/ with its count', async () => {
    const roots = await api.trajectories.getChildren();
    assert.deepEqual(roots.map(labelOf), ['runs/broken/trajectories.jsonl', 'runs/qwen-base/trajectories.jsonl']);
    assert.equal(descriptionOf(roots[1]), '8 trajectories');
    assert.equal(descriptionOf(roots[0]), '2 trajectories · 5 bad lines');
  });

  it('groups trajectories by outcome with counts', async () => {
    const groups = await api.trajectories.getChildren(await fileNode('runs/qwen-base/trajectories.jsonl'));
    assert.deepEqual(
      groups.map((g) => [labelOf(g), descriptionOf(g)]),
      [
        ['Found at rank 1', '4'],
        ['Found lower', '1'],
        ['Never found', '2'],
        ['Errored', '1'],
      ],
    );
  });

  it('shows trajectory -> steps -> result pages, with the ground-truth page marked', async () => {
    const groups = await api.trajectories.getChildren(await fileNode('runs/qwen-base/trajectories.jsonl'));
    const rank1 = await api.trajectories.getChildren(groups[0]);
    assert.match(labelOf(rank1[1]), /^Assume that you are a public equities analyst/);
    assert.equal(descriptionOf(rank1[1]), 'best 1.00 · 3 steps');
    const steps = await api.trajectories.getChildren(rank1[1]);
    assert.deepEqual(steps.map(labelOf), [
      '1. 3M balance sheet property plant equipment net',
      '2. "property, plant and equipment - net" 2018',
      '3. answer: $8.7 billion',
    ]);
    assert.equal(descriptionOf(steps[0]), 'GT rank 2 · score 0.67');
    assert.equal(descriptionOf(steps[1]), 'GT rank 1 · score 1.00');
    const results = await api.trajectories.getChildren(steps[0]);
    assert.deepEqual(
      results.map((r) => [labelOf(r), descriptionOf(r)]),
      [
        ['3M_2018_10K.pdf p.38', 'rank 1'],
        ['3M_2018_10K.pdf p.58', 'rank 2 · ground truth'],
        ['3M_2018_10K.pdf p.90', 'rank 3'],
      ],
    );
    const tooltip = api.trajectories.getTreeItem(rank1[1]).tooltip as vscode.MarkdownString;
    // appendText escapes untrusted text (spaces become &nbsp;, markdown characters are backslashed).
    assert.match(tooltip.value, /Ground(&nbsp;| )truth:(&nbsp;| )3M\\_2018\\_10K\.pdf(&nbsp;| )p\.58/);
  });

  it('puts the bad lines of a broken file in the Problems panel at their lines', async () => {
    const uri = vscode.Uri.file(path.join(workspaceRoot(), 'runs', 'broken', 'trajectories.jsonl'));
    const diagnostics = await waitFor('diagnostics', () => {
      const d = vscode.languages.getDiagnostics(uri).filter((x) => x.source === 'DRAG');
      return d.length === 5 ? d : undefined;
    });
    assert.deepEqual(
      diagnostics.map((d) => d.range.start.line),
      [1, 2, 5, 6, 7],
    );
    assert.match(diagnostics[1].message, /^question: Invalid input: expected string, received number/);
    assert.match(diagnostics[2].message, /^iterations\[1\]\.results\[0\]\.page_number:/);
    assert.equal(diagnostics[0].severity, vscode.DiagnosticSeverity.Error);
  });

  it('filters by question or query text', async () => {
    try {
      api.trajectories.setFilter('CYCLICAL');
      const file = await fileNode('runs/qwen-base/trajectories.jsonl');
      assert.equal(descriptionOf(file), '1 of 8 trajectories');
      const groups = await api.trajectories.getChildren(file);
      assert.deepEqual(groups.map(labelOf), ['Found at rank 1']);
      // A query-only match: the question does not say "Czech", a query does.
      api.trajectories.setFilter('czech');
      const g2 = await api.trajectories.getChildren(await fileNode('runs/qwen-base/trajectories.jsonl'));
      assert.deepEqual(
        g2.map((g) => [labelOf(g), descriptionOf(g)]),
        [['Never found', '1']],
      );
    } finally {
      api.trajectories.setFilter('');
    }
  });

  it('follows a run that is still collecting (lines appended to the file)', async () => {
    const file = path.join(workspaceRoot(), 'runs', 'qwen-base', 'trajectories.jsonl');
    const first = readFileSync(file, 'utf8').split('\n')[0];
    const record = JSON.parse(first);
    record.id = 'traj_live_1';
    appendFileSync(file, `${JSON.stringify(record)}\n`);
    await waitFor(
      'the appended trajectory',
      async () => descriptionOf(await fileNode('runs/qwen-base/trajectories.jsonl')) === '9 trajectories' || undefined,
    );
    const groups = await api.trajectories.getChildren(await fileNode('runs/qwen-base/trajectories.jsonl'));
    assert.equal(descriptionOf(groups[0]), '5');
  });

  it('pages children past 200 with "Load more"', async () => {
    const dir = path.join(workspaceRoot(), 'runs', 'big');
    mkdirSync(dir, { recursive: true });
    const template = JSON.parse(
      readFileSync(path.join(workspaceRoot(), 'runs', 'qwen-base', 'trajectories.jsonl'), 'utf8').split('\n')[0],
    );
    const lines = Array.from({ length: 450 }, (_, i) =>
      JSON.stringify({ ...template, id: `traj_big_${i}`, question: `Question ${i}` }),
    );
    writeFileSync(path.join(dir, 'trajectories.jsonl'), `${lines.join('\n')}\n`);
    const node = await waitFor('runs/big in the tree', async () => {
      const roots = await api.trajectories.getChildren();
      return roots.find((n) => labelOf(n) === 'runs/big/trajectories.jsonl' && descriptionOf(n) === '450 trajectories');
    });
    const [group] = await api.trajectories.getChildren(node);
    let children = await api.trajectories.getChildren(group);
    assert.equal(children.length, 201);
    const more = children[200];
    assert.equal(more.kind, 'loadMore');
    assert.equal(labelOf(more), 'Load more… (200 of 450 shown)');
    const item = api.trajectories.getTreeItem(more);
    await vscode.commands.executeCommand(item.command!.command, ...(item.command!.arguments ?? []));
    children = await api.trajectories.getChildren(group);
    assert.equal(children.length, 401);
    assert.equal(labelOf(children[399]), 'Question 399');
  });

  it('opens a trajectory record as pretty JSON without opening the whole file', async () => {
    const groups = await api.trajectories.getChildren(await fileNode('runs/qwen-base/trajectories.jsonl'));
    const [first] = await api.trajectories.getChildren(groups[0]);
    await vscode.commands.executeCommand('drag.showTrajectoryRecord', first);
    const editor = await waitFor('the record editor', () =>
      vscode.window.visibleTextEditors.find((e) => e.document.uri.scheme === 'drag-record'),
    );
    const record = JSON.parse(editor.document.getText());
    assert.equal(record.id, 'traj_financebench_id_03029');
    assert.equal(editor.document.languageId, 'json');
  });

  it('checks drag.config.json against the contributed JSON schema', async () => {
    const file = path.join(workspaceRoot(), 'drag.config.json');
    const original = readFileSync(file, 'utf8');
    try {
      writeFileSync(file, '{\n  "search": { "topK": "three" },\n  "bogus": 1\n}\n');
      const doc = await vscode.workspace.openTextDocument(file);
      await vscode.window.showTextDocument(doc);
      const diagnostics = await waitFor(
        'JSON schema diagnostics',
        () => {
          const d = vscode.languages.getDiagnostics(doc.uri);
          return d.length >= 2 ? d : undefined;
        },
        40_000,
      );
      const lines = diagnostics.map((d) => d.range.start.line).sort();
      assert.deepEqual(lines, [1, 2]);
    } finally {
      writeFileSync(file, original);
      await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
    }
  });

  describe('Search Corpus', () => {
    it('answers searches from a drag serve child process, exactly as the core engine ranks', async () => {
      const service = await api.searchService();
      const result = await service.search('property plant equipment', 3);
      const ocr = path.join(workspaceRoot(), 'corpus', 'ocr_output.jsonl');
      const expected = new WhooshCompatibleEngine((await buildIndex(ocr)).index).search('property plant equipment', 3);
      assert.deepEqual(
        result.hits.map((h) => [h.file, h.page_number, h.rank, h.score]),
        expected.map((h) => [h.file, h.page_number, h.rank, h.score]),
      );
      assert.ok(result.hits.length >= 2);
      assert.equal(result.parsed, 'AND(property, plant, equipment)');
      const top = result.hits[0];
      assert.ok(top.snippet.highlights.length >= 3, 'matched terms are marked in the snippet');
      assert.equal(top.hasPdf, true);
    });

    it('renders page images into the corpus cache', async () => {
      const service = await api.searchService();
      const img = await service.render('ACME_2023_10K.pdf', 2, 100_000);
      assert.ok(img.path.startsWith(path.join(workspaceRoot(), 'corpus', '.cache', 'pages')), img.path);
      assert.deepEqual([...readFileSync(img.path).subarray(0, 2)], [0xff, 0xd8]);
      assert.ok(img.width * img.height <= 100_000);
      await assert.rejects(service.render('../drag.config.json', 1, 100_000), /must be a file name/);
    });

    it('opens the Search Corpus panel from the command, once', async () => {
      await vscode.commands.executeCommand('drag.searchCorpus', 'net income');
      await vscode.commands.executeCommand('drag.searchCorpus');
      const tabs = await waitFor('the search panel tab', () => {
        const found = vscode.window.tabGroups.all
          .flatMap((g) => g.tabs)
          .filter((t) => t.label === 'DRAG: Search Corpus');
        return found.length ? found : undefined;
      });
      assert.equal(tabs.length, 1);
    });
  });

  describe('Collect Trajectories', () => {
    it('collects with the embedded keyword agent and the run appears in the tree', async () => {
      const result = await vscode.commands.executeCommand<{ runDir: string; code: number }>(
        'drag.collectTrajectories',
        { agent: 'keyword', preset: 'high_temp', limit: 4, runName: 'it-keyword' },
      );
      assert.equal(result.code, 0);
      const node = await waitFor('the new run in the tree', async () => {
        const roots = await api.trajectories.getChildren();
        return roots.find(
          (n) => labelOf(n) === 'runs/it-keyword/trajectories.jsonl' && descriptionOf(n) === '4 trajectories',
        );
      });
      assert.ok(node);
      const run = JSON.parse(readFileSync(path.join(workspaceRoot(), 'runs', 'it-keyword', 'run.json'), 'utf8'));
      assert.equal(run.status, 'finished');
      assert.equal(run.config.agent, 'keyword');
    });

    it('collects from an OpenAI-compatible endpoint after checking it', async () => {
      const server = new FakeOpenAI((body) => {
        if (
          Array.isArray(body.tools) &&
          (body.tools as Array<{ function: { name: string } }>)[0]?.function.name === 'ping'
        )
          return { reply: { content: 'pong' } };
        return body.messages.some((m) => m.role === 'tool')
          ? answerCall(['8,700'], [{ file: 'ACME_2023_10K.pdf', page: 3 }])
          : searchCall('property plant equipment');
      });
      const url = await server.start();
      try {
        const result = await vscode.commands.executeCommand<{ runDir: string; code: number }>(
          'drag.collectTrajectories',
          { agent: 'openai', baseUrl: url, model: 'test-model', preset: 'greedy', limit: 2, runName: 'it-endpoint' },
        );
        assert.equal(result.code, 0);
        const lines = readFileSync(path.join(result.runDir, 'trajectories.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
        assert.equal(lines.length, 2);
        assert.ok(lines.every((r) => r.model === 'test-model' && r.success === true));
        // Page images were sent to the model (the fixture PDFs are rendered by the CLI child).
        assert.ok(server.requests.some((r) => JSON.stringify(r.messages).includes('data:image/jpeg;base64,')));
      } finally {
        await server.stop();
      }
    });

    it('says clearly when the server is down, and starts nothing', async () => {
      const result = await vscode.commands.executeCommand('drag.collectTrajectories', {
        agent: 'openai',
        baseUrl: 'http://127.0.0.1:9/v1',
        model: 'x',
        preset: 'default',
        limit: 1,
        runName: 'it-down',
      });
      assert.equal(result, undefined);
      assert.equal(existsSync(path.join(workspaceRoot(), 'runs', 'it-down')), false);
    });
  });

  describe('Curation', () => {
    async function firstTrajectory(group = 0, index = 0): Promise<TrajectoryNode> {
      const groups = await api.trajectories.getChildren(await fileNode('runs/qwen-base/trajectories.jsonl'));
      return (await api.trajectories.getChildren(groups[group]))[index];
    }
    const decisions = () => {
      const file = path.join(workspaceRoot(), 'curation', 'decisions.jsonl');
      return existsSync(file)
        ? readFileSync(file, 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l))
        : [];
    };

    it('opens the inspector on a trajectory (one panel, reused)', async () => {
      const node = await firstTrajectory(0, 1);
      await vscode.commands.executeCommand('drag.inspectTrajectory', node);
      const panel = await waitFor('the inspector', () => api.inspector()?.shown ?? undefined);
      assert.equal(panel.id, 'traj_financebench_id_04672');
      assert.deepEqual(
        panel.steps.map((s) => s.gtRank),
        [2, 1, null],
      );
      assert.equal(panel.steps[0].results.find((r) => r.isGt)?.page, 58);
      await vscode.commands.executeCommand('drag.inspectTrajectory', await firstTrajectory(0, 0));
      const tabs = await waitFor('the inspector tab, retitled', () => {
        const found = vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.label.startsWith('Inspect:'));
        return found.length && /^Inspect: What is the FY2018 capital/.test(found[0].label) ? found : undefined;
      });
      assert.equal(tabs.length, 1);
      assert.match(tabs[0].label, /^Inspect: What is the FY2018 capital/);
    });

    it('accepts, rejects with a reason and undoes, in the append-only log, and the tree shows it', async () => {
      await vscode.commands.executeCommand('drag.inspectTrajectory', await firstTrajectory(0, 1));
      const inspector = await waitFor('the inspector', () => api.inspector());
      await inspector.decide('accept');
      await inspector.decide('reject', 'lucky hit (query does not justify the page)');
      await inspector.decide('undo');
      const log = decisions().filter((d) => d.trajectory_id === 'traj_financebench_id_04672');
      assert.deepEqual(
        log.map((d) => d.decision),
        ['accept', 'reject', 'undo'],
      );
      assert.ok(log.every((d) => typeof d.user === 'string' && d.user.length > 0 && typeof d.time === 'string'));
      assert.equal(api.curation?.current().byTrajectory.get('traj_financebench_id_04672')?.status, 'accepted');
      const node = await firstTrajectory(0, 1);
      assert.match(descriptionOf(node), /^✓ accepted · /);
      // Reading the log again with nothing new in it (a watcher event for our own append) changes
      // nothing, so the views are not re-rendered under a click; a new line does.
      let events = 0;
      const sub = api.curation!.onDidChange(() => {
        events++;
      });
      try {
        await api.curation!.reload();
        assert.equal(events, 0, 'an unchanged log fired a change');
        await inspector.decide('reject', 'checked twice');
        assert.ok(events >= 1, 'a new decision fired no change');
        await inspector.decide('undo');
      } finally {
        sub.dispose();
      }
      assert.equal(api.curation?.current().byTrajectory.get('traj_financebench_id_04672')?.status, 'accepted');
    });

    it('saves a pair from marked steps, and an edited query verified live against the index', async () => {
      await vscode.commands.executeCommand('drag.inspectTrajectory', await firstTrajectory(0, 1));
      const inspector = await waitFor('the inspector', () => api.inspector());
      await inspector.mark(2, 'chosen', false);
      await inspector.mark(1, 'rejected', false);
      const pair = decisions()
        .filter((d) => d.decision === 'pair')
        .pop();
      assert.deepEqual(
        [pair.chosen.query, pair.chosen.rank, pair.rejected.query, pair.rejected.rank],
        ['"property, plant and equipment - net" 2018', 1, '3M balance sheet property plant equipment net', 2],
      );
      // The fixture workspace's corpus is the small ACME/Globex one: the edited query is verified against it.
      const verdict = await inspector.edit(1, 'property plant equipment');
      assert.ok(verdict);
      const edit = decisions()
        .filter((d) => d.decision === 'edit')
        .pop();
      assert.equal(edit.query, 'property plant equipment');
      assert.equal(edit.verified_rank, null, '3M_2018_10K.pdf is not in the fixture corpus: the live check says so');
    });

    const pairsTitle =
      'edits DPO pairs for a question: every query sorted by rank score, proposals, live try, guarded save';
    it(pairsTitle, async () => {
      await vscode.commands.executeCommand('drag.editPairs', 'financebench_id_04672');
      const editor = await waitFor('the pair editor', () => api.pairEditor());
      const q = editor.shown!;
      assert.deepEqual(
        q.candidates.map((c) => [c.query, c.rank]),
        [
          ['"property, plant and equipment - net" 2018', 1],
          ['3M balance sheet property plant equipment net', 2],
        ],
      );
      assert.deepEqual(
        q.proposals.map((p) => [p.chosen, p.rejected, Number(p.margin.toFixed(6))]),
        [[0, 1, 0.333333]],
      );
      const tried = await editor.tryQuery('capital expenditures');
      assert.equal(tried.rank, null);
      const before = decisions().filter((d) => d.decision === 'pair').length;
      assert.equal(await editor.save(q.candidates[0], q.candidates[1], false), true);
      assert.equal(decisions().filter((d) => d.decision === 'pair').length, before + 1);
      await waitFor('the saved pair in the editor', () => (editor.shown!.pairs.length >= 1 ? true : undefined));
    });

    it('lists failed searches and exports a curated dataset that the Datasets view shows', async () => {
      const failed = await api.failedSearches!.getChildren();
      assert.ok(failed.length >= 2);
      assert.ok(
        failed.every(
          (f) => /Amcor|AMCOR|CVS|Ulta|acquisitions|pharmacy|comparable/i.test(f.question) || f.closest === null,
        ),
      );
      const result = await vscode.commands.executeCommand<{ accepted: number; pairs: number; edits: number }>(
        'drag.exportCuratedDataset',
        'it-curated',
      );
      assert.ok(result);
      assert.equal(result.accepted, 1);
      assert.equal(result.pairs, 2);
      const manifest = JSON.parse(
        readFileSync(path.join(workspaceRoot(), 'datasets', 'it-curated', 'manifest.json'), 'utf8'),
      );
      assert.equal(manifest.curated, true);
      assert.ok(manifest.decisions_used.length >= 3);
      const items = api.datasets!.getChildren();
      assert.deepEqual(
        items.map((i) => i.name),
        ['it-curated'],
      );
    });
  });

  describe('Evaluations and comparison', () => {
    let entries: Array<{ target: string; label: string; name: string; date: string }> = [];

    it('evaluates twice with the keyword agent and lists both in the Evaluations view', async () => {
      const a = await vscode.commands.executeCommand<{ code: number }>('drag.evaluateModel', {
        agent: 'keyword',
        preset: 'greedy',
        limit: 5,
        runName: 'it-eval-a',
      });
      assert.equal(a.code, 0);
      await new Promise((r) => setTimeout(r, 1100)); // distinct finish times: the newer one is compared
      const b = await vscode.commands.executeCommand<{ code: number }>('drag.evaluateModel', {
        agent: 'keyword',
        preset: 'creative',
        limit: 5,
        runName: 'it-eval-b',
      });
      assert.equal(b.code, 0);
      entries = (await api.evaluations!.getChildren()) as typeof entries;
      assert.deepEqual(
        entries.map((e) => e.name),
        ['it-eval-b', 'it-eval-a'],
        'newest first',
      );
      const item = api.evaluations!.getTreeItem(entries[0] as never);
      assert.match(String(item.description), /keyword-agent · .* · Hit@1 .*% · MRR \d\.\d{3} · success .*%/);
    });

    it('compares in one command with the same numbers as drag compare --json', async () => {
      const panel = await vscode.commands.executeCommand<unknown>('drag.compareEvaluations', entries);
      assert.ok(panel);
      const c = await waitFor('the comparison', () => api.compare()?.comparison ?? undefined);
      assert.deepEqual(c.runs, ['it-eval-a', 'it-eval-b'], 'the older evaluation is the baseline');
      const { execFileSync } = await import('node:child_process');
      const ext = vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath;
      const cli = JSON.parse(
        execFileSync(
          process.execPath,
          [path.join(ext, 'dist', 'cli.js'), 'compare', entries[1].target, entries[0].target, '--json'],
          { encoding: 'utf8', env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } },
        ),
      );
      assert.deepEqual(c.metrics, cli.metrics);
      assert.deepEqual(c.questions, cli.questions);
      assert.equal(c.paired, 5);
    });

    const viewFlowTitle =
      'the view flow (two selected items) opens the same comparison, ' +
      'and a question opens both trajectories side by side';
    it(viewFlowTitle, async () => {
      await vscode.commands.executeCommand('drag.compareEvaluations', entries[0], [entries[0], entries[1]]);
      const panel = await waitFor('the compare panel', () => api.compare());
      const c = panel.comparison!;
      const question = [...c.questions.losses, ...c.questions.wins, ...c.questions.ties][0];
      await panel.openQuestion(question);
      const tabs = await waitFor('two inspectors', () => {
        const found = vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.label.startsWith('Inspect:'));
        return found.length === 2 ? found : undefined;
      });
      assert.notEqual(tabs[0].group.viewColumn, tabs[1].group.viewColumn, 'side by side');
    });
  });

  describe('Pipeline commands', () => {
    it('builds the corpus from corpus/pdfs as a job (the manifest says which PDFs)', async () => {
      const code = await vscode.commands.executeCommand<number>('drag.buildCorpus');
      assert.equal(code, 0);
      const manifest = JSON.parse(
        readFileSync(path.join(workspaceRoot(), 'corpus', 'ocr_output.jsonl.manifest.json'), 'utf8'),
      );
      assert.deepEqual(Object.keys(manifest.files).sort(), ['ACME_2023_10K.pdf', 'GLOBEX_2022_EARNINGS.pdf']);
    });

    it('builds training data from runs: processed records and formats in datasets/<name>/', async () => {
      const result = await vscode.commands.executeCommand<{ dataset: string; code: number }>('drag.buildTrainingData', {
        runs: ['qwen-base'],
        name: 'it-training',
        formats: 'sft_query,dpo',
      });
      assert.equal(result.code, 0);
      const stats = JSON.parse(readFileSync(path.join(result.dataset, 'stats.json'), 'utf8'));
      assert.ok(stats.sft_query.total >= 4);
      assert.ok(existsSync(path.join(result.dataset, 'processed.jsonl')));
      await waitFor('the dataset in the view', () =>
        api.datasets!.getChildren().some((d) => d.name === 'it-training') ? true : undefined,
      );
    });
  });

  describe('GPU hosts', () => {
    it('checks a GPU host and reports, in words, that torch is missing (this machine has none)', async () => {
      const { mkdtempSync } = await import('node:fs');
      const { tmpdir } = await import('node:os');
      const file = path.join(workspaceRoot(), 'drag.config.json');
      const original = readFileSync(file, 'utf8');
      const workdir = mkdtempSync(path.join(tmpdir(), 'drag-host-check-'));
      try {
        const config = JSON.parse(original);
        config.hosts = { ...config.hosts, 'it-local': { launcher: 'local', workdir, python: 'python3' } };
        writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
        const result = await vscode.commands.executeCommand<{
          report: { host: string; ok: boolean; torch: { version: string | null }; problems: string[] };
          markdown: string;
        }>('drag.checkGpuHost', { host: 'it-local' });
        assert.ok(result, 'the check returned no report');
        assert.equal(result.report.host, 'it-local');
        assert.equal(result.report.ok, false);
        assert.equal(result.report.torch.version, null);
        assert.ok(
          result.report.problems.some((p) => /torch/.test(p)),
          `no problem names torch: ${result.report.problems.join('; ')}`,
        );
        assert.match(result.markdown, /^# GPU host it-local/);
        assert.match(result.markdown, /Not ready for training: .*torch/);
        assert.match(result.markdown, /torch\s+not importable/);
      } finally {
        writeFileSync(file, original);
      }
    });
  });

  describe('Demo and the local writer', () => {
    it('trains the local query writer from a dataset and evaluates it', async () => {
      const model = await vscode.commands.executeCommand<string>('drag.trainWriter', 'it-training');
      assert.ok(model && existsSync(model));
      const result = await vscode.commands.executeCommand<{ code: number; runDir: string }>('drag.evaluateModel', {
        agent: 'writer',
        writerModel: model,
        preset: 'greedy',
        limit: 3,
        runName: 'it-writer',
      });
      assert.equal(result.code, 0);
      const summary = JSON.parse(readFileSync(path.join(result.runDir, 'summary.json'), 'utf8'));
      assert.equal(summary.total_questions, 3);
      assert.match(summary.model, /^query-writer:writer-it-training\.json$/);
    });

    it('creates the demo workspace in an empty folder', async () => {
      const { mkdtempSync } = await import('node:fs');
      const { tmpdir } = await import('node:os');
      const dir = path.join(mkdtempSync(path.join(tmpdir(), 'drag-demo-')), 'demo');
      const created = await vscode.commands.executeCommand<string>('drag.createDemoWorkspace', dir);
      assert.equal(created, dir);
      for (const f of [
        'drag.config.json',
        'runs/keyword-train/trajectories.jsonl',
        'models/writer.json',
        'evals/comparison.md',
      ])
        assert.ok(existsSync(path.join(dir, f)), f);
    });
  });
});
