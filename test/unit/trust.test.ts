import * as assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import { createServer, type Server } from 'node:net';
import * as path from 'node:path';
import type * as Registry from '../../src/extension/commands/registry';
import type * as JobsView from '../../src/extension/jobs/jobsView';
import type * as Trust from '../../src/extension/trust';
import { ROOT, useTempDir } from './helpers';

// The gate runs inside VS Code; here a small stand-in for the `vscode` module records what it is
// asked (notices, commands) and lets a test flip workspace trust, as VS Code does when trust is granted.
type Listener = () => void;
const fake = {
  trusted: false,
  answer: undefined as string | undefined,
  warnings: [] as Array<{ message: string; items: string[] }>,
  executed: [] as string[],
  registered: new Map<string, (...args: unknown[]) => unknown>(),
  grantListeners: new Set<Listener>(),
  grant(): void {
    this.trusted = true;
    for (const l of [...this.grantListeners]) l();
  },
};
class EventEmitter<T> {
  private listeners = new Set<(e: T) => void>();
  event = (l: (e: T) => void) => {
    this.listeners.add(l);
    return { dispose: () => this.listeners.delete(l) };
  };
  fire(e: T): void {
    for (const l of this.listeners) l(e);
  }
  dispose(): void {
    this.listeners.clear();
  }
}
const vscodeStub = {
  workspace: {
    get isTrusted() {
      return fake.trusted;
    },
    onDidGrantWorkspaceTrust: (l: Listener) => {
      fake.grantListeners.add(l);
      return { dispose: () => fake.grantListeners.delete(l) };
    },
    createFileSystemWatcher: () => {
      const none = () => ({ dispose: () => undefined });
      return { onDidCreate: none, onDidChange: none, onDidDelete: none, dispose: () => undefined };
    },
  },
  window: {
    showWarningMessage: (message: string, ...items: string[]) => {
      fake.warnings.push({ message, items });
      return Promise.resolve(fake.answer);
    },
    showErrorMessage: (message: string) => {
      fake.warnings.push({ message, items: [] });
      return Promise.resolve(undefined);
    },
  },
  commands: {
    registerCommand: (id: string, fn: (...args: unknown[]) => unknown) => {
      fake.registered.set(id, fn);
      return { dispose: () => fake.registered.delete(id) };
    },
    executeCommand: (id: string) => {
      fake.executed.push(id);
      return Promise.resolve(undefined);
    },
  },
  EventEmitter,
  RelativePattern: class {
    constructor(
      readonly base: string,
      readonly pattern: string,
    ) {}
  },
  TreeItem: class {
    description?: string;
    tooltip?: unknown;
    constructor(readonly label: string) {}
  },
  TreeItemCollapsibleState: { None: 0 },
  ThemeIcon: class {
    constructor(readonly id: string) {}
  },
  ThemeColor: class {
    constructor(readonly id: string) {}
  },
  MarkdownString: class {
    value = '';
    appendText(t: string) {
      this.value += t;
      return this;
    }
  },
};
const loader = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
const resolve = loader._resolveFilename;
loader._resolveFilename = function (request: string, ...rest: unknown[]) {
  return request === 'vscode' ? 'vscode' : resolve.call(this, request, ...rest);
};
require.cache.vscode = {
  id: 'vscode',
  filename: 'vscode',
  loaded: true,
  exports: vscodeStub,
} as unknown as NodeJS.Module;

/* eslint-disable @typescript-eslint/no-require-imports */
const trust = require('../../src/extension/trust') as typeof Trust;
const { registerCommands } = require('../../src/extension/commands/registry') as typeof Registry;
const { JobsProvider } = require('../../src/extension/jobs/jobsView') as typeof JobsView;
/* eslint-enable @typescript-eslint/no-require-imports */
loader._resolveFilename = resolve; // the modules above keep their stand-in; nothing else sees it

interface Pkg {
  contributes: {
    commands: Array<{ command: string }>;
    menus: Record<string, Array<{ command: string; when?: string }>>;
    keybindings: Array<{ command: string; key: string; mac?: string; when?: string }>;
    viewsWelcome: Array<{ view: string; contents: string; when?: string }>;
    views: Record<string, Array<{ id: string }>>;
    configuration: { properties: Record<string, unknown> };
  };
  capabilities: {
    untrustedWorkspaces: { supported: string; description: string; restrictedConfigurations?: string[] };
  };
}
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Pkg;
const contributed = pkg.contributes.commands.map((c) => c.command);
const needsTrust = (id: string) => trust.trustRule(id).trust === 'required';
/** The `||` alternatives of a when-clause, each as its `&&` terms. */
const alternatives = (when: string) => when.split('||').map((alt) => alt.split('&&').map((t) => t.trim()));
const settle = () => new Promise((r) => setImmediate(r));

describe('workspace trust: the table', () => {
  it('classifies every contributed command (a new command must say whether it needs trust)', () => {
    const missing = contributed.filter((id) => !(id in trust.COMMAND_TRUST));
    assert.deepEqual(missing, [], 'classify these in src/extension/trust.ts');
  });

  it('gates everything that runs or reaches what the folder configures, including drag.checkGpuHost', () => {
    const gated = Object.keys(trust.COMMAND_TRUST).filter(needsTrust).sort();
    assert.deepEqual(gated, [
      'drag.cancelJob',
      'drag.checkGpuHost',
      'drag.cleanJob',
      'drag.collectTrajectories',
      'drag.continueWithDpo',
      'drag.evaluateAdapter',
      'drag.evaluateModel',
      'drag.fetchAdapter',
      'drag.openTrainingMonitor',
      'drag.refreshJobs',
      'drag.startTraining',
    ]);
  });

  it('refuses a command nobody classified rather than running it', () => {
    assert.deepEqual(trust.trustRule('drag.somethingNew'), { trust: 'required', toDo: 'run drag.somethingNew' });
  });
});

describe('workspace trust: the gate in the command registry', () => {
  const calls: string[] = [];
  const logged: string[] = [];
  before(() => {
    const area = Object.fromEntries(
      Object.keys(trust.COMMAND_TRUST).map((id) => [id, (arg?: unknown) => (calls.push(id), `ran ${id} ${arg}`)]),
    );
    const log = { error: () => undefined, show: () => undefined, info: (line: string) => logged.push(line) };
    registerCommands([area], log as never);
  });
  beforeEach(() => {
    calls.length = 0;
    logged.length = 0;
    fake.warnings.length = 0;
    fake.executed.length = 0;
    fake.answer = undefined;
  });
  after(() => {
    fake.trusted = false;
  });

  it('in Restricted Mode, calls no gated handler, says why for each, and runs every other command', async () => {
    fake.trusted = false;
    const results = new Map<string, unknown>();
    for (const [id, run] of fake.registered) results.set(id, await run('x'));
    await settle();
    const gated = [...fake.registered.keys()].filter(needsTrust);
    assert.deepEqual(
      calls.sort(),
      [...fake.registered.keys()].filter((id) => !needsTrust(id)).sort(),
      'a gated handler ran',
    );
    for (const id of gated) assert.equal(results.get(id), undefined);
    assert.deepEqual(
      fake.warnings,
      gated.map((id) => {
        const rule = trust.COMMAND_TRUST[id] as { toDo: string };
        return {
          message: `DRAG: This folder is in Restricted Mode: trust it to ${rule.toDo}.`,
          items: ['Manage Workspace Trust'],
        };
      }),
    );
    assert.deepEqual(fake.executed, [], 'nothing opened unasked');
    // And each refusal leaves a line in DRAG Studio's log (a keybinding's, say, when no notice was seen).
    assert.deepEqual(
      logged,
      gated.map((id) => `${id}: refused, the folder is in Restricted Mode`),
    );
  });

  it('"Manage Workspace Trust" on the notice opens VS Code\'s trust editor', async () => {
    fake.answer = 'Manage Workspace Trust';
    await fake.registered.get('drag.startTraining')!({});
    await settle();
    assert.deepEqual(calls, []);
    assert.deepEqual(fake.executed, ['workbench.trust.manage']);
  });

  it('once trust is granted, every gated command runs, without registering anything again', async () => {
    fake.grant();
    for (const id of Object.keys(trust.COMMAND_TRUST).filter(needsTrust))
      assert.equal(await fake.registered.get(id)!('y'), `ran ${id} y`);
    assert.deepEqual(fake.warnings, []);
    assert.deepEqual(logged, []);
  });
});

describe('workspace trust: the Jobs view', () => {
  const tmp = useTempDir();
  let server: Server;
  let connections = 0;
  let connected: () => void = () => undefined;
  const id = '20260101-000000-sft-remote-a1b2';
  before(async () => {
    process.env.DRAG_SSH_MULTIPLEX = '0';
    server = createServer((socket) => {
      connections++;
      connected();
      socket.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  after(() => {
    server.close();
    delete process.env.DRAG_SSH_MULTIPLEX;
    fake.trusted = false;
  });

  /** A running SSH job whose host is the test's server (which drops every connection). */
  const writeJob = (ws: string, port: number, at: string) => {
    mkdirSync(path.join(ws, 'jobs', id), { recursive: true });
    writeFileSync(
      path.join(ws, 'jobs', id, 'job.json'),
      JSON.stringify({
        ...{ version: 1, id, name: 'sft-remote', host: 'cluster', command: ['python3', 'train.py'], uploads: [] },
        hostConfig: { ssh: '127.0.0.1', port, workdir: '/tmp/drag-jobs', launcher: 'ssh' },
        remoteDir: `/tmp/drag-jobs/${id}`,
        submittedAt: at,
        last: {
          ...{ id, state: 'running', exit_code: null, progress: null, host: 'cluster', launcher: 'ssh' },
          ...{ remote_dir: `/tmp/drag-jobs/${id}`, submitted_at: at, started_at: at, finished_at: null },
          ...{ slurm_job_id: null, reason: null, checked_at: at },
        },
      }),
    );
  };

  const restrictedTitle =
    'shows the recorded state as not refreshed and polls nothing untrusted; granting trust starts polling';
  it(restrictedTitle, async () => {
    fake.trusted = false;
    fake.grantListeners.clear();
    const ws = tmp();
    const { port } = server.address() as { port: number };
    const at = '2026-01-01T00:00:00.000Z';
    writeJob(ws, port, at);
    const warnings: string[] = [];
    const log = { warn: (m: string) => warnings.push(m) };
    const jobs = new JobsProvider(ws, log as never, 60_000);
    try {
      jobs.setVisible(true);
      await jobs.poll();
      assert.equal(connections, 0, "the job's host was contacted in Restricted Mode");
      const [record] = await jobs.getChildren();
      assert.match(
        String(jobs.getTreeItem(record!).description),
        /^running · .*cluster · not refreshed \(Restricted Mode\)$/,
      );
      // Trust granted: the visible view polls at once (one ssh connection to the job's host).
      const polled = new Promise<void>((r) => (connected = r));
      fake.grant();
      await polled;
      assert.ok(connections >= 1);
      assert.doesNotMatch(String(jobs.getTreeItem(record!).description), /Restricted Mode/);
    } finally {
      jobs.dispose();
    }
  });

  const backoffTitle =
    'polls a host that does not answer less and less often, says so once, and shows an unreadable job.json';
  it(backoffTitle, async () => {
    fake.trusted = true;
    const ws = tmp();
    const { port } = server.address() as { port: number };
    const at = '2026-01-01T00:00:00.000Z';
    writeJob(ws, port, at);
    mkdirSync(path.join(ws, 'jobs', 'half-written'));
    writeFileSync(path.join(ws, 'jobs', 'half-written', 'job.json'), '{"version": 1, "id": "half-wr');
    const warnings: string[] = [];
    const log = { warn: (m: string) => warnings.push(m), info: () => undefined };
    const clock = { t: 0, now: () => clock.t };
    const jobs = new JobsProvider(ws, log, 1000, clock);
    try {
      const rows = await jobs.getChildren();
      const unreadable = rows.find((r) => !('id' in r));
      assert.ok(unreadable, 'a row for the unreadable job.json');
      const item = jobs.getTreeItem(unreadable);
      assert.equal(item.label, 'unreadable job.json');
      assert.match(String(item.description), /half-written/);
      const record = rows.find((r) => 'id' in r)!;
      const polls: number[] = [];
      for (const t of [0, 0, 500, 1000, 2000, 2999, 3000]) {
        clock.t = t;
        const before = connections;
        await jobs.poll();
        if (connections > before) polls.push(t);
      }
      // 1 s after the first failure, then 2 s after the second (backoff from the poll interval).
      assert.deepEqual(polls, [0, 1000, 3000]);
      assert.equal(warnings.length, 1, `one log line, not one per poll: ${warnings.join(' | ')}`);
      assert.match(String(jobs.getTreeItem(record).description), /not refreshed: host not answering/);
    } finally {
      jobs.dispose();
    }
  });
});

describe('workspace trust: package.json', () => {
  const gatedIds = contributed.filter(needsTrust);

  it('hides each gated command from the palette, menus and view toolbars unless the folder is trusted', () => {
    for (const [menu, items] of Object.entries(pkg.contributes.menus))
      for (const item of items.filter((i) => needsTrust(i.command)))
        if (item.when !== 'false')
          for (const alt of alternatives(item.when ?? ''))
            assert.ok(
              alt.includes('isWorkspaceTrusted'),
              `${menu}: ${item.command} shows untrusted (when ${item.when})`,
            );
    const palette = new Set(pkg.contributes.menus.commandPalette!.map((i) => i.command));
    assert.deepEqual(
      gatedIds.filter((id) => !palette.has(id)),
      [],
      'a gated command has no commandPalette entry',
    );
  });

  it('offers gated commands in welcome views only when trusted, and trust itself otherwise', () => {
    const welcome = pkg.contributes.viewsWelcome;
    for (const w of welcome)
      for (const m of w.contents.matchAll(/\(command:(drag\.[\w.]+)\)/g))
        if (needsTrust(m[1]!))
          assert.deepEqual(alternatives(w.when ?? ''), [['isWorkspaceTrusted']], `${w.view} links ${m[1]} untrusted`);
    for (const view of new Set(welcome.filter((w) => w.when === 'isWorkspaceTrusted').map((w) => w.view))) {
      const untrusted = welcome.find((w) => w.view === view && w.when === '!isWorkspaceTrusted');
      assert.ok(
        untrusted?.contents.includes('(command:workbench.trust.manage)'),
        `${view}: no Restricted Mode welcome`,
      );
    }
  });

  const keybindingsTitle =
    'keybindings: each scoped to DRAG views or panels, none on Cmd+Alt+S or Cmd+Alt+C, none for a gated command';
  it(keybindingsTitle, () => {
    const views = new Set(Object.values(pkg.contributes.views).flatMap((v) => v.map((x) => x.id)));
    const panelsDir = path.join(ROOT, 'src', 'extension', 'panels');
    const panels = new Set(
      readdirSync(panelsDir).flatMap((f) =>
        [...readFileSync(path.join(panelsDir, f), 'utf8').matchAll(/viewType: '([\w.]+)'/g)].map((m) => m[1]),
      ),
    );
    assert.ok(pkg.contributes.keybindings.length > 0);
    const chord = (k: string) => k.toLowerCase().split('+').sort().join('+');
    for (const b of pkg.contributes.keybindings) {
      assert.ok(contributed.includes(b.command), `${b.command} is not a contributed command`);
      assert.ok(!needsTrust(b.command), `${b.command} needs trust: no keybinding`);
      assert.ok(b.when, `${b.key} (${b.command}) is global`);
      for (const alt of alternatives(b.when)) {
        const scope = alt
          .map((t) => /^(focusedView|activeWebviewPanelId) == ([\w.]+)$/.exec(t))
          .find((m) => m && (m[1] === 'focusedView' ? views : panels).has(m[2]!));
        assert.ok(scope, `${b.key} (${b.command}): "${b.when}" reaches outside DRAG's views and panels`);
      }
      const mac = chord(b.mac ?? b.key.replace(/ctrl/g, 'cmd'));
      for (const taken of ['cmd+alt+s', 'cmd+alt+c'])
        assert.notEqual(mac, chord(taken), `${b.command} takes macOS ${taken}`);
    }
  });

  it('lists every setting that names a program or host as restricted; every other is classified safe', () => {
    const restricted = pkg.capabilities.untrustedWorkspaces.restrictedConfigurations ?? [];
    for (const key of Object.keys(pkg.contributes.configuration.properties))
      assert.ok(
        restricted.includes(key) || key in trust.SETTINGS_SAFE_UNTRUSTED,
        `${key}: add it to restrictedConfigurations (names a program or host) or SETTINGS_SAFE_UNTRUSTED`,
      );
    assert.equal(pkg.capabilities.untrustedWorkspaces.supported, 'limited');
    assert.match(pkg.capabilities.untrustedWorkspaces.description, /collecting, evaluating, training/);
  });
});

describe('workspace trust: docs/restricted-mode.md', () => {
  let doc = '';
  before(() => {
    doc = readFileSync(path.join(ROOT, 'docs', 'restricted-mode.md'), 'utf8');
  });

  it('has a row for every command, saying whether it needs trust as the table does', () => {
    for (const [id, rule] of Object.entries(trust.COMMAND_TRUST)) {
      const row = doc.split('\n').find((l) => l.startsWith('| ') && l.includes(`\`${id}\``));
      assert.ok(row, `no row for ${id}`);
      assert.match(row, rule.trust === 'required' ? /\| needs trust \|/ : /\| allowed \|/, row);
    }
  });

  it('lists every keybinding', () => {
    for (const b of pkg.contributes.keybindings)
      assert.ok(doc.includes(`\`${b.command}\``) && doc.includes(b.key), `${b.key} (${b.command}) is not listed`);
  });
});
