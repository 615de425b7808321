/** A usage error: printed with the command's help, exit code 2. */
export class UsageError extends Error {}

export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export interface CliCommand {
  name: string;
  summary: string;
  usage: string;
  run(argv: string[], io: CliIO, signal: AbortSignal): Promise<number>;
}
