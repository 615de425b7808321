import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { SearchService } from '../searchService';
import type { TrajectoryStore } from '../trajectories/store';
import type { CurationStore } from './store';

export interface FailedItem {
  fileKey: string;
  position: number;
  question: string;
  id: string;
  closest: number | null;
  query: string | null;
}

/**
 * Failed Searches: trajectories whose ground truth never reached the top-k, sorted by how close
 * they came (the best rank any of their queries gets within the top 100, checked live), so a
 * person can tell a bad query from a bad label.
 */
export class FailedSearchesProvider implements vscode.TreeDataProvider<FailedItem>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private cache = new Map<string, { closest: number | null; query: string | null }>();
  private readonly subs: vscode.Disposable[];

  constructor(
    private readonly store: TrajectoryStore,
    private readonly curation: CurationStore,
    private readonly service: () => Promise<SearchService>,
  ) {
    this.subs = [store.onDidChange(() => this.changed.fire()), curation.onDidChange(() => this.changed.fire())];
  }

  async getChildren(item?: FailedItem): Promise<FailedItem[]> {
    if (item) return [];
    await this.store.ready();
    await this.curation.ready();
    const items: FailedItem[] = [];
    let service: SearchService | null = null;
    try {
      service = await this.service();
    } catch {
      service = null;
    }
    for (const f of this.store.list()) {
      const summaries = f.index?.summaries ?? [];
      for (let i = 0; i < summaries.length; i++) {
        const s = summaries[i];
        if (s.outcome !== 'never' && s.outcome !== 'errored') continue;
        if (this.curation.current().byTrajectory.get(s.id)?.labelProblem) continue;
        const key = `${f.uri.toString()}@${i}`;
        let closeness = this.cache.get(key);
        if (!closeness && service && s.groundTruth.length) {
          closeness = { closest: null, query: null };
          for (const q of s.queries) {
            try {
              const r = await service.rankOf(
                q,
                s.groundTruth.filter((l) => l.page !== null).map((l) => ({ file: l.file, page: l.page! })),
                100,
              );
              if (r.rank !== null && (closeness.closest === null || r.rank < closeness.closest))
                closeness = { closest: r.rank, query: q };
            } catch {
              break; // no corpus: keep the list, unsorted
            }
          }
          this.cache.set(key, closeness);
        }
        items.push({
          fileKey: f.uri.toString(),
          position: i,
          question: s.question,
          id: s.id,
          closest: closeness?.closest ?? null,
          query: closeness?.query ?? null,
        });
      }
    }
    return items.sort((a, b) => (a.closest ?? 1e9) - (b.closest ?? 1e9) || a.id.localeCompare(b.id));
  }

  getTreeItem(item: FailedItem): vscode.TreeItem {
    const t = new vscode.TreeItem(
      item.question.replace(/\s+/g, ' ').slice(0, 120),
      vscode.TreeItemCollapsibleState.None,
    );
    t.description = item.closest !== null ? `closest: rank ${item.closest}` : 'not in the top 100';
    const tip = new vscode.MarkdownString();
    tip.appendText(
      `${item.question}\n\n${item.closest !== null ? `Best query "${item.query}" ranks the ground-truth page ${item.closest}.` : 'No query of this trajectory finds the ground-truth page in the top 100: check the label.'}`,
    );
    t.tooltip = tip;
    t.iconPath = new vscode.ThemeIcon(item.closest !== null ? 'search-fuzzy' : 'question');
    t.contextValue = 'drag.failedSearch';
    t.command = { command: 'drag.inspectFailedSearch', title: 'Inspect', arguments: [item] };
    t.id = `failed:${item.fileKey}@${item.position}`;
    return t;
  }

  refresh(): void {
    this.cache.clear();
    this.changed.fire();
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.changed.dispose();
  }
}

export interface DatasetItem {
  name: string;
  dir: string;
  counts: Record<string, { train: number; val: number }>;
  curated: boolean;
}

/** Datasets: every datasets/<name>/manifest.json of the workspace, with counts per format. */
export class DatasetsProvider implements vscode.TreeDataProvider<DatasetItem>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly watcher: vscode.FileSystemWatcher;

  constructor(private readonly workspace: string) {
    this.watcher = vscode.workspace.createFileSystemWatcher(
      new vscode.RelativePattern(workspace, 'datasets/*/manifest.json'),
    );
    this.watcher.onDidCreate(() => this.changed.fire());
    this.watcher.onDidChange(() => this.changed.fire());
    this.watcher.onDidDelete(() => this.changed.fire());
  }

  getChildren(item?: DatasetItem): DatasetItem[] {
    if (item) return [];
    const root = path.join(this.workspace, 'datasets');
    if (!existsSync(root)) return [];
    const out: DatasetItem[] = [];
    for (const name of readdirSync(root).sort()) {
      const manifest = path.join(root, name, 'manifest.json');
      if (!existsSync(manifest)) continue;
      try {
        const m = JSON.parse(readFileSync(manifest, 'utf8')) as {
          counts?: Record<string, { train: number; val: number }>;
          curated?: boolean;
        };
        out.push({ name, dir: path.join(root, name), counts: m.counts ?? {}, curated: !!m.curated });
      } catch {
        out.push({ name, dir: path.join(root, name), counts: {}, curated: false });
      }
    }
    return out;
  }

  getTreeItem(item: DatasetItem): vscode.TreeItem {
    const t = new vscode.TreeItem(item.name, vscode.TreeItemCollapsibleState.None);
    const count = (k: string) => (item.counts[k] ? item.counts[k].train + item.counts[k].val : 0);
    t.description = `SFT ${count('sft_query')} · DPO ${count('dpo')}${item.curated ? ' · curated' : ''}`;
    t.tooltip =
      Object.entries(item.counts)
        .map(([k, v]) => `${k}: ${v.train} train, ${v.val} val`)
        .join('\n') || 'no counts';
    t.iconPath = new vscode.ThemeIcon(item.curated ? 'verified' : 'database');
    t.resourceUri = vscode.Uri.file(item.dir);
    t.command = {
      command: 'revealInExplorer',
      title: 'Reveal',
      arguments: [vscode.Uri.file(path.join(item.dir, 'manifest.json'))],
    };
    t.contextValue = 'drag.dataset';
    return t;
  }

  refresh(): void {
    this.changed.fire();
  }

  dispose(): void {
    this.watcher.dispose();
    this.changed.dispose();
  }
}
