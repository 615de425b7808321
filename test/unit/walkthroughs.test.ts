import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './helpers';

interface Step {
  id: string;
  description: string;
  media: { markdown?: string };
  completionEvents?: string[];
}
interface Walkthrough {
  id: string;
  steps: Step[];
}

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const walkthroughs: Walkthrough[] = pkg.contributes.walkthroughs;
const commands = new Set<string>(pkg.contributes.commands.map((c: { command: string }) => c.command));
const views = new Set<string>(
  Object.values(pkg.contributes.views).flatMap((v) => (v as { id: string }[]).map((x) => x.id)),
);
const DOCS = 'https://github.com/drag-studio/drag-studio/blob/HEAD/';

/** A command a walkthrough may run: a contributed one, or the focus command VS Code makes for a view. */
function known(command: string): boolean {
  return commands.has(command) || (command.endsWith('.focus') && views.has(command.slice(0, -'.focus'.length)));
}

describe('walkthroughs (package.json contributes.walkthroughs)', () => {
  it('the demo walkthrough stays the demo: create, inspect, curate, the local writer, compare', () => {
    const demo = walkthroughs.find((w) => w.id === 'drag.gettingStarted');
    assert.ok(demo, 'no drag.gettingStarted walkthrough');
    assert.deepEqual(
      demo.steps.map((s) => s.id),
      ['demo', 'inspect', 'curate', 'train', 'compare'],
    );
    assert.deepEqual(demo.steps[3].completionEvents, ['onCommand:drag.trainWriter']);
  });

  it('your own documents: every stage from PDFs to a comparison with your adapter, in order', () => {
    const own = walkthroughs.find((w) => w.id === 'drag.yourDocuments');
    assert.ok(own, 'no drag.yourDocuments walkthrough');
    const completes = own.steps.map((s) => s.completionEvents ?? []);
    const order = [
      'drag.buildCorpus',
      'drag.collectTrajectories',
      'drag.exportCuratedDataset',
      'drag.checkGpuHost',
      'drag.startTraining',
      'drag.evaluateAdapter',
      'drag.compareEvaluations',
    ];
    const at = order.map((c) => completes.findIndex((events) => events.includes(`onCommand:${c}`)));
    assert.ok(!at.includes(-1), `a stage completes on no step: ${order.filter((_, i) => at[i] < 0).join(', ')}`);
    assert.deepEqual(
      at,
      [...at].sort((a, b) => a - b),
      'stages out of order',
    );
  });

  for (const w of walkthroughs) {
    for (const step of w.steps) {
      it(`${w.id}/${step.id}: completes on known commands, its buttons run known commands, its markdown exists`, () => {
        assert.ok(step.completionEvents?.length, 'no completion event');
        for (const event of step.completionEvents) {
          const command = /^onCommand:(.+)$/.exec(event)?.[1];
          assert.ok(command, `${event} is not an onCommand event`);
          assert.ok(known(command), `${command} is not a contributed command`);
        }
        for (const m of step.description.matchAll(/\(command:([\w.]+)\)/g)) {
          assert.ok(known(m[1]), `the button runs ${m[1]}, which is not contributed`);
        }
        assert.ok(step.media.markdown && existsSync(path.join(ROOT, step.media.markdown)), 'media markdown missing');
      });
    }
  }

  it('each step of your own documents links to a docs page that exists, in its description and its markdown', () => {
    const own = walkthroughs.find((w) => w.id === 'drag.yourDocuments')!;
    for (const step of own.steps) {
      const text = `${step.description}\n${readFileSync(path.join(ROOT, step.media.markdown!), 'utf8')}`;
      const pages = [...text.matchAll(/\((https:[^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]);
      assert.ok(
        pages.some((p) => p.startsWith(`${DOCS}docs/`)),
        `${step.id}: no link to a docs page`,
      );
      for (const page of pages.filter((p) => p.startsWith(DOCS))) {
        assert.ok(existsSync(path.join(ROOT, page.slice(DOCS.length))), `${step.id}: ${page} is not in the repository`);
      }
    }
  });
});
