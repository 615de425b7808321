import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { TrajectorySummary } from '../../core/trajectories/summary';
import { RANKS_OF_MAX } from '../../protocol/serve';
import type { SearchService } from '../searchService';
import type { SupervisorState } from '../supervisor';
import type { TrajectoryStore } from '../trajectories/store';
import { PAGE_SIZE } from '../trajectories/tree';
import { WatchedTreeProvider } from '../watchedTree';
import type { CurationStore } from './store';

/** One failed trajectory in the Failed Searches view; `closest` is filled in once its ranks are known. */
export interface FailedItem {
  kind: 'failed';
  fileKey: string;
  position: number;
  question: string;
  id: string;
  /** Best rank of the ground-truth page over this trajectory's queries (top 100); null: none found or unknown. */
  closest: number | null;
  query: string | null;
  /** False until the search process answered for this trajectory (unavailable, no ground truth page). */
  checked: boolean;
}

/**
 * An entry that is not a trajectory: why ranks are missing, or "Load more". `question` is its label
 * and `closest` null, so code that lists the view's questions reads it as an unranked entry.
 */
export interface FailedNote {
  kind: 'unavailable' | 'loadMore';
  question: string;
  closest: null;
}

export type FailedNode = FailedItem | FailedNote;

/** Children shown before a "Load more" node, as in the Trajectories view. */
export const FAILED_PAGE_SIZE = PAGE_SIZE;
/** How deep a query's results are searched for the ground-truth page. */
const RANK_DEPTH = 100;
const LOAD_MORE_COMMAND = 'drag.loadMoreFailedSearches';

interface Candidate {
  fileKey: string;
  position: number;
  summary: TrajectorySummary;
}

/**
 * Failed Searches: trajectories whose ground truth never reached the top-k, in file order, paged.
 * How close each came (the best rank any of its queries gets within the top 100) is asked of
 * `drag serve` for the shown page only, in one `ranksOf` request, and cached by (corpus hash,
 * query, ground truth) across refreshes. A curation decision re-renders that one entry. When the
 * search process is unavailable the list still shows, under one entry saying why, with a
 * Build Corpus action.
 */
export class FailedSearchesProvider implements vscode.TreeDataProvider<FailedNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<FailedNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  /** Rank (or null) by corpus hash + query + ground truth; survives refreshes and restarts. */
  private readonly ranks = new Map<string, number | null>();
  /** Shown entries by key, so a decision can re-render exactly one (identity matters to the tree). */
  private readonly shown = new Map<string, { item: FailedItem; curation: string }>();
  private candidates: Candidate[] | null = null;
  private limit = FAILED_PAGE_SIZE;
  private view: vscode.TreeView<FailedNode> | null = null;
  private watched: SearchService | null = null;
  private unavailable: string | null = null;
  private readonly subs: vscode.Disposable[];

  constructor(
    private readonly store: TrajectoryStore,
    private readonly curation: CurationStore,
    private readonly service: () => Promise<SearchService>,
  ) {
    this.subs = [
      store.onDidChange(() => {
        this.candidates = null;
        this.shown.clear();
        this.changed.fire(undefined);
      }),
      curation.onDidChange(() => this.curationChanged()),
      vscode.commands.registerCommand(LOAD_MORE_COMMAND, () => this.loadMore()),
    ];
    // Hear the search process's state and notices even while the view is collapsed (no process is
    // started by this; after activation returns, since reading the config is I/O).
    setTimeout(() => void this.watchService(), 0);
  }

  /** Lets the view's message say why ranks are missing (call with the TreeView of this provider). */
  attachView(view: vscode.TreeView<FailedNode>): void {
    this.view = view;
    this.showMessage();
  }

  /**
   * Why ranks are missing, in the view's message, unless there is nothing to rank (then the view's
   * welcome says so).
   */
  private showMessage(): void {
    const nothingToRank = this.candidates?.length === 0;
    if (this.view)
      this.view.message = this.unavailable && !nothingToRank ? `Search unavailable: ${this.unavailable}` : undefined;
  }

  loadMore(): void {
    this.limit += FAILED_PAGE_SIZE;
    this.changed.fire(undefined);
  }

  async getChildren(node?: FailedNode): Promise<FailedNode[]> {
    if (node) return [];
    // The search process loads its index while the trajectories are scanned, not after.
    const starting = this.watchService().then(async (service) => {
      if (!service) return null;
      try {
        return { service, corpusHash: (await service.start()).corpusHash };
      } catch {
        return null; // unavailable: the state listener shows why
      }
    });
    await this.store.ready();
    await this.curation.ready();
    const all = (this.candidates ??= this.collect());
    const page = all.slice(0, this.limit);
    const started = await starting;
    const corpusHash = started?.corpusHash ?? null;
    if (started) await this.fetchRanks(started.service, started.corpusHash, page);
    const nodes: FailedNode[] = [];
    this.showMessage();
    if (all.length === 0) return nodes; // the view's welcome: no failed searches
    if (this.unavailable)
      nodes.push({ kind: 'unavailable', question: `Search unavailable: ${this.unavailable}`, closest: null });
    for (const c of page) nodes.push(this.itemFor(c, corpusHash));
    if (all.length > page.length)
      nodes.push({ kind: 'loadMore', question: `Load more… (${page.length} of ${all.length})`, closest: null });
    return nodes;
  }

  /** Failed (never found, errored) trajectories of every tracked file, in file order. */
  private collect(): Candidate[] {
    const out: Candidate[] = [];
    for (const f of this.store.list()) {
      const summaries = f.index?.summaries ?? [];
      const fileKey = f.uri.toString();
      for (let i = 0; i < summaries.length; i++) {
        const s = summaries[i];
        if (s.outcome === 'never' || s.outcome === 'errored') out.push({ fileKey, position: i, summary: s });
      }
    }
    return out;
  }

  private async watchService(): Promise<SearchService | null> {
    let service: SearchService;
    try {
      service = await this.service();
    } catch {
      return null; // no workspace folder or config: the list still shows, without ranks
    }
    if (this.watched !== service) {
      this.watched = service;
      this.subs.push(
        service.onState((s) => this.serviceState(s)),
        service.onNotice((message) => void vscode.window.showInformationMessage(`DRAG: ${message}`)),
      );
      this.serviceState(service.state);
    }
    return service;
  }

  private serviceState(s: SupervisorState): void {
    const before = this.unavailable;
    if (s.kind === 'unavailable') this.unavailable = s.reason;
    else if (s.kind === 'running') this.unavailable = null;
    else return; // starting / idle: keep what the person sees until it settles
    this.showMessage();
    // Shown once per change of reason, not per request; back to available re-ranks what is shown.
    if (before !== this.unavailable) this.changed.fire(undefined);
  }

  private groundTruthOf(s: TrajectorySummary): Array<{ file: string; page: number }> {
    const out: Array<{ file: string; page: number }> = [];
    for (const l of s.groundTruth) if (l.page !== null) out.push({ file: l.file, page: l.page });
    return out;
  }

  private rankKey(corpusHash: string, query: string, targets: Array<{ file: string; page: number }>): string {
    return `${corpusHash}\u0000${query}\u0000${targets.map((t) => `${t.file}#${t.page}`).join('|')}`;
  }

  /** Asks `drag serve` for the ranks the page needs and has not cached, in as few requests as fit. */
  private async fetchRanks(service: SearchService, corpusHash: string, page: Candidate[]): Promise<void> {
    const wanted = new Map<string, { query: string; targets: Array<{ file: string; page: number }> }>();
    for (const c of page) {
      const targets = this.groundTruthOf(c.summary);
      if (!targets.length) continue;
      for (const query of c.summary.queries) {
        const key = this.rankKey(corpusHash, query, targets);
        if (!this.ranks.has(key) && !wanted.has(key)) wanted.set(key, { query: query.slice(0, 2000), targets });
      }
    }
    const keys = [...wanted.keys()];
    for (let i = 0; i < keys.length; i += RANKS_OF_MAX) {
      const chunk = keys.slice(i, i + RANKS_OF_MAX);
      try {
        const { ranks } = await service.ranksOf(
          chunk.map((k) => wanted.get(k)!),
          RANK_DEPTH,
        );
        chunk.forEach((k, j) => this.ranks.set(k, ranks[j] ?? null));
      } catch {
        return; // the process died or is unavailable: what is known shows, the rest stays unchecked
      }
    }
  }

  private itemFor(c: Candidate, corpusHash: string | null): FailedItem {
    const key = `${c.fileKey}@${c.position}`;
    const targets = this.groundTruthOf(c.summary);
    let closest: number | null = null;
    let query: string | null = null;
    let checked = corpusHash !== null && targets.length > 0;
    if (checked) {
      for (const q of c.summary.queries) {
        const k = this.rankKey(corpusHash!, q, targets);
        if (!this.ranks.has(k)) {
          checked = false;
          continue;
        }
        const r = this.ranks.get(k)!;
        if (r !== null && (closest === null || r < closest)) {
          closest = r;
          query = q;
        }
      }
    }
    const curation = this.curationSignature(c.summary.id);
    const previous = this.shown.get(key);
    if (previous) {
      // Same object, updated: the tree re-renders the entry it already has.
      Object.assign(previous.item, { closest, query, checked });
      previous.curation = curation;
      return previous.item;
    }
    const s = c.summary;
    const item: FailedItem = {
      kind: 'failed',
      fileKey: c.fileKey,
      position: c.position,
      question: s.question,
      id: s.id,
      closest,
      query,
      checked,
    };
    this.shown.set(key, { item, curation });
    return item;
  }

  private curationSignature(id: string): string {
    const c = this.curation.current().byTrajectory.get(id);
    return c ? `${c.status ?? ''}|${c.labelProblem ?? ''}` : '';
  }

  /** A decision re-renders the entries whose curation changed, not the list. */
  private curationChanged(): void {
    for (const entry of this.shown.values()) {
      const now = this.curationSignature(entry.item.id);
      if (now === entry.curation) continue;
      entry.curation = now;
      this.changed.fire(entry.item);
    }
  }

  getTreeItem(node: FailedNode): vscode.TreeItem {
    if (node.kind !== 'failed') return this.noteItem(node);
    const item = node;
    const t = new vscode.TreeItem(
      item.question.replace(/\s+/g, ' ').slice(0, 120),
      vscode.TreeItemCollapsibleState.None,
    );
    const c = this.curation.current().byTrajectory.get(item.id);
    const closeness = !item.checked
      ? 'rank not checked'
      : item.closest !== null
        ? `closest: rank ${item.closest}`
        : `not in the top ${RANK_DEPTH}`;
    const curated = c?.labelProblem ? ` · label problem: ${c.labelProblem}` : c?.status ? ` · ${c.status}` : '';
    t.description = closeness + curated;
    const tip = new vscode.MarkdownString();
    tip.appendText(
      `${item.question}\n\n${
        !item.checked
          ? "The search process has not ranked this trajectory's queries (no corpus, or no ground-truth page)."
          : item.closest !== null
            ? `Best query "${item.query}" ranks the ground-truth page ${item.closest}.`
            : `No query of this trajectory finds the ground-truth page in the top ${RANK_DEPTH}: check the label.`
      }`,
    );
    t.tooltip = tip;
    t.iconPath = new vscode.ThemeIcon(c?.labelProblem ? 'tag' : item.closest !== null ? 'search-fuzzy' : 'question');
    t.contextValue = 'drag.failedSearch';
    t.command = { command: 'drag.inspectFailedSearch', title: 'Inspect', arguments: [item] };
    t.id = `failed:${item.fileKey}@${item.position}`;
    return t;
  }

  private noteItem(node: FailedNote): vscode.TreeItem {
    const t = new vscode.TreeItem(node.question, vscode.TreeItemCollapsibleState.None);
    t.id = `failed:${node.kind}`;
    if (node.kind === 'loadMore') {
      t.command = { command: LOAD_MORE_COMMAND, title: 'Load More' };
      t.iconPath = new vscode.ThemeIcon('ellipsis');
      t.contextValue = 'drag.loadMore';
      return t;
    }
    t.description = 'Build Corpus…';
    t.tooltip =
      `${node.question}\n\nHow close each failed search came shows once the search index can be opened. ` +
      'Click to build the corpus.';
    t.iconPath = new vscode.ThemeIcon('warning');
    t.command = { command: 'drag.buildCorpus', title: 'Build Corpus' };
    t.contextValue = 'drag.searchUnavailable';
    return t;
  }

  /** Re-reads what is shown (ranks stay cached); an unavailable search process is tried again now. */
  refresh(): void {
    if (this.watched && this.watched.state.kind === 'unavailable') this.watched.restart();
    this.changed.fire(undefined);
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
export class DatasetsProvider extends WatchedTreeProvider<DatasetItem> {
  constructor(workspace: string) {
    super(workspace, 'datasets/*/manifest.json');
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
}
