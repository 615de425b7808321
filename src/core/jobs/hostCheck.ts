import { shJoin, shQuote, shRemotePath } from './quote';
import { HostError, type HostConfig, transportFor } from './transport';

/**
 * Preparing and checking a GPU host: the host's `setup` lines (module loads, a venv or conda
 * activation) run in the job's shell before every job command and every check; `checkHost` reports
 * what a training run needs there (`drag hosts check`, "DRAG: Check GPU Host…"), on a compute node
 * through a short `srun` for SLURM hosts, since the login node that submits usually has no GPU.
 */

/**
 * The setup lines as script text: each runs in the current shell (so `source` and `module load`
 * persist), and `onFail(index, line)` is the shell command run when one exits non-zero.
 */
export function setupLines(setup: readonly string[], onFail: (index: number, line: string) => string): string {
  return setup.map((line, i) => `${line}\n[ $? -eq 0 ] || ${onFail(i, line)}\n`).join('');
}

/** The versions that ran end to end, and the oldest the trainer accepts (trainer/requirements.txt pins the former). */
export const TESTED_VERSIONS: Readonly<Record<'torch' | 'transformers' | 'peft', { tested: string; min: string }>> = {
  torch: { tested: '2.11', min: '2.4' },
  transformers: { tested: '5.17', min: '4.57' },
  peft: { tested: '0.21', min: '0.17' },
};

function versionTuple(v: string): number[] {
  const out: number[] = [];
  for (const part of v.split('+')[0]!.split('.')) {
    const digits = /^\d+/.exec(part)?.[0];
    if (!digits) break;
    out.push(Number(digits));
  }
  return out;
}

function compareVersions(a: string, b: string): number {
  const [x, y] = [versionTuple(a), versionTuple(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d) return Math.sign(d);
  }
  return 0;
}

export type VersionVerdict = 'tested' | 'untested' | 'too old' | 'missing';

/** A package version against the tested range: the tested minor release, newer or older but accepted, too old. */
export function versionVerdict(pkg: keyof typeof TESTED_VERSIONS, have: string | null): VersionVerdict {
  if (!have) return 'missing';
  const { tested, min } = TESTED_VERSIONS[pkg];
  if (compareVersions(have, min) < 0) return 'too old';
  const [a, b] = [versionTuple(have), versionTuple(tested)];
  return a[0] === b[0] && a[1] === b[1] ? 'tested' : 'untested';
}

function parseJsonObject(text: string | undefined): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(text ?? '');
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * The reason a trainer environment check gave, in words: from the last line of
 * `python -m drag_trainer env --json` (stdout) and, when that is not JSON, its stderr.
 */
export function envCheckReason(reportLine: string | undefined, stderr: string | undefined): string {
  const report = parseJsonObject(reportLine) as {
    packages?: Record<string, string | null>;
    problems?: string[];
  } | null;
  const err = (stderr ?? '').trim();
  if (!report) {
    if (/command not found|No such file/.test(err)) return `the Python interpreter was not found (${err.slice(-200)})`;
    if (/No module named '?drag_trainer/.test(err))
      return 'the trainer (drag_trainer) was not uploaded to the job folder';
    return err ? `the check did not run: ${err.slice(-300)}` : 'the check gave no report';
  }
  const words: string[] = [];
  const packages = report.packages ?? {};
  for (const name of ['torch', 'transformers', 'peft'])
    if (name in packages && packages[name] === null) words.push(`${name} is not importable`);
  for (const p of report.problems ?? []) if (!p.startsWith('missing packages')) words.push(p);
  return words.join('; ') || 'the trainer reported the host not ready';
}

/** What `drag hosts check` found on a host. */
export interface HostCheckReport {
  host: string;
  launcher: 'ssh' | 'slurm' | 'local';
  /** Where the check ran: the host, or the compute node SLURM gave. */
  node: string | null;
  /** The setup line that failed, with its output, or null. */
  setupFailed: string | null;
  python: { path: string | null; version: string | null };
  torch: { version: string | null; cuda: string | null; cudaAvailable: boolean; error: string | null };
  gpus: Array<{ name: string; memoryGiB: number }>;
  packages: Record<keyof typeof TESTED_VERSIONS, { version: string | null; verdict: VersionVerdict }>;
  vllm: string | null;
  workdir: string;
  freeDiskGiB: number | null;
  /** What stops training there. */
  problems: string[];
  /** What may work but was never run (versions outside the tested range, no vLLM for evaluation). */
  warnings: string[];
  ok: boolean;
}

const MARK = '@@DRAG-HOST-CHECK@@';

/** The Python part of the probe: standard library only, so it answers on a host with nothing installed. */
const PROBE_PY = `import json, platform, sys, importlib.util, importlib.metadata as md
out = {"python": platform.python_version(), "executable": sys.executable, "packages": {}, "gpus": []}
for name in ("torch", "transformers", "peft"):
    try:
        out["packages"][name] = md.version(name) if importlib.util.find_spec(name) else None
    except Exception:
        out["packages"][name] = None
out["torch_error"] = None
out["cuda"] = None
out["cuda_available"] = False
if out["packages"]["torch"]:
    try:
        import torch
        out["cuda"] = torch.version.cuda
        out["cuda_available"] = bool(torch.cuda.is_available())
        for i in range(torch.cuda.device_count() if out["cuda_available"] else 0):
            p = torch.cuda.get_device_properties(i)
            out["gpus"].append({"name": p.name, "memoryGiB": round(p.total_memory / 2**30, 1)})
    except Exception as err:
        out["torch_error"] = str(err)[:300]
print(json.dumps(out))
`;

/** The script the check runs on the host or node: setup lines, then Python, vLLM and disk, as marked sections. */
export function hostCheckScript(host: HostConfig): string {
  const python = host.python ?? 'python3';
  const vllm = host.vllm ?? 'vllm';
  const wd = shRemotePath(host.workdir);
  const setup = setupLines(
    host.setup ?? [],
    (i, line) => `{ echo ${shQuote(`${MARK}setup=${i + 1}: ${line}`)} >&3; exit 0; }`,
  );
  return `echo "${MARK}node=$(hostname -s 2>/dev/null || hostname)"
exec 3>&1
${setup}echo "${MARK}python=$(command -v ${shQuote(python)} 2>/dev/null)"
if command -v ${shQuote(python)} >/dev/null 2>&1; then
  echo "${MARK}probe=$(${shQuote(python)} - 2>&1 <<'DRAG_PY' | tail -n 1
${PROBE_PY}DRAG_PY
)"
fi
echo "${MARK}vllm=$(command -v ${shQuote(vllm)} 2>/dev/null)"
mkdir -p ${wd} 2>/dev/null
echo "${MARK}workdir=$(cd ${wd} 2>/dev/null && pwd -P)"
echo "${MARK}disk_kib=$(df -Pk ${wd} 2>/dev/null | awk 'NR==2 {print $4}')"
`;
}

/** The report from the check's output (pure; tested from text). */
export function parseHostCheck(hostName: string, host: HostConfig, output: string): HostCheckReport {
  const kv = new Map<string, string>();
  for (const line of output.split('\n')) {
    const at = line.indexOf(MARK);
    if (at < 0) continue;
    const rest = line.slice(at + MARK.length);
    const eq = rest.indexOf('=');
    if (eq > 0) kv.set(rest.slice(0, eq), rest.slice(eq + 1));
  }
  const report: HostCheckReport = {
    host: hostName,
    launcher: host.launcher ?? 'ssh',
    node: kv.get('node') || null,
    setupFailed: kv.get('setup') ?? null,
    python: { path: kv.get('python') || null, version: null },
    torch: { version: null, cuda: null, cudaAvailable: false, error: null },
    gpus: [],
    packages: {
      torch: { version: null, verdict: 'missing' },
      transformers: { version: null, verdict: 'missing' },
      peft: { version: null, verdict: 'missing' },
    },
    vllm: kv.get('vllm') || null,
    workdir: kv.get('workdir') || host.workdir,
    freeDiskGiB: /^\d+$/.test(kv.get('disk_kib') ?? '')
      ? Math.round((Number(kv.get('disk_kib')) / 2 ** 20) * 10) / 10
      : null,
    problems: [],
    warnings: [],
    ok: false,
  };
  if (report.setupFailed) {
    report.problems.push(`setup line ${report.setupFailed} failed (its output is above)`);
    return report;
  }
  const python = host.python ?? 'python3';
  const probe = parseJsonObject(kv.get('probe')) as {
    python?: string;
    packages?: Record<string, string | null>;
    cuda?: string | null;
    cuda_available?: boolean;
    torch_error?: string | null;
    gpus?: Array<{ name: string; memoryGiB: number }>;
  } | null;
  if (!report.python.path)
    report.problems.push(`"${python}" is not on the PATH there: set "python" or add setup lines`);
  else if (!probe) report.problems.push(`"${python}" did not run the check: ${kv.get('probe') ?? 'no output'}`);
  if (probe) {
    report.python.version = probe.python ?? null;
    if (report.python.version && compareVersions(report.python.version, '3.10') < 0)
      report.problems.push(`Python ${report.python.version} is too old: the trainer needs 3.10 or newer`);
    for (const name of Object.keys(TESTED_VERSIONS) as Array<keyof typeof TESTED_VERSIONS>) {
      const version = probe.packages?.[name] ?? null;
      const verdict = versionVerdict(name, version);
      report.packages[name] = { version, verdict };
      const { tested, min } = TESTED_VERSIONS[name];
      if (verdict === 'missing')
        report.problems.push(`${name} is not importable (pip install -r trainer/requirements.txt)`);
      else if (verdict === 'too old')
        report.problems.push(`${name} ${version} is older than ${min}, the oldest the trainer accepts`);
      else if (verdict === 'untested')
        report.warnings.push(`${name} ${version} is accepted but untested (tested: ${tested}.x)`);
    }
    report.torch = {
      version: probe.packages?.torch ?? null,
      cuda: probe.cuda ?? null,
      cudaAvailable: probe.cuda_available === true,
      error: probe.torch_error ?? null,
    };
    report.gpus = probe.gpus ?? [];
    if (report.torch.error) report.problems.push(`importing torch failed: ${report.torch.error}`);
    else if (report.torch.version && !report.torch.cudaAvailable)
      report.problems.push(
        'torch sees no CUDA GPU here (nvidia-smi; a CPU-only torch build; on SLURM, "gpus" per node)',
      );
  }
  if (!report.vllm)
    report.warnings.push(`no "${host.vllm ?? 'vllm'}" command: drag eval-adapter cannot serve adapters here`);
  if (report.freeDiskGiB === null) report.problems.push(`the workdir ${host.workdir} cannot be created or read`);
  else if (report.freeDiskGiB < 20)
    report.warnings.push(
      `only ${report.freeDiskGiB} GiB free in ${report.workdir} (a run with checkpoints needs tens of GiB)`,
    );
  report.ok = report.problems.length === 0;
  return report;
}

/** The `srun` that runs the check on a compute node of the host's partition, giving up after `timeoutS`. */
export function srunCheckCommand(host: HostConfig, timeoutS: number, script: string): string {
  const s = host.slurm ?? {};
  return `timeout ${timeoutS + 30} ${shJoin([
    'srun',
    `--immediate=${timeoutS}`,
    '--job-name=drag-host-check',
    '--nodes=1',
    '--ntasks=1',
    '--time=5',
    ...(s.partition ? [`--partition=${s.partition}`] : []),
    ...(s.gpus ? [`--gres=gpu:${Math.min(s.gpus, 1)}`] : []),
    ...(s.account ? [`--account=${s.account}`] : []),
    ...(s.extra ?? []),
    'bash',
    '-c',
    script,
  ])}`;
}

/**
 * Checks a host for training: over SSH or here directly, and for SLURM through a short `srun` on
 * the host's partition. A queue that does not start the check within `timeoutS` gives a plain
 * message, not a hang.
 */
export async function checkHost(
  hostName: string,
  host: HostConfig,
  options: { timeoutS?: number; signal?: AbortSignal } = {},
): Promise<{ report: HostCheckReport; output: string }> {
  const transport = transportFor(host);
  const script = hostCheckScript(host);
  const timeoutS = options.timeoutS ?? 120;
  const slurm = (host.launcher ?? 'ssh') === 'slurm';
  const res = await transport.run(slurm ? `${srunCheckCommand(host, timeoutS, script)}\n` : script, {
    signal: options.signal,
  });
  const output = `${res.stdout}${res.stderr}`;
  if (!output.includes(`${MARK}node=`)) {
    if (slurm) {
      const why = res.stderr.trim().split('\n').slice(-2).join(' | ');
      const partition = host.slurm?.partition ? ` "${host.slurm.partition}"` : '';
      throw new HostError(
        /Immediate|Unable to allocate|Terminated|timed out/i.test(why) || res.code === 124
          ? `${transport.label}: SLURM did not start the check within ${timeoutS} s ` +
              `(the partition${partition} is busy or the request cannot be met)${why ? `: ${why}` : ''}; ` +
              'try again later or with --timeout'
          : `${transport.label}: srun could not run the check: ${why || `exit code ${res.code}`}`,
      );
    }
    throw new HostError(`${transport.label}: the check did not run: ${res.stderr.trim() || `exit code ${res.code}`}`);
  }
  return { report: parseHostCheck(hostName, host, res.stdout), output };
}

/** The report as lines for a terminal. */
export function formatHostCheck(r: HostCheckReport): string {
  const lines = [
    `host        ${r.host} (${r.launcher})${r.node ? `, checked on node ${r.node}` : ''}`,
    `python      ${r.python.version ?? 'not found'}${r.python.path ? ` (${r.python.path})` : ''}`,
    `torch       ${r.torch.version ?? 'not importable'}${r.torch.cuda ? `, CUDA ${r.torch.cuda}` : ''}` +
      `${r.torch.version ? `, GPU ${r.torch.cudaAvailable ? 'visible' : 'not visible'}` : ''}`,
    ...r.gpus.map((g, i) => `gpu ${i}       ${g.name}, ${g.memoryGiB} GiB`),
    ...(['transformers', 'peft'] as const).map(
      (n) =>
        `${n.padEnd(11)} ${r.packages[n].version ?? 'not importable'} ` +
        `(${r.packages[n].verdict}; tested ${TESTED_VERSIONS[n].tested}.x)`,
    ),
    `vllm        ${r.vllm ?? 'not found'}`,
    `disk        ${r.freeDiskGiB === null ? '?' : `${r.freeDiskGiB} GiB free`} in ${r.workdir}`,
    ...r.problems.map((p) => `problem: ${p}`),
    ...r.warnings.map((w) => `warning: ${w}`),
    r.ok ? 'ready for training' : 'not ready for training',
  ];
  return `${lines.join('\n')}\n`;
}
