import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';
import type { z } from 'zod';
import type { Host } from '../schema/config';
import { shJoin } from './quote';

export type HostConfig = z.infer<typeof Host>;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** How commands and files reach a host: this machine, or SSH (the user's ~/.ssh/config and agent). */
export interface Transport {
  /** Human-readable name for messages: "local" or "ssh gpu-box". */
  readonly label: string;
  /** Runs a bash script on the host (sent on stdin, so the remote login shell never parses it). */
  run(script: string, options?: { signal?: AbortSignal }): Promise<RunResult>;
  /** Copies a local file or folder into `remoteDir` (keeping its base name). */
  upload(localPath: string, remoteDir: string, signal?: AbortSignal): Promise<void>;
  /** Copies a remote file or folder into `localDir` (keeping its base name). */
  download(remotePath: string, localDir: string, signal?: AbortSignal): Promise<void>;
}

/** A host could not be reached or refused us; the message says what to do. */
export class HostError extends Error {}

/** Spawns a program with an argument vector (never a shell string), collecting its output. */
export function execFileText(
  file: string,
  args: readonly string[],
  options: { input?: string; signal?: AbortSignal; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: options.signal,
      env: options.env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        reject(new HostError(`"${file}" is not installed on this machine`));
      else reject(err);
    });
    child.on('close', (code, sig) => resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr }));
    child.stdin.on('error', () => {
      /* the program may exit before reading all of stdin */
    });
    child.stdin.end(options.input ?? '');
  });
}

let haveRsync: Promise<boolean> | undefined;
/** rsync is used for uploads when this machine has it; scp otherwise. */
function rsyncAvailable(): Promise<boolean> {
  haveRsync ??= execFileText('rsync', ['--version']).then(
    (r) => r.code === 0,
    () => false,
  );
  return haveRsync;
}

export class LocalTransport implements Transport {
  readonly label = 'local';

  run(script: string, options: { signal?: AbortSignal } = {}): Promise<RunResult> {
    return execFileText('bash', ['-s'], { input: script, signal: options.signal });
  }

  async upload(localPath: string, remoteDir: string): Promise<void> {
    await fsp.mkdir(remoteDir, { recursive: true });
    await fsp.cp(localPath, path.join(remoteDir, path.basename(localPath)), { recursive: true, force: true });
  }

  async download(remotePath: string, localDir: string): Promise<void> {
    await fsp.mkdir(localDir, { recursive: true });
    await fsp.cp(remotePath, path.join(localDir, path.basename(remotePath)), { recursive: true, force: true });
  }
}

/** A recognised SSH connection problem in words a user can act on, or null if stderr shows none. */
function sshProblem(host: string, stderr: string): string | null {
  const tail = stderr.trim().split('\n').slice(-3).join(' | ');
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No .* host key is known/i.test(stderr)) {
    return (
      `ssh ${host}: the host key is not known or has changed, so the connection was refused ` +
      `(host keys are never accepted silently). Run "ssh ${host}" in a terminal once, ` +
      `check the fingerprint, and accept it. (${tail})`
    );
  }
  if (/Permission denied/i.test(stderr))
    return (
      `ssh ${host}: permission denied: add your key to the host or to your ssh-agent ` +
      `(DRAG Studio never asks for passwords). (${tail})`
    );
  if (/Could not resolve hostname/i.test(stderr))
    return `ssh ${host}: unknown host name: add it to ~/.ssh/config. (${tail})`;
  if (/Connection refused|timed out|No route to host/i.test(stderr))
    return `ssh ${host}: cannot connect: is the host up and sshd listening? (${tail})`;
  return null;
}

/** Explains an ssh failure (exit code 255) in words a user can act on. */
export function explainSshFailure(host: string, stderr: string): string {
  return (
    sshProblem(host, stderr) ?? `ssh ${host}: ${stderr.trim().split('\n').slice(-3).join(' | ') || 'connection failed'}`
  );
}

export class SshTransport implements Transport {
  readonly label: string;
  private readonly base: string[];

  constructor(
    private readonly host: string,
    port?: number,
  ) {
    // Refused here too, whatever the caller checked: `-oProxyCommand=…` as a host runs a command.
    if (host.startsWith('-') || /[\u0000-\u001f\u007f]/.test(host))
      throw new HostError(`ssh host ${JSON.stringify(host)}: must not start with "-" or contain control characters`);
    this.label = `ssh ${host}`;
    const config = process.env.DRAG_SSH_CONFIG;
    this.base = [
      ...(config ? ['-F', config] : []),
      ...(port ? ['-p', String(port)] : []),
      // Never prompt (a prompt would hang a background job) and never accept an unknown host key.
      '-o',
      'BatchMode=yes',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'ConnectTimeout=20',
      '-o',
      'ServerAliveInterval=15',
    ];
  }

  /** The ssh command line (without the host and without connection sharing), e.g. for a port forward. */
  sshCommand(): string[] {
    return ['ssh', ...this.base];
  }

  private mux: Promise<string[]> | undefined;
  /**
   * Connection sharing: the Jobs view and the monitor poll every few seconds, and a new SSH
   * connection each time is slow and can trip a login node's rate limits. When the user's own
   * ssh config already shares connections (ControlPath, e.g. for a login that needs a second
   * factor), that is used untouched; otherwise one master per host is kept for 60 s after its
   * last use under ~/.cache/drag-studio/ssh. DRAG_SSH_MULTIPLEX=0 turns it off.
   */
  muxOptions(): Promise<string[]> {
    // Windows' OpenSSH has no connection sharing (ControlMaster needs Unix sockets).
    if (process.env.DRAG_SSH_MULTIPLEX === '0' || process.platform === 'win32') return Promise.resolve([]);
    this.mux ??= execFileText('ssh', [...this.base, '-G', '--', this.host]).then(
      async (r) => {
        const own = /^controlpath (.+)$/m.exec(r.stdout)?.[1];
        if (r.code !== 0 || (own && own !== 'none')) return [];
        const dir = path.join(homedir(), '.cache', 'drag-studio', 'ssh');
        await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
        return ['-o', 'ControlMaster=auto', '-o', `ControlPath=${dir}/%C`, '-o', 'ControlPersist=60'];
      },
      () => [],
    );
    return this.mux;
  }

  async run(script: string, options: { signal?: AbortSignal } = {}): Promise<RunResult> {
    const result = await execFileText('ssh', [...this.base, ...(await this.muxOptions()), '--', this.host, 'bash -s'], {
      input: script,
      signal: options.signal,
    });
    if (result.code === 255) throw new HostError(explainSshFailure(this.host, result.stderr));
    return result;
  }

  async upload(localPath: string, remoteDir: string, signal?: AbortSignal): Promise<void> {
    await this.copy([localPath], `${this.host}:${remoteDir}/`, signal);
  }

  async download(remotePath: string, localDir: string, signal?: AbortSignal): Promise<void> {
    await fsp.mkdir(localDir, { recursive: true });
    await this.copy([`${this.host}:${remotePath}`], `${localDir}/`, signal);
  }

  private async copy(sources: string[], dest: string, signal?: AbortSignal): Promise<void> {
    let result: RunResult;
    // DRAG_NO_RSYNC=1 forces scp (what a machine without rsync does; the tests use it).
    if (process.env.DRAG_NO_RSYNC !== '1' && (await rsyncAvailable())) {
      // --protect-args: remote paths reach rsync as they are, spaces and quotes included.
      result = await execFileText(
        'rsync',
        ['-a', '--protect-args', '-e', shJoin([...this.sshCommand(), ...(await this.muxOptions())]), ...sources, dest],
        { signal },
      );
    } else {
      const scpBase = [
        ...this.base.map((a, i) => (a === '-p' && i < this.base.length - 1 ? '-P' : a)),
        ...(await this.muxOptions()),
      ];
      result = await execFileText('scp', ['-r', '-q', ...scpBase, ...sources, dest], { signal });
    }
    if (result.code !== 0) {
      throw new HostError(
        sshProblem(this.host, result.stderr) ??
          `copying ${sources.join(', ')} to ${dest} failed: ${result.stderr.trim() || `exit code ${result.code}`}`,
      );
    }
  }
}

/** The transport for a configured host: SSH when it names one, else this machine. */
export function transportFor(host: HostConfig): Transport {
  if (!host.ssh && (host.launcher ?? 'ssh') === 'ssh')
    throw new HostError(
      'launcher "ssh" needs "ssh": an alias from ~/.ssh/config or user@host ' +
        '(or set "launcher": "local" for this machine)',
    );
  return host.ssh ? new SshTransport(host.ssh, host.port) : new LocalTransport();
}
