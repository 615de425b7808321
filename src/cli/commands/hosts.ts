import { parseArgs } from 'node:util';
import { checkHost, formatHostCheck } from '../../core/jobs/hostCheck';
import { type CliCommand, UsageError } from '../args';
import { resolveHost, workspaceOf } from './jobs';

export const hostsCommand: CliCommand = {
  name: 'hosts',
  summary: 'check a GPU host from drag.config.json: setup lines, Python, torch, CUDA, GPUs, packages, vLLM, disk',
  usage: `drag hosts check <host> [--timeout S] [--json] [--workspace DIR]

Runs the host's "setup" lines, then reports Python, torch and its CUDA, each GPU's name and memory,
transformers and peft against the tested versions, whether vLLM is there, and the free disk in the
host's workdir. SLURM hosts are checked on a compute node of their partition through a short srun,
which gives up when the queue has not started it within --timeout seconds (default 120).
Exit code 0 when the host is ready for training, 1 when not (the problems are listed).`,
  async run(argv, io, signal) {
    const [sub, ...rest] = argv;
    if (sub !== 'check') throw new UsageError(`unknown subcommand "${sub ?? ''}": check`);
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        workspace: { type: 'string' },
        timeout: { type: 'string', default: '120' },
        json: { type: 'boolean', default: false },
      },
    });
    const timeoutS = Number(values.timeout);
    if (!Number.isInteger(timeoutS) || timeoutS < 1)
      throw new UsageError('--timeout must be a whole number of seconds');
    const { name, host } = await resolveHost(workspaceOf(values.workspace), positionals[0]);
    if (!values.json) io.stderr(`checking ${name}${host.launcher === 'slurm' ? ' on a compute node (srun)' : ''}\n`);
    const { report } = await checkHost(name, host, { timeoutS, signal });
    io.stdout(values.json ? `${JSON.stringify(report)}\n` : formatHostCheck(report));
    return report.ok ? 0 : 1;
  },
};
