// npm test: unit tests (plain Node, mocha) then integration tests (a real VS Code), both always
// run; exits non-zero if either fails. Ends with one "tests: N passed, M failed" line.
import { spawn } from 'node:child_process';

function run(command, args, patterns) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
    let out = '';
    child.stdout.on('data', (d) => {
      process.stdout.write(d);
      out += d;
    });
    child.on('close', (code) => {
      let passed = 0;
      let failed = 0;
      for (const re of patterns) {
        for (const m of out.matchAll(re)) {
          passed += Number(m.groups.passed ?? 0);
          failed += Number(m.groups.failed ?? 0);
        }
      }
      // A runner that died without a summary still counts as a failure.
      if (code !== 0 && failed === 0) failed = 1;
      resolve({ code, passed, failed });
    });
  });
}

const only = process.argv[2];
const results = [];
if (only === undefined || only === 'trainer') {
  // The Python trainer's tests: standard library only (tests needing torch skip with a reason).
  console.log('\n== trainer tests (python3 -m unittest, standard library) ==');
  const python = process.env.PYTHON ?? 'python3';
  results.push(
    await new Promise((resolve) => {
      const child = spawn(python, ['-m', 'unittest', 'discover', '-v', '-s', 'tests'], {
        cwd: 'trainer',
        stdio: ['ignore', 'inherit', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d) => {
        process.stderr.write(d);
        err += d;
      });
      child.on('close', (code) => {
        const ran = Number(/^Ran (\d+) tests?/m.exec(err)?.[1] ?? 0);
        const bad = /^FAILED \((?:failures=(\d+))?(?:, )?(?:errors=(\d+))?/m.exec(err);
        const failed = bad ? Number(bad[1] ?? 0) + Number(bad[2] ?? 0) || 1 : code === 0 ? 0 : 1;
        const skipped = Number(/skipped=(\d+)/.exec(err)?.[1] ?? 0);
        resolve({ code, passed: ran - skipped - (bad ? failed : 0), failed });
      });
    }),
  );
}
if (only === 'trainer') {
  const r = results[0];
  console.log(`\ntests: ${r.passed} passed, ${r.failed} failed`);
  process.exit(r.code === 0 && r.failed === 0 ? 0 : 1);
}
if (only !== 'integration') {
  console.log('\n== unit tests (mocha, plain Node) ==');
  results.push(await run('npx', ['mocha'], [/^\s*(?<passed>\d+) passing/gm, /^\s*(?<failed>\d+) failing/gm]));
}
if (only !== 'unit') {
  console.log('\n== integration tests (code-server extension host + Playwright UI) ==');
  results.push(
    await run(
      process.execPath,
      ['test/integration/runCodeServer.mjs'],
      [/: (?<passed>\d+) passing, (?<failed>\d+) failing$/gm],
    ),
  );
}
const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
console.log(`\ntests: ${passed} passed, ${failed} failed`);
process.exit(results.every((r) => r.code === 0) && failed === 0 ? 0 : 1);
