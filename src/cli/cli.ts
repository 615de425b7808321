#!/usr/bin/env node
import { runCli } from './main';

const controller = new AbortController();
let interrupted = 0;
process.on('SIGINT', () => {
  // First Ctrl-C cancels cleanly; a second one exits at once.
  if (++interrupted > 1) process.exit(130);
  controller.abort(new Error('cancelled'));
});
process.on('SIGTERM', () => controller.abort(new Error('cancelled')));

// A closed pipe (drag jobs ls | head) ends the output, not the process with a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
});

runCli(
  process.argv.slice(2),
  {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
  },
  controller.signal,
).then(
  (code) => {
    process.exitCode = code;
    // Exit now, not once the event loop drains and the heap is torn down (tens of milliseconds after
    // a big file, for every job the extension starts), unless output is still queued: pipes are
    // asynchronous on Windows, and process.exit would cut them short.
    if (process.stdout.writableLength === 0 && process.stderr.writableLength === 0) process.exit(code);
  },
  (err) => {
    process.stderr.write(`drag: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  },
);
