/**
 * Entry point that VS Code's extension host calls (`extensionTestsPath`), with either runner:
 * code-server (test/integration/runCodeServer.mjs) or desktop VS Code (runElectron.mjs).
 * Runs the bundled mocha suite and, when DRAG_TEST_RESULTS is set, writes the results there
 * because a browser-hosted workbench has no process exit code to report.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type MochaType from 'mocha';
import * as vscode from 'vscode';

interface Outcome {
  version: string;
  passes: string[];
  failures: Array<{ title: string; error: string }>;
  pending: string[];
  done: true;
}

export async function run(): Promise<void> {
  // mocha is resolved from the extension's own node_modules at run time, not bundled.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Mocha = require('mocha') as typeof MochaType;
  const mocha = new Mocha({ ui: 'bdd', timeout: 60_000, color: false, reporter: 'spec' });
  mocha.addFile(path.join(__dirname, 'tests.js'));
  const outcome: Outcome = { version: vscode.version, passes: [], failures: [], pending: [], done: true };
  await new Promise<void>((resolve) => {
    const runner = mocha.run(() => resolve());
    runner.on('pass', (test) => outcome.passes.push(test.fullTitle()));
    runner.on('fail', (test, err: Error) =>
      outcome.failures.push({ title: test.fullTitle(), error: err.stack ?? String(err) }),
    );
    runner.on('pending', (test) => outcome.pending.push(test.fullTitle()));
  });
  const target = process.env.DRAG_TEST_RESULTS;
  if (target) writeFileSync(target, JSON.stringify(outcome, null, 2));
  if (outcome.failures.length > 0) throw new Error(`${outcome.failures.length} integration test(s) failed`);
}
