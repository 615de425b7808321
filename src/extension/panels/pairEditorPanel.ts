import * as vscode from 'vscode';
import { pairWarnings, proposePairs } from '../../core/curation/guards';
import { goldVariants } from '../../core/eval/metrics';
import { answerLocations, stepGroundTruthRank } from '../../core/trajectories/groundTruth';
import type { Trajectory } from '../../core/schema/trajectory';
import { rankScore } from '../../core/trajectories/rankScore';
import { HostToPairs, type PairCandidate, PairsToHost } from '../../protocol/pairs';
import type { CurationStore } from '../curation/store';
import type { SearchService } from '../searchService';
import type { TrajectoryStore } from '../trajectories/store';
import { createPanel, PanelRegistry, type PanelSpec, WebviewPanelHost } from './host';

const SPEC: PanelSpec<PairsToHost, HostToPairs> = {
  viewType: 'drag.pairEditor',
  bundle: 'pairs',
  title: 'DPO Pair Editor',
  incoming: PairsToHost,
  outgoing: HostToPairs,
  notice: (message) => ({ type: 'notice', message, level: 'error' }),
};

interface PairEditorDeps {
  store: TrajectoryStore;
  curation: CurationStore;
  service: () => Promise<SearchService>;
  log: vscode.LogOutputChannel;
}

const MIN_MARGIN = 0.3;

/**
 * The DPO Pair Editor for one question: every query ever issued for it (all runs and samples),
 * sorted by rank score; pick chosen and rejected; try an edited query live before using it; the
 * guards ask before a weak pair is saved; proposed pairs (largest margins) confirm with one key.
 */
export class PairEditorPanel extends WebviewPanelHost<PairsToHost, HostToPairs> {
  static readonly open = new PanelRegistry<PairEditorPanel>();
  private payload: Extract<HostToPairs, { type: 'question' }> | null = null;
  private sample: Trajectory | null = null;

  static get current(): PairEditorPanel | undefined {
    return PairEditorPanel.open.get();
  }

  static async show(
    context: vscode.ExtensionContext,
    deps: PairEditorDeps,
    questionId: string,
  ): Promise<PairEditorPanel> {
    let p = PairEditorPanel.current;
    if (!p) {
      const panel = createPanel(SPEC, vscode.ViewColumn.Active);
      p = PairEditorPanel.open.set(new PairEditorPanel(panel, context, deps));
    } else p.panel.reveal();
    await p.load(questionId);
    return p;
  }

  private constructor(
    panel: vscode.WebviewPanel,
    context: vscode.ExtensionContext,
    private readonly deps: PairEditorDeps,
  ) {
    super(panel, context, SPEC, deps.log);
    this.disposables.push(deps.curation.onDidChange(() => void this.refreshPairs()));
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
    this.remember({ questionId });
    this.postState(this.payload);
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
    this.postState(this.payload);
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

  protected override onReady(): void {
    if (this.payload) this.post(this.payload);
  }

  protected async onMessage(msg: Exclude<PairsToHost, { type: 'ready' }>): Promise<void> {
    switch (msg.type) {
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
  }
}
