import * as vscode from 'vscode';
import { pairWarnings, proposePairs } from '../../core/curation/guards';
import { goldVariants } from '../../core/eval/metrics';
import { answerLocations } from '../../core/schema/question';
import type { Trajectory } from '../../core/schema/trajectory';
import { rankScore } from '../../core/trajectories/rankScore';
import { stepGroundTruthRank } from '../../core/trajectories/summary';
import { HostToPairs, type PairCandidate, PairsToHost } from '../../protocol/pairs';
import type { CurationStore } from '../curation/store';
import type { SearchService } from '../searchService';
import type { TrajectoryStore } from '../trajectories/store';
import { webviewHtml } from './webviewHtml';

const MIN_MARGIN = 0.3;

/**
 * The DPO Pair Editor for one question: every query ever issued for it (all runs and samples),
 * sorted by rank score; pick chosen and rejected; try an edited query live before using it; the
 * guards ask before a weak pair is saved; proposed pairs (largest margins) confirm with one key.
 */
export class PairEditorPanel implements vscode.Disposable {
  static current: PairEditorPanel | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private ready = false;
  private payload: Extract<HostToPairs, { type: 'question' }> | null = null;
  private sample: Trajectory | null = null;

  static async show(
    context: vscode.ExtensionContext,
    deps: {
      store: TrajectoryStore;
      curation: CurationStore;
      service: () => Promise<SearchService>;
      log: vscode.LogOutputChannel;
    },
    questionId: string,
  ): Promise<PairEditorPanel> {
    let p = PairEditorPanel.current;
    if (!p) {
      const panel = vscode.window.createWebviewPanel('drag.pairEditor', 'DPO Pair Editor', vscode.ViewColumn.Active, {
        enableScripts: true,
        localResourceRoots: [
          vscode.Uri.joinPath(context.extensionUri, 'dist', 'webview'),
          vscode.Uri.joinPath(context.extensionUri, 'node_modules', '@vscode', 'codicons', 'dist'),
        ],
      });
      p = new PairEditorPanel(panel, context, deps);
      PairEditorPanel.current = p;
    } else p.panel.reveal();
    await p.load(questionId);
    return p;
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    context: vscode.ExtensionContext,
    private readonly deps: {
      store: TrajectoryStore;
      curation: CurationStore;
      service: () => Promise<SearchService>;
      log: vscode.LogOutputChannel;
    },
  ) {
    panel.iconPath = vscode.Uri.joinPath(context.extensionUri, 'media', 'drag.svg');
    panel.webview.html = webviewHtml(panel.webview, context.extensionUri, 'pairs', 'DPO Pair Editor');
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((m) => void this.receive(m)),
      deps.curation.onDidChange(() => void this.refreshPairs()),
    );
  }

  get shown() {
    return this.payload;
  }

  /** Gathers every query of the question across all runs and samples. */
  async load(questionId: string): Promise<void> {
    await this.deps.store.ready();
    await this.deps.curation.ready();
    const candidates: PairCandidate[] = [];
    let topK = 3;
    for (const f of this.deps.store.list()) {
      const summaries = f.index?.summaries ?? [];
      for (let i = 0; i < summaries.length; i++) {
        if ((summaries[i].questionId ?? summaries[i].id) !== questionId) continue;
        const t = await this.deps.store.readTrajectory(f, i);
        this.sample ??= t;
        const gt = answerLocations(t.ground_truth?.answer_locations);
        for (const it of t.iterations) {
          topK = Math.max(topK, it.results?.length ?? 0);
          if (it.action !== 'search' || !it.query) continue;
          const rank = stepGroundTruthRank(it, gt);
          candidates.push({
            query: it.query,
            rank,
            rankScore: 0,
            trajectoryId: t.id,
            step: it.step,
            source: vscode.workspace.asRelativePath(f.uri),
          });
        }
      }
    }
    for (const c of candidates) c.rankScore = c.rank === null ? 0 : rankScore(c.rank, topK);
    candidates.sort((a, b) => b.rankScore - a.rankScore || a.query.localeCompare(b.query));
    const proposals = proposePairs(candidates, topK, 3).map((p) => ({
      chosen: candidates.indexOf(p.chosen),
      rejected: candidates.indexOf(p.rejected),
      margin: p.margin,
    }));
    const t = this.sample;
    this.payload = {
      type: 'question',
      questionId,
      question: t?.question ?? questionId,
      topK,
      groundTruth: answerLocations(t?.ground_truth?.answer_locations),
      candidates,
      proposals,
      pairs: this.pairs(questionId),
    };
    this.panel.title = `Pairs: ${this.payload.question.replace(/\s+/g, ' ').slice(0, 40)}`;
    if (this.ready) this.post(this.payload);
  }

  private pairs(questionId: string) {
    return (this.deps.curation.current().pairsByQuestion.get(questionId) ?? []).map((p) => ({
      chosen: p.chosen?.query ?? '',
      rejected: p.rejected?.query ?? '',
      user: p.user,
    }));
  }

  private async refreshPairs(): Promise<void> {
    if (!this.payload) return;
    this.payload = { ...this.payload, pairs: this.pairs(this.payload.questionId) };
    if (this.ready) this.post(this.payload);
  }

  private post(m: HostToPairs): void {
    void this.panel.webview.postMessage(HostToPairs.parse(m));
  }

  /** Runs a query live against the index: where does the ground-truth page rank? */
  async tryQuery(query: string): Promise<PairCandidate> {
    const p = this.payload!;
    const targets = p.groundTruth.filter((l) => l.page !== null).map((l) => ({ file: l.file, page: l.page! }));
    const { rank } = await (await this.deps.service()).rankOf(query, targets, p.topK);
    return {
      query,
      rank,
      rankScore: rank === null ? 0 : rankScore(rank, p.topK),
      trajectoryId: null,
      step: null,
      source: 'tried live',
    };
  }

  /** Saves a pair after the guards (a modal asks when they warn, unless `confirm` is false). */
  async save(chosen: PairCandidate, rejected: PairCandidate, confirm = true): Promise<boolean> {
    const p = this.payload!;
    const warnings = pairWarnings(
      { query: chosen.query, rank: chosen.rank },
      { query: rejected.query, rank: rejected.rank },
      {
        topK: p.topK,
        minMargin: MIN_MARGIN,
        answers: goldVariants(this.sample?.ground_truth?.answers).flat(),
        gtFiles: p.groundTruth.map((l) => l.file),
      },
    );
    if (warnings.length && confirm) {
      const go = await vscode.window.showWarningMessage(
        `Save this pair anyway? ${warnings.map((w) => w.message).join('; ')}.`,
        { modal: true },
        'Save Pair',
      );
      if (go !== 'Save Pair') return false;
    }
    await this.deps.curation.decide({
      trajectory_id: chosen.trajectoryId ?? rejected.trajectoryId ?? this.sample?.id ?? p.questionId,
      question_id: p.questionId,
      decision: 'pair',
      chosen: { query: chosen.query, trajectory_id: chosen.trajectoryId, step: chosen.step, rank: chosen.rank },
      rejected: {
        query: rejected.query,
        trajectory_id: rejected.trajectoryId,
        step: rejected.step,
        rank: rejected.rank,
      },
    });
    this.post({ type: 'notice', message: `Pair saved: "${chosen.query}" over "${rejected.query}".`, level: 'info' });
    return true;
  }

  private async receive(raw: unknown): Promise<void> {
    const parsed = PairsToHost.safeParse(raw);
    if (!parsed.success) {
      this.deps.log.warn(`pair editor: rejected message ${JSON.stringify(raw).slice(0, 200)}`);
      return;
    }
    const msg = parsed.data;
    try {
      switch (msg.type) {
        case 'ready':
          this.ready = true;
          if (this.payload) this.post(this.payload);
          return;
        case 'try':
          this.post({ type: 'tried', requestId: msg.requestId, candidate: await this.tryQuery(msg.query) });
          return;
        case 'save':
          await this.save(msg.chosen, msg.rejected);
          return;
        default: {
          const never: never = msg;
          void never;
        }
      }
    } catch (err) {
      this.post({ type: 'notice', message: (err as Error).message, level: 'error' });
    }
  }

  dispose(): void {
    if (PairEditorPanel.current === this) PairEditorPanel.current = undefined;
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }
}
