import * as vscode from 'vscode';
import { indexJsonl, indexProblems, type JsonlIndex, readLine } from '../../core/io/jsonl';
import { Trajectory } from '../../core/schema/trajectory';
import { type TrajectorySummary, trajectorySummarizer } from '../../core/trajectories/summary';
import { loadConfig, trajectoryGlobs } from '../../core/workspace/layout';

export type TrajectoryIndex = JsonlIndex<TrajectorySummary>;

/** One trajectories file the view shows, with its index (null until first indexed). */
export interface TrackedFile {
  uri: vscode.Uri;
  index: TrajectoryIndex | null;
  /** Why indexing failed (unreadable file), if it did. */
  failure: string | null;
}

/**
 * Owns the trajectory files of the workspace: finds them, indexes them with the core JSONL indexer,
 * follows them as they grow, and publishes their bad lines to the Problems panel.
 */
export class TrajectoryStore implements vscode.Disposable {
  private readonly files = new Map<string, TrackedFile>();
  private readonly extra = new Set<string>();
  private readonly disposables: vscode.Disposable[] = [];
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly diagnostics: vscode.DiagnosticCollection;
  private scanning: Promise<void> | null = null;
  private watchers: vscode.Disposable[] = [];

  readonly onDidChange = this.changed.event;

  constructor(private readonly log: vscode.LogOutputChannel) {
    this.diagnostics = vscode.languages.createDiagnosticCollection('drag');
    this.disposables.push(this.diagnostics, this.changed);
    this.disposables.push(vscode.workspace.onDidChangeWorkspaceFolders(() => void this.rescan()));
  }

  /** Resolves once the workspace has been scanned and every file indexed. */
  ready(): Promise<void> {
    return this.scanning ?? this.rescan();
  }

  list(): TrackedFile[] {
    return [...this.files.values()].sort((a, b) => a.uri.fsPath.localeCompare(b.uri.fsPath));
  }

  get(key: string): TrackedFile | undefined {
    return this.files.get(key);
  }

  /** Adds a file that is not under runs/ (from "Open Trajectories File…"). */
  async add(uri: vscode.Uri): Promise<void> {
    this.extra.add(uri.toString());
    this.track(uri);
    await this.reindex(uri.toString());
  }

  rescan(): Promise<void> {
    this.scanning = this.scan().catch((err) => {
      this.log.error(`scanning the workspace failed: ${(err as Error).message}`);
    });
    return this.scanning;
  }

  private async scan(): Promise<void> {
    const found = new Set<string>(this.extra);
    for (const w of this.watchers) w.dispose();
    this.watchers = [];
    for (const folder of vscode.workspace.workspaceFolders ?? []) {
      const { config, errors } = await loadConfig(folder.uri.fsPath);
      for (const e of errors) this.log.warn(`${e.file}:${e.line}: ${e.fieldPath}: ${e.message}`);
      for (const glob of trajectoryGlobs(config)) {
        const pattern = new vscode.RelativePattern(folder, glob);
        for (const uri of await vscode.workspace.findFiles(pattern, '**/node_modules/**')) found.add(uri.toString());
        const watcher = vscode.workspace.createFileSystemWatcher(pattern);
        watcher.onDidCreate((uri) => {
          this.track(uri);
          this.schedule(uri.toString());
        });
        watcher.onDidChange((uri) => this.schedule(uri.toString()));
        watcher.onDidDelete((uri) => this.forget(uri.toString()));
        this.watchers.push(watcher);
      }
    }
    for (const key of [...this.files.keys()]) if (!found.has(key)) this.forget(key);
    for (const key of found) this.track(vscode.Uri.parse(key));
    await Promise.all([...found].map((key) => this.reindex(key)));
    this.changed.fire();
  }

  private track(uri: vscode.Uri): void {
    const key = uri.toString();
    if (this.files.has(key)) return;
    this.files.set(key, { uri, index: null, failure: null });
    if (this.extra.has(key)) {
      // Files outside the conventional layout get a watcher of their own.
      const dir = vscode.Uri.joinPath(uri, '..');
      const watcher = vscode.workspace.createFileSystemWatcher(
        new vscode.RelativePattern(dir, uri.path.split('/').pop() ?? ''),
      );
      watcher.onDidChange(() => this.schedule(key));
      watcher.onDidCreate(() => this.schedule(key));
      watcher.onDidDelete(() => this.forget(key));
      this.disposables.push(watcher);
    }
  }

  private forget(key: string): void {
    const tracked = this.files.get(key);
    if (!tracked) return;
    this.files.delete(key);
    this.diagnostics.delete(tracked.uri);
    this.changed.fire();
  }

  /** Coalesces bursts of change events (a collector appending every second) into one re-index. */
  private schedule(key: string): void {
    clearTimeout(this.pending.get(key));
    this.pending.set(
      key,
      setTimeout(() => {
        this.pending.delete(key);
        void this.reindex(key).then(() => this.changed.fire());
      }, 250),
    );
  }

  private async reindex(key: string): Promise<void> {
    const tracked = this.files.get(key);
    if (!tracked) return;
    try {
      // Passing the previous index reads only what was appended since.
      tracked.index = await indexJsonl(tracked.uri.fsPath, trajectorySummarizer, tracked.index ?? undefined);
      tracked.failure = null;
      this.publishDiagnostics(tracked);
    } catch (err) {
      tracked.failure = (err as Error).message;
      this.log.error(`indexing ${tracked.uri.fsPath} failed: ${tracked.failure}`);
    }
  }

  private publishDiagnostics(tracked: TrackedFile): void {
    if (!tracked.index) return;
    const diagnostics = indexProblems(tracked.index).map((e) => {
      const range = new vscode.Range(e.line - 1, 0, e.line - 1, Number.MAX_SAFE_INTEGER);
      const d = new vscode.Diagnostic(
        range,
        e.fieldPath ? `${e.fieldPath}: ${e.message}` : e.message,
        vscode.DiagnosticSeverity.Error,
      );
      d.source = 'DRAG';
      d.code = 'trajectory-line';
      return d;
    });
    this.diagnostics.set(tracked.uri, diagnostics);
  }

  /** Reads one full trajectory record, validated. */
  async readTrajectory(tracked: TrackedFile, position: number): Promise<Trajectory> {
    const index = tracked.index;
    if (!index) throw new Error('file not indexed yet');
    const raw = await readLine(tracked.uri.fsPath, index.offsets[position], index.lengths[position]);
    return Trajectory.parse(raw);
  }

  dispose(): void {
    for (const t of this.pending.values()) clearTimeout(t);
    for (const w of this.watchers) w.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
