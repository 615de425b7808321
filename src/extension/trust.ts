import * as vscode from 'vscode';

/**
 * Workspace trust, in one place. A folder someone else wrote (a colleague's experiment, a paper's
 * release, a pull request) can name programs, hosts, endpoint URLs and environment variables in
 * drag.config.json and jobs/<id>/job.json. In Restricted Mode none of them is run or contacted:
 * each command that could is classified here, the registry's loop (commands/registry.ts) refuses it
 * with a message that says why, and package.json hides it with `isWorkspaceTrusted` when-clauses.
 * Reading, viewing, searching and curating the folder's data works untrusted: DRAG Studio's own
 * bundled code reads it, and nothing the folder names is executed. docs/restricted-mode.md carries
 * this table in words.
 */
export type TrustRule =
  /** Runs or reaches something the folder configures; `toDo` completes "trust it to …". */
  | { trust: 'required'; toDo: string }
  /** Safe in Restricted Mode, and why. */
  | { trust: 'none'; why: string };

const job = (toDo: string, what: string): TrustRule => ({
  trust: 'required',
  toDo: `${toDo} (${what} the host that its jobs/<id>/job.json names)`,
});
const own = (why: string): TrustRule => ({ trust: 'none', why });

/** Every command DRAG Studio registers: a unit test fails when a contributed command is missing. */
export const COMMAND_TRUST: Readonly<Record<string, TrustRule>> = {
  // Run or reach what the folder configures.
  'drag.collectTrajectories': {
    trust: 'required',
    toDo: 'collect trajectories (collection sends requests to the endpoint URLs its drag.config.json names)',
  },
  'drag.evaluateModel': {
    trust: 'required',
    toDo: 'evaluate a model (evaluation sends requests to the endpoint URLs its drag.config.json names)',
  },
  'drag.startTraining': {
    trust: 'required',
    toDo: 'start training (training runs the Python, environment and host its drag.config.json names)',
  },
  'drag.continueWithDpo': {
    trust: 'required',
    toDo: 'continue with DPO (training runs the Python, environment and host its drag.config.json names)',
  },
  'drag.checkGpuHost': {
    trust: 'required',
    toDo: 'check a GPU host (the check runs the setup lines and Python its drag.config.json names on that host)',
  },
  'drag.evaluateAdapter': job('evaluate the adapter', 'vLLM runs on'),
  'drag.refreshJobs': job('refresh the jobs', 'each check connects to'),
  'drag.openTrainingMonitor': job('follow the job live', 'the monitor connects to'),
  'drag.cancelJob': job('cancel the job', 'cancelling runs commands on'),
  'drag.fetchAdapter': job('fetch the adapter', 'fetching copies from'),
  'drag.cleanJob': job("delete the job's remote files", 'deleting runs commands on'),
  // Read, show, search and curate the folder's data with DRAG Studio's own code.
  'drag.openTrajectoriesFile': own('opens a trajectories file you choose in the tree (reads it)'),
  'drag.refreshTrajectories': own('rescans runs/*/trajectories.jsonl (reads files)'),
  'drag.filterTrajectories': own('filters the tree'),
  'drag.clearTrajectoriesFilter': own('clears the filter'),
  'drag.loadMore': own('pages the tree'),
  'drag.showTrajectoryRecord': own('shows a record as read-only JSON'),
  'drag.revealTrajectoryLine': own('opens the file at the line'),
  'drag.showLog': own("shows DRAG Studio's log"),
  'drag.searchCorpus': own("searches the folder's corpus with DRAG Studio's bundled search (no program, host or URL)"),
  'drag.searchStepQuery': own('searches the corpus for a step, as above'),
  'drag.setApiKey': own("stores a key in VS Code's SecretStorage; contacts nothing"),
  'drag.inspectTrajectory': own('shows a trajectory, with page images rendered by the bundled PDF reader'),
  'drag.inspectTrajectoryToSide': own('as Inspect Trajectory'),
  'drag.inspectFailedSearch': own('as Inspect Trajectory'),
  'drag.acceptTrajectory': own('a curation decision: a line appended to curation/decisions.jsonl'),
  'drag.rejectTrajectory': own('a curation decision'),
  'drag.undoCuration': own('a curation decision'),
  'drag.markLabelProblem': own('a curation decision'),
  'drag.writeBetterQuery': own('a curation decision, checked with the bundled search'),
  'drag.refreshFailedSearches': own('re-reads the runs and decisions'),
  'drag.exportCuratedDataset': own('the bundled CLI writes datasets/<name>/ from the decisions (data in, data out)'),
  'drag.editPairs': own('edits DPO pairs (curation data)'),
  'drag.compareEvaluations': own('compares evaluations already in evals/ (reads files)'),
  'drag.compareWithPrevious': own('as Compare Evaluations'),
  'drag.renameEvaluation': own("writes a label into the evaluation's own folder"),
  'drag.buildCorpus': own(
    "the bundled CLI reads the folder's PDFs with the bundled PDF reader and writes the OCR file: " +
      'no program, host or URL from the folder',
  ),
  'drag.buildTrainingData': own('the bundled CLI (drag process --output-dir) turns runs into datasets/<name>/'),
  'drag.createDemoWorkspace': own('the bundled CLI writes an offline demo into an empty folder'),
  'drag.trainWriter': own("the bundled CLI trains the local query writer on this machine's CPU from a dataset"),
};

/**
 * Settings (contributes.configuration) that name no program, host or URL, so Restricted Mode need
 * not restrict them; any other setting goes in package.json's `restrictedConfigurations`.
 */
export const SETTINGS_SAFE_UNTRUSTED: Readonly<Record<string, string>> = {
  'drag.collect.concurrency': 'a number of requests at once; it names nothing to run or contact',
  'drag.keyboard.singleLetterShortcuts': 'a keyboard preference for the panels; it names nothing to run or contact',
  'drag.terminal.addCliToPath': "a switch for our own bundled CLI's launcher; it names no program of the folder's",
};

export const MANAGE_TRUST = 'Manage Workspace Trust';

/** What a refused command says. */
export function restrictedMessage(toDo: string): string {
  return `This folder is in Restricted Mode: trust it to ${toDo}.`;
}

/** The rule for a command; one that is not classified needs trust (refuse rather than run). */
export function trustRule(id: string): TrustRule {
  return COMMAND_TRUST[id] ?? { trust: 'required', toDo: `run ${id}` };
}

export function isTrusted(): boolean {
  return vscode.workspace.isTrusted;
}

/** Runs `listener` once the person trusts the folder (no reload: VS Code grants trust live). */
export function onTrustGranted(listener: () => void): vscode.Disposable {
  return vscode.workspace.onDidGrantWorkspaceTrust(listener);
}

/** Tells the person why nothing started, with VS Code's trust editor one click away. */
export async function explainRestricted(toDo: string): Promise<void> {
  const choice = await vscode.window.showWarningMessage(`DRAG: ${restrictedMessage(toDo)}`, MANAGE_TRUST);
  if (choice === MANAGE_TRUST) await vscode.commands.executeCommand('workbench.trust.manage');
}

/**
 * The gate: a command that needs trust, called in Restricted Mode (from a keybinding, another
 * command, a webview, a test), starts nothing and says why (and writes a line to `log`). Trust is
 * read at each call, so granting it enables every command at once.
 */
export function gate<H extends (...args: never[]) => unknown>(
  id: string,
  handler: H,
  log?: Pick<vscode.LogOutputChannel, 'info'>,
): H {
  const rule = trustRule(id);
  if (rule.trust === 'none') return handler;
  return ((...args: never[]) => {
    if (!isTrusted()) {
      log?.info(`${id}: refused, the folder is in Restricted Mode`);
      void explainRestricted(rule.toDo);
      return undefined;
    }
    return handler(...args);
  }) as H;
}
