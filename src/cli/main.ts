import { type CliCommand, type CliIO, UsageError } from './args';
import { collectCommand, evalCommand } from './commands/collect';
import { corpusCommand } from './commands/corpus';
import { exportCuratedCommand } from './commands/curate';
import { demoCommand } from './commands/demo';
import { compareCommand, scoreCommand } from './commands/evaluate';
import { healthCommand } from './commands/health';
import { formatCommand, processCommand } from './commands/pipeline';
import { indexCommand, searchCommand } from './commands/search';
import { serveCommand } from './commands/serve';
import { jobsCommand } from './commands/jobs';
import { trainCommand } from './commands/train';
import { evalAdapterCommand } from './commands/evalAdapter';
import { hostsCommand } from './commands/hosts';
import { writerCommand } from './commands/writer';
import { validateCommand } from './commands/validate';

/** Every `drag` subcommand, one place. */
export const COMMANDS: readonly CliCommand[] = [
  validateCommand,
  corpusCommand,
  indexCommand,
  searchCommand,
  serveCommand,
  collectCommand,
  evalCommand,
  healthCommand,
  processCommand,
  formatCommand,
  exportCuratedCommand,
  writerCommand,
  scoreCommand,
  compareCommand,
  jobsCommand,
  trainCommand,
  evalAdapterCommand,
  hostsCommand,
  demoCommand,
];

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `drag: DRAG Studio's command line

Usage: drag <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run "drag <command> --help" for a command's options; "drag --version" prints the version.
`;
}

/** The package's version, which scripts/build.mjs writes into the bundle; absent when run from source. */
declare const __DRAG_VERSION__: string | undefined;

/** Runs the CLI; returns the process exit code (0 ok, 1 problems found or failed, 2 usage). */
export async function runCli(argv: string[], io: CliIO, signal: AbortSignal): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(help());
    return name ? 0 : 2;
  }
  if (name === '--version') {
    // The bundle carries the package's version (scripts/build.mjs); run from source it is "dev".
    io.stdout(`${typeof __DRAG_VERSION__ === 'string' ? __DRAG_VERSION__ : 'dev'}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.stderr(`drag: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout(`${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(rest, io, signal);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(`drag ${name}: ${(err as Error).message}\n\nUsage: ${command.usage}\n`);
      return 2;
    }
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' && e.path) {
      io.stderr(`drag ${name}: no such file: ${e.path}\n`);
      return 1;
    }
    if (signal.aborted) {
      io.stderr(`drag ${name}: cancelled\n`);
      return 130;
    }
    io.stderr(`drag ${name}: ${e.message}\n`);
    return 1;
  }
}
