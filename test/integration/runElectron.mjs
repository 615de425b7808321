// The same integration suite on desktop VS Code via @vscode/test-electron, for machines that can
// download VS Code (CI here cannot: it reaches only the npm registry, so it uses runCodeServer.mjs).
import { runTests } from '@vscode/test-electron';
import path from 'node:path';
import { makeWorkspace, ROOT } from './codeServer.mjs';

const { ws, cleanup } = makeWorkspace();
try {
  await runTests({
    version: process.env.DRAG_VSCODE_VERSION ?? '1.100.3',
    extensionDevelopmentPath: ROOT,
    extensionTestsPath: path.join(ROOT, 'dist', 'test', 'integration', 'index.js'),
    launchArgs: [ws, '--disable-extensions', '--disable-workspace-trust', '--skip-welcome'],
  });
  console.log('VS Code (desktop) extension host: integration suite passed');
} catch (err) {
  console.error(`desktop VS Code run failed: ${err.message ?? err}`);
  process.exitCode = 1;
} finally {
  cleanup();
}
