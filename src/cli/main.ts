import { type CliCommand, type CliIO, UsageError } from './args';

/**
 * Every `drag` subcommand, one place: its name and where its code is. A command's module (and what
 * it imports) is loaded only when the command runs: built, the commands live in dist/cli-commands.js
 * and dist/cli.js carries only this table and each command's help (scripts/build.mjs), so
 * `drag --version` and `drag <command> --help` start about as fast as node itself.
 */
export const COMMANDS: ReadonlyArray<{ name: string; load: () => Promise<CliCommand> }> = [
  { name: 'validate', load: async () => (await import('./commands/validate.js')).validateCommand },
  { name: 'corpus', load: async () => (await import('./commands/corpus.js')).corpusCommand },
  { name: 'index', load: async () => (await import('./commands/search.js')).indexCommand },
  { name: 'search', load: async () => (await import('./commands/search.js')).searchCommand },
  { name: 'serve', load: async () => (await import('./commands/serve.js')).serveCommand },
  { name: 'collect', load: async () => (await import('./commands/collect.js')).collectCommand },
  { name: 'eval', load: async () => (await import('./commands/collect.js')).evalCommand },
  { name: 'health', load: async () => (await import('./commands/health.js')).healthCommand },
  { name: 'process', load: async () => (await import('./commands/pipeline.js')).processCommand },
  { name: 'format', load: async () => (await import('./commands/pipeline.js')).formatCommand },
  { name: 'export-curated', load: async () => (await import('./commands/curate.js')).exportCuratedCommand },
  { name: 'writer', load: async () => (await import('./commands/writer.js')).writerCommand },
  { name: 'score', load: async () => (await import('./commands/evaluate.js')).scoreCommand },
  { name: 'compare', load: async () => (await import('./commands/evaluate.js')).compareCommand },
  { name: 'jobs', load: async () => (await import('./commands/jobs.js')).jobsCommand },
  { name: 'train', load: async () => (await import('./commands/train.js')).trainCommand },
  { name: 'eval-adapter', load: async () => (await import('./commands/evalAdapter.js')).evalAdapterCommand },
  { name: 'hosts', load: async () => (await import('./commands/hosts.js')).hostsCommand },
  { name: 'demo', load: async () => (await import('./commands/demo.js')).demoCommand },
  { name: 'completion', load: async () => (await import('./commands/completion.js')).completionCommand },
];

/** Each command's summary and usage, which scripts/build.mjs writes into the bundle; absent when run from source. */
declare const __DRAG_COMMAND_HELP__: Record<string, { summary: string; usage: string }> | undefined;

/** A command's summary and usage: from the bundle when built, else from the command's module. */
async function describe(entry: (typeof COMMANDS)[number]): Promise<{ name: string; summary: string; usage: string }> {
  const built = typeof __DRAG_COMMAND_HELP__ === 'object' ? __DRAG_COMMAND_HELP__[entry.name] : undefined;
  if (built) return { name: entry.name, ...built };
  const command = await entry.load();
  if (command.name !== entry.name) throw new Error(`COMMANDS: "${entry.name}" loads the command "${command.name}"`);
  return command;
}

async function help(): Promise<string> {
  const commands = await Promise.all(COMMANDS.map(describe));
  const width = Math.max(...commands.map((c) => c.name.length));
  return `drag: DRAG Studio's command line

Usage: drag <command> [options]

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run "drag <command> --help" for a command's options; "drag --version" prints the version.
`;
}

/** The package's version, which scripts/build.mjs writes into the bundle; absent when run from source. */
declare const __DRAG_VERSION__: string | undefined;

/** Runs the CLI; returns the process exit code (0 ok, 1 problems found or failed, 2 usage). */
export async function runCli(argv: string[], io: CliIO, signal: AbortSignal): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(await help());
    return name ? 0 : 2;
  }
  if (name === '--version') {
    // The bundle carries the package's version (scripts/build.mjs); run from source it is "dev".
    io.stdout(`${typeof __DRAG_VERSION__ === 'string' ? __DRAG_VERSION__ : 'dev'}\n`);
    return 0;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    io.stderr(`drag: unknown command "${name}"\n\n${await help()}`);
    return 2;
  }
  // After `--` the words belong to a remote command (drag jobs submit … -- python x.py --help).
  const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (own.includes('--help') || own.includes('-h')) {
    io.stdout(`${(await describe(entry)).usage}\n`);
    return 0;
  }
  const command = await entry.load();
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
