import * as path from 'node:path';
import * as vscode from 'vscode';
import { fnv1a } from '../../core/util/random';
import {
  appendDecision,
  type CurationState,
  type Decision,
  decisionsPath,
  type NewDecision,
  readDecisions,
  replay,
} from '../../core/curation/decisions';

/**
 * The extension's view of `curation/decisions.jsonl`: replayed state, refreshed when this or
 * another window appends (file watcher), and the one way the UI writes a decision.
 */
export class CurationStore implements vscode.Disposable {
  private state: CurationState = replay([]);
  /** A hash of the decisions the state was replayed from. */
  private signature = signatureOf([]);
  private loaded: Promise<void> | null = null;
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly disposables: vscode.Disposable[] = [this.changed];
  readonly onDidChange = this.changed.event;

  constructor(
    readonly workspace: string,
    private readonly log: vscode.LogOutputChannel,
  ) {
    const watcher = vscode.workspace.createFileSystemWatcher(
      new vscode.RelativePattern(workspace, 'curation/decisions.jsonl'),
    );
    const reload = () => void this.reload();
    watcher.onDidChange(reload);
    watcher.onDidCreate(reload);
    watcher.onDidDelete(reload);
    this.disposables.push(watcher);
  }

  get file(): string {
    return decisionsPath(this.workspace);
  }

  ready(): Promise<void> {
    return (this.loaded ??= this.reload());
  }

  async reload(): Promise<void> {
    const { decisions, errors } = await readDecisions(this.file);
    for (const e of errors) this.log.warn(`${e.file}:${e.line}: ${e.fieldPath}: ${e.message}`);
    // Nothing new (the first load of an empty log, a watcher event for our own append): no event,
    // so the views do not re-render under a person's click for nothing.
    const signature = signatureOf(decisions);
    if (signature === this.signature) return;
    this.signature = signature;
    this.state = replay(decisions);
    this.changed.fire();
  }

  current(): CurationState {
    return this.state;
  }

  /**
   * Appends a decision. When the log cannot be written (read-only folder, full disk) the error says
   * so in words and the person can decide again: nothing before it in the log is touched.
   */
  async decide(d: NewDecision): Promise<Decision> {
    let written: Decision;
    try {
      written = await appendDecision(this.file, d);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = WRITE_ERRORS[e.code ?? ''] ?? e.message;
      this.log.error(`could not append to ${this.file}: ${e.message}`);
      throw new Error(
        `could not save the decision to ${path.relative(this.workspace, this.file)}: ${why}. ` +
          'Nothing already in the log was changed; decide again once it can be written.',
      );
    }
    await this.reload();
    return written;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

/** Why a write failed, in words, for the errors a person can fix. */
const WRITE_ERRORS: Record<string, string> = {
  EROFS: 'the folder is on a read-only file system',
  EACCES: 'permission denied',
  EPERM: 'the file or folder is not writable (immutable or not permitted)',
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is exceeded',
};

/** What a replayed state depends on: the decisions, hashed, and their count. */
function signatureOf(decisions: readonly Decision[]): string {
  return `${fnv1a(JSON.stringify(decisions)).toString(36)}:${decisions.length}`;
}
