import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  type Comparison,
  comparisonCharts,
  comparisonHtml,
  comparisonMarkdown,
  compareRuns,
  type EvalRun,
  loadEvaluation,
  METRICS,
} from '../../core/eval/compare';
import { indexJsonl, readLine } from '../../core/io/jsonl';
import { Trajectory } from '../../core/schema/trajectory';
import { CompareToHost, HostToCompare } from '../../protocol/compare';
import { createPanel, PanelRegistry, type PanelSpec, WebviewPanelHost } from './host';

const SPEC: PanelSpec<CompareToHost, HostToCompare> = {
  viewType: 'drag.compare',
  bundle: 'compare',
  title: 'Compare Evaluations',
  incoming: CompareToHost,
  outgoing: HostToCompare,
  notice: (message) => ({ type: 'notice', message }),
};

/**
 * Evaluation Comparison: every metric with both values, deltas, the bootstrap interval and the
 * McNemar p, charts, and the per-question wins, losses and ties; a question opens both
 * trajectories side by side in the inspector. The numbers come from core compareRuns, the same
 * function as `drag compare --json`.
 */
export class ComparePanel extends WebviewPanelHost<CompareToHost, HostToCompare> {
  static readonly open = new PanelRegistry<ComparePanel>();
  private message: HostToCompare | null = null;
  comparison: Comparison | null = null;
  private runs: [EvalRun, EvalRun] | null = null;

  static get current(): ComparePanel | undefined {
    return ComparePanel.open.get();
  }

  static async show(
    context: vscode.ExtensionContext,
    log: vscode.LogOutputChannel,
    targets: [{ target: string; label: string }, { target: string; label: string }],
    openTrajectories: (a: Trajectory | null, b: Trajectory | null) => Promise<void>,
  ): Promise<ComparePanel> {
    let p = ComparePanel.current;
    if (!p) {
      const panel = createPanel(SPEC, vscode.ViewColumn.Active);
      p = ComparePanel.open.set(new ComparePanel(panel, context, log, openTrajectories));
    } else p.panel.reveal();
    await p.load(targets);
    return p;
  }

  private constructor(
    panel: vscode.WebviewPanel,
    context: vscode.ExtensionContext,
    log: vscode.LogOutputChannel,
    private readonly openTrajectories: (a: Trajectory | null, b: Trajectory | null) => Promise<void>,
  ) {
    super(panel, context, SPEC, log);
  }

  async load(targets: [{ target: string; label: string }, { target: string; label: string }]): Promise<void> {
    const a = await loadEvaluation(targets[0].target, targets[0].label);
    const b = await loadEvaluation(targets[1].target, targets[1].label);
    this.runs = [a, b];
    const c = compareRuns(a, b);
    this.comparison = c;
    const questionText = new Map<string, string>();
    for (const q of [...(a.records ?? []), ...(b.records ?? [])]) if (q.question) questionText.set(q.id, q.question);
    const topK = Number((a.summary.top_k as number | undefined) ?? 3);
    const ids = (list: string[]) => list.map((id) => ({ id, question: questionText.get(id) ?? id }));
    this.message = {
      type: 'comparison',
      runs: c.runs,
      paired: c.paired,
      metrics: METRICS.map((m) => ({
        key: m.key,
        label: m.label,
        higherIsBetter: m.higherIsBetter,
        ...c.metrics[m.key],
      })),
      questions: { wins: ids(c.questions.wins), losses: ids(c.questions.losses), ties: ids(c.questions.ties) },
      charts: comparisonCharts(a, b, topK),
    };
    this.panel.title = `Compare: ${c.runs[1]} vs ${c.runs[0]}`;
    this.rememberRuns(targets);
    this.postState(this.message);
  }

  /** Keeps the two folders to restore from, when both are inside the workspace folder. */
  private rememberRuns(targets: Array<{ target: string; label: string }>): void {
    const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    if (!root) return;
    const runs = targets.map((t) => ({ target: path.relative(root, path.resolve(root, t.target)), label: t.label }));
    if (runs.some((r) => !r.target || r.target.startsWith('..') || path.isAbsolute(r.target))) return;
    this.remember({ runs: [runs[0], runs[1]] });
  }

  /** The trajectory of a question in an evaluation folder (its trajectories.jsonl), if kept. */
  private async trajectoryOf(run: EvalRun, id: string): Promise<Trajectory | null> {
    const file = path.join(run.source, 'trajectories.jsonl');
    if (!existsSync(file)) return null;
    const index = await indexJsonl<string | null>(file, (v) => ({
      ok: true,
      summary: v.question_id != null ? String(v.question_id) : null,
    }));
    const i = index.summaries.lastIndexOf(id);
    return i < 0 ? null : Trajectory.parse(await readLine(file, index.offsets[i], index.lengths[i]));
  }

  async openQuestion(id: string): Promise<void> {
    if (!this.runs) return;
    const [a, b] = await Promise.all(this.runs.map((r) => this.trajectoryOf(r, id)));
    if (!a && !b) {
      this.post({
        type: 'notice',
        message: `No trajectories kept for ${id} (DRAG's evaluation files do not keep them).`,
      });
      return;
    }
    await this.openTrajectories(a, b);
  }

  async export(format: 'markdown' | 'html'): Promise<vscode.Uri | undefined> {
    if (!this.comparison || !this.runs) return undefined;
    const name = `${this.comparison.runs[1]}-vs-${this.comparison.runs[0]}`.replace(/[^\w.-]+/g, '_');
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const target = await vscode.window.showSaveDialog({
      defaultUri: folder
        ? vscode.Uri.joinPath(folder, 'evals', `${name}.${format === 'markdown' ? 'md' : 'html'}`)
        : undefined,
      filters: format === 'markdown' ? { Markdown: ['md'] } : { HTML: ['html'] },
    });
    if (!target) return undefined;
    const body =
      format === 'markdown'
        ? comparisonMarkdown(this.comparison)
        : comparisonHtml(this.comparison, comparisonCharts(this.runs[0], this.runs[1]));
    await writeFile(target.fsPath, body);
    this.post({ type: 'notice', message: `Exported ${vscode.workspace.asRelativePath(target)}.` });
    return target;
  }

  protected override onReady(): void {
    if (this.message) this.post(this.message);
  }

  protected async onMessage(msg: Exclude<CompareToHost, { type: 'ready' }>): Promise<void> {
    switch (msg.type) {
      case 'openQuestion':
        await this.openQuestion(msg.id);
        return;
      case 'export':
        await this.export(msg.format);
        return;
      default: {
        const never: never = msg;
        void never;
      }
    }
  }
}
