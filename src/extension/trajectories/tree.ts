import * as vscode from 'vscode';
import { isGroundTruthPage, stepGroundTruthRank } from '../../core/trajectories/groundTruth';
import type { Iteration, SearchResult } from '../../core/schema/trajectory';
import { OUTCOME_LABELS, OUTCOMES, type Outcome, type TrajectorySummary } from '../../core/trajectories/summary';
import type { TrackedFile, TrajectoryStore } from './store';

/** Children shown per parent before a "Load more" node (GitLens' PagerNode habit). */
export const PAGE_SIZE = 200;

export type TrajectoryNode =
  | { kind: 'file'; fileKey: string }
  | { kind: 'group'; fileKey: string; outcome: Outcome }
  | { kind: 'trajectory'; fileKey: string; position: number }
  | { kind: 'step'; fileKey: string; position: number; step: number }
  | { kind: 'result'; fileKey: string; position: number; step: number; result: SearchResult; groundTruth: boolean }
  | { kind: 'loadMore'; parentKey: string; shown: number; total: number }
  | { kind: 'message'; text: string };

const OUTCOME_ICONS: Record<Outcome, vscode.ThemeIcon> = {
  rank1: new vscode.ThemeIcon('pass-filled', new vscode.ThemeColor('testing.iconPassed')),
  lower: new vscode.ThemeIcon('pass', new vscode.ThemeColor('charts.yellow')),
  never: new vscode.ThemeIcon('circle-slash', new vscode.ThemeColor('testing.iconFailed')),
  errored: new vscode.ThemeIcon('error', new vscode.ThemeColor('errorForeground')),
};

function nodeKey(node: TrajectoryNode): string {
  switch (node.kind) {
    case 'file':
      return node.fileKey;
    case 'group':
      return `${node.fileKey}#${node.outcome}`;
    case 'trajectory':
      return `${node.fileKey}@${node.position}`;
    case 'step':
      return `${node.fileKey}@${node.position}/${node.step}`;
    case 'result':
      return `${node.fileKey}@${node.position}/${node.step}/${node.result.rank}`;
    case 'loadMore':
      return `${node.parentKey}+more`;
    case 'message':
      return `message:${node.text}`;
  }
}

function truncate(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function matchesFilter(summary: TrajectorySummary, filter: string): boolean {
  if (!filter) return true;
  if (summary.question.toLowerCase().includes(filter)) return true;
  return summary.queries.some((q) => q.toLowerCase().includes(filter));
}

/** The Trajectories view: file -> outcome group -> trajectory -> step -> result page. */
export class TrajectoriesTreeProvider implements vscode.TreeDataProvider<TrajectoryNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<TrajectoryNode | undefined>();
  private readonly limits = new Map<string, number>();
  /** Steps of expanded trajectories, read on demand and dropped when the file changes. */
  private readonly stepCache = new Map<string, Iteration[]>();
  private filterText = '';
  private curationOf: (trajectoryId: string) => 'accepted' | 'rejected' | null = () => null;
  private readonly subscription: vscode.Disposable;
  /**
   * The trajectory rows handed to VS Code, one object per (file, position), so that a row can be
   * re-rendered on its own ({@link refreshTrajectories}): VS Code knows elements by identity.
   */
  private readonly trajectoryNodes = new Map<string, TrajectoryNode & { kind: 'trajectory' }>();

  readonly onDidChangeTreeData = this.changed.event;
  private readonly filterChanged = new vscode.EventEmitter<string>();
  readonly onDidChangeFilter = this.filterChanged.event;

  constructor(private readonly store: TrajectoryStore) {
    this.subscription = store.onDidChange(() => {
      this.stepCache.clear();
      this.trajectoryNodes.clear(); // positions may now be other trajectories
      this.changed.fire(undefined);
    });
  }

  /** How to read each trajectory's curation state (the decisions log), for icons and descriptions. */
  setCuration(lookup: (trajectoryId: string) => 'accepted' | 'rejected' | null): void {
    this.curationOf = lookup;
  }

  refresh(): void {
    this.changed.fire(undefined);
  }

  /**
   * Re-renders only the rows of these trajectories (their curation changed), not the whole tree: a
   * decision in this or another window leaves every other row, and a key press on it, alone.
   */
  refreshTrajectories(ids: ReadonlySet<string>): void {
    if (ids.size === 0) return;
    if (ids.size > 500) return this.refresh(); // a reload of the log: one refresh is cheaper
    for (const node of this.trajectoryNodes.values()) {
      const id = this.store.get(node.fileKey)?.index?.summaries[node.position]?.id;
      if (id !== undefined && ids.has(id)) this.changed.fire(node);
    }
  }

  private trajectoryNode(fileKey: string, position: number): TrajectoryNode {
    const key = `${fileKey}@${position}`;
    let node = this.trajectoryNodes.get(key);
    if (!node) this.trajectoryNodes.set(key, (node = { kind: 'trajectory', fileKey, position }));
    return node;
  }

  get filter(): string {
    return this.filterText;
  }

  setFilter(text: string): void {
    this.filterText = text.trim().toLowerCase();
    this.limits.clear();
    void vscode.commands.executeCommand('setContext', 'drag:trajectoriesFiltered', this.filterText.length > 0);
    this.filterChanged.fire(this.filterText);
    this.changed.fire(undefined);
  }

  loadMore(parentKey: string): void {
    this.limits.set(parentKey, (this.limits.get(parentKey) ?? PAGE_SIZE) + PAGE_SIZE);
    this.changed.fire(undefined);
  }

  /** Positions (in file order) of a file's trajectories with `outcome` that pass the filter. */
  positions(tracked: TrackedFile, outcome?: Outcome): number[] {
    const out: number[] = [];
    const summaries = tracked.index?.summaries ?? [];
    for (let i = 0; i < summaries.length; i++) {
      const s = summaries[i];
      if ((outcome === undefined || s.outcome === outcome) && matchesFilter(s, this.filterText)) out.push(i);
    }
    return out;
  }

  private page<T>(parentKey: string, items: T[], make: (item: T) => TrajectoryNode): TrajectoryNode[] {
    const limit = this.limits.get(parentKey) ?? PAGE_SIZE;
    const nodes = items.slice(0, limit).map(make);
    if (items.length > limit) nodes.push({ kind: 'loadMore', parentKey, shown: limit, total: items.length });
    return nodes;
  }

  async getChildren(node?: TrajectoryNode): Promise<TrajectoryNode[]> {
    if (!node) {
      await this.store.ready();
      const files = this.store.list();
      if (files.length === 0) return [];
      return files.map((f) => ({ kind: 'file', fileKey: f.uri.toString() }));
    }
    const tracked = 'fileKey' in node ? this.store.get(node.fileKey) : undefined;
    switch (node.kind) {
      case 'file': {
        if (!tracked) return [];
        if (tracked.failure) return [{ kind: 'message', text: `Could not read: ${tracked.failure}` }];
        const groups = OUTCOMES.filter((o) => this.positions(tracked, o).length > 0);
        if (groups.length === 0)
          return [
            { kind: 'message', text: this.filterText ? 'No trajectory matches the filter' : 'No valid trajectories' },
          ];
        return groups.map((outcome) => ({ kind: 'group', fileKey: node.fileKey, outcome }));
      }
      case 'group':
        if (!tracked) return [];
        return this.page(nodeKey(node), this.positions(tracked, node.outcome), (position) =>
          this.trajectoryNode(node.fileKey, position),
        );
      case 'trajectory': {
        if (!tracked) return [];
        const steps = await this.steps(tracked, node.position);
        return this.page(nodeKey(node), steps, (s) => ({
          kind: 'step',
          fileKey: node.fileKey,
          position: node.position,
          step: s.step,
        }));
      }
      case 'step': {
        if (!tracked) return [];
        const steps = await this.steps(tracked, node.position);
        const step = steps.find((s) => s.step === node.step);
        const gt = tracked.index?.summaries[node.position]?.groundTruth ?? [];
        return (step?.results ?? []).map((result) => ({
          kind: 'result',
          fileKey: node.fileKey,
          position: node.position,
          step: node.step,
          result,
          groundTruth: isGroundTruthPage(result, gt),
        }));
      }
      default:
        return [];
    }
  }

  async steps(tracked: TrackedFile, position: number): Promise<Iteration[]> {
    const key = `${tracked.uri.toString()}@${position}`;
    let steps = this.stepCache.get(key);
    if (!steps) {
      steps = (await this.store.readTrajectory(tracked, position)).iterations;
      this.stepCache.set(key, steps);
    }
    return steps;
  }

  getTreeItem(node: TrajectoryNode): vscode.TreeItem {
    const C = vscode.TreeItemCollapsibleState;
    const tracked = 'fileKey' in node ? this.store.get(node.fileKey) : undefined;
    switch (node.kind) {
      case 'file': {
        const uri = tracked?.uri ?? vscode.Uri.parse(node.fileKey);
        const item = new vscode.TreeItem(vscode.workspace.asRelativePath(uri), C.Expanded);
        const n = tracked?.index?.summaries.length ?? 0;
        const problems = tracked?.index ? tracked.index.errors.length + (tracked.index.tailError ? 1 : 0) : 0;
        const shown = tracked && this.filterText ? this.positions(tracked).length : n;
        const bad = problems ? ` · ${problems} bad line${problems === 1 ? '' : 's'}` : '';
        item.description = `${this.filterText ? `${shown} of ` : ''}${n} trajectories${bad}`;
        item.iconPath = problems
          ? new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'))
          : new vscode.ThemeIcon('file');
        item.resourceUri = uri;
        item.contextValue = 'drag.trajectoryFile';
        item.tooltip = uri.fsPath;
        item.id = nodeKey(node);
        return item;
      }
      case 'group': {
        const count = tracked ? this.positions(tracked, node.outcome).length : 0;
        const item = new vscode.TreeItem(OUTCOME_LABELS[node.outcome], C.Collapsed);
        item.description = String(count);
        item.iconPath = OUTCOME_ICONS[node.outcome];
        item.contextValue = `drag.outcomeGroup.${node.outcome}`;
        item.id = nodeKey(node);
        return item;
      }
      case 'trajectory': {
        const s = tracked?.index?.summaries[node.position];
        const item = new vscode.TreeItem(s ? truncate(s.question, 120) : '?', C.Collapsed);
        if (s) {
          const score =
            s.bestRankScore !== null
              ? `best ${s.bestRankScore.toFixed(2)}`
              : s.bestRank !== null
                ? `best rank ${s.bestRank}`
                : 'not found';
          const curated = this.curationOf(s.id);
          const mark = curated === 'accepted' ? '✓ accepted · ' : curated === 'rejected' ? '✗ rejected · ' : '';
          item.description = `${mark}${score} · ${s.steps} step${s.steps === 1 ? '' : 's'}`;
          const tip = new vscode.MarkdownString();
          tip.appendText(s.question);
          tip.appendMarkdown('\n\n---\n\n');
          const gt = s.groundTruth.map((l) => `${l.file} p.${l.page ?? '?'}`).join(', ') || 'none';
          tip.appendText(
            `Ground truth: ${gt}\nBest rank: ${s.bestRank ?? 'never found'} · ${s.searches} searches\n` +
              `Id: ${s.id}${s.model ? `\nModel: ${s.model}` : ''}${s.error ? `\nError: ${s.error}` : ''}`,
          );
          item.tooltip = tip;
          item.iconPath =
            curated === 'accepted'
              ? new vscode.ThemeIcon('verified-filled', new vscode.ThemeColor('testing.iconPassed'))
              : curated === 'rejected'
                ? new vscode.ThemeIcon('trash', new vscode.ThemeColor('testing.iconFailed'))
                : OUTCOME_ICONS[s.outcome];
          item.command = { command: 'drag.inspectTrajectory', title: 'Inspect Trajectory', arguments: [node] };
        }
        item.contextValue = 'drag.trajectory';
        if (s)
          item.accessibilityInformation = {
            label:
              `${s.question}, ${OUTCOME_LABELS[s.outcome]}` +
              `${this.curationOf(s.id) ? `, ${this.curationOf(s.id)}` : ''}`,
          };
        item.id = nodeKey(node);
        return item;
      }
      case 'step': {
        const cached = this.stepCache.get(`${node.fileKey}@${node.position}`);
        const step = cached?.find((s) => s.step === node.step);
        const gt = tracked?.index?.summaries[node.position]?.groundTruth ?? [];
        const hasResults = (step?.results?.length ?? 0) > 0;
        let label = `${node.step}. `;
        if (step?.action === 'answer') label += `answer: ${truncate((step.answer ?? []).join(', '), 80) || '(empty)'}`;
        else if (step?.query) label += truncate(step.query, 100);
        else label += step?.action ?? 'step';
        const item = new vscode.TreeItem(label, hasResults ? C.Collapsed : C.None);
        if (step && (step.action === 'search' || step.query)) {
          const rank = stepGroundTruthRank(step, gt);
          item.description =
            rank !== null
              ? `GT rank ${rank} · score ${typeof step.rank_score === 'number' ? step.rank_score.toFixed(2) : '?'}`
              : `GT not in top ${step.results?.length ?? 0}`;
          item.iconPath = new vscode.ThemeIcon(rank === 1 ? 'target' : rank !== null ? 'search' : 'search-stop');
        } else {
          item.iconPath = new vscode.ThemeIcon(step?.action === 'answer' ? 'comment-discussion' : 'comment');
        }
        if (step) {
          const tip = new vscode.MarkdownString();
          if (step.query) tip.appendText(`Query: ${step.query}\n\n`);
          if (step.reasoning) tip.appendText(truncate(step.reasoning, 600));
          item.tooltip = tip;
        }
        item.contextValue = 'drag.step';
        item.id = nodeKey(node);
        return item;
      }
      case 'result': {
        const r = node.result;
        const item = new vscode.TreeItem(`${r.file} p.${r.page_number}`, C.None);
        item.description = `rank ${r.rank}${node.groundTruth ? ' · ground truth' : ''}`;
        item.iconPath = node.groundTruth
          ? new vscode.ThemeIcon('check', new vscode.ThemeColor('testing.iconPassed'))
          : new vscode.ThemeIcon('file-pdf');
        item.contextValue = node.groundTruth ? 'drag.resultPage.groundTruth' : 'drag.resultPage';
        item.id = nodeKey(node);
        return item;
      }
      case 'loadMore': {
        const item = new vscode.TreeItem(`Load more… (${node.shown} of ${node.total} shown)`, C.None);
        item.iconPath = new vscode.ThemeIcon('unfold');
        item.command = { command: 'drag.loadMore', title: 'Load More', arguments: [node.parentKey] };
        item.contextValue = 'drag.loadMore';
        item.id = nodeKey(node);
        return item;
      }
      case 'message': {
        const item = new vscode.TreeItem(node.text, C.None);
        item.iconPath = new vscode.ThemeIcon('info');
        return item;
      }
    }
  }

  dispose(): void {
    this.subscription.dispose();
    this.changed.dispose();
    this.filterChanged.dispose();
  }
}
