import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { pairWarnings } from '../../core/curation/guards';
import { answerAnls, citationScores, goldVariants } from '../../core/eval/metrics';
import { answerLocations, isGroundTruthPage, stepGroundTruthRank } from '../../core/trajectories/groundTruth';
import type { Trajectory } from '../../core/schema/trajectory';
import { summarizeTrajectory } from '../../core/trajectories/summary';
import {
  HostToInspector,
  type InspectorCuration,
  InspectorToHost,
  type InspectorTrajectory,
} from '../../protocol/inspector';
import type { CurationStore } from '../curation/store';
import type { SearchService } from '../searchService';
import { createPanel, PanelRegistry, type PanelSpec, WebviewPanelHost } from './host';

const THUMB_PIXELS = 160_000;
const LARGE_PIXELS = 1_500_000;
const SPEC: PanelSpec<InspectorToHost, HostToInspector> = {
  viewType: 'drag.inspector',
  bundle: 'inspector',
  title: 'Trajectory Inspector',
  incoming: InspectorToHost,
  outgoing: HostToInspector,
  notice: (message) => ({ type: 'notice', message, level: 'error' }),
};

/** Why a trajectory is rejected: the reasons offered first. */
export const REJECT_REASONS = [
  'wrong ground-truth label',
  'lucky hit (query does not justify the page)',
  'answer not supported by the cited page',
  'query leaks the answer',
  'duplicate of another trajectory',
];

/** What is wrong with a question's label: the reasons offered first. */
export const LABEL_PROBLEM_REASONS = ['wrong page', 'wrong document', 'answer not on the page'];

/**
 * Asks why a trajectory is rejected or its label is wrong: one of the reasons above or, with
 * `other`, a reason the person types. Undefined when they cancel.
 */
export async function askReason(decision: 'reject' | 'label-problem', other = true): Promise<string | undefined> {
  const reasons = decision === 'reject' ? REJECT_REASONS : LABEL_PROBLEM_REASONS;
  const pick = await vscode.window.showQuickPick(other ? [...reasons, 'Other…'] : reasons, {
    title: decision === 'reject' ? 'Reject: why?' : 'What is wrong with the label?',
  });
  return pick === 'Other…' ? vscode.window.showInputBox({ title: 'Reason' }) : pick;
}

interface InspectorDeps {
  service: () => Promise<SearchService>;
  curation: CurationStore;
  log: vscode.LogOutputChannel;
}

/**
 * The Trajectory Inspector: one panel, reused (or opened to the side), showing what the model saw
 * and did; the keyboard drives curation, written to the decisions log through the CurationStore.
 */
export class InspectorPanel extends WebviewPanelHost<InspectorToHost, HostToInspector> {
  /** The reused panel; panels opened to the side are not kept here. */
  static readonly open = new PanelRegistry<InspectorPanel>();
  private trajectory: Trajectory | null = null;
  private view: InspectorTrajectory | null = null;
  /** Steps marked with c/x; an edited, verified query can stand as the chosen side. */
  private marks: {
    chosen: number | null;
    rejected: number | null;
    chosenEdit: { query: string; rank: number | null } | null;
  } = { chosen: null, rejected: null, chosenEdit: null };

  static get current(): InspectorPanel | undefined {
    return InspectorPanel.open.get();
  }

  static show(
    context: vscode.ExtensionContext,
    deps: InspectorDeps,
    trajectory: Trajectory,
    source: string,
    toSide = false,
  ): InspectorPanel {
    let panel = InspectorPanel.current;
    if (!panel || toSide) {
      // Keep the focus where the person is (the tree, usually): selecting is a preview; a click in the panel
      // focuses it.
      const column = { viewColumn: toSide ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active, preserveFocus: true };
      const webviewPanel = createPanel(SPEC, column);
      panel = new InspectorPanel(webviewPanel, context, deps);
      if (!toSide) InspectorPanel.open.set(panel);
    } else {
      panel.panel.reveal(undefined, true);
    }
    panel.load(trajectory, source);
    return panel;
  }

  /** Media, and the page images rendered into the corpus cache. */
  private static roots(context: vscode.ExtensionContext, deps: InspectorDeps): vscode.Uri[] {
    return [
      vscode.Uri.joinPath(context.extensionUri, 'media'),
      vscode.Uri.file(path.join(deps.curation.workspace, 'corpus', '.cache', 'pages')),
    ];
  }

  private constructor(
    panel: vscode.WebviewPanel,
    context: vscode.ExtensionContext,
    private readonly deps: InspectorDeps,
  ) {
    super(panel, context, SPEC, deps.log, InspectorPanel.roots(context, deps));
    this.disposables.push(
      deps.curation.onDidChange(() => this.sendCuration()),
      panel.onDidChangeViewState(
        (e) => void vscode.commands.executeCommand('setContext', 'drag:inspectorFocused', e.webviewPanel.active),
      ),
    );
  }

  /** The trajectory shown now (for tests and commands). */
  get shown(): InspectorTrajectory | null {
    return this.view;
  }

  load(t: Trajectory, source: string): void {
    this.trajectory = t;
    this.marks = { chosen: null, rejected: null, chosenEdit: null };
    this.panel.title = `Inspect: ${t.question.replace(/\s+/g, ' ').slice(0, 40)}`;
    this.view = this.toView(t, source);
    this.remember({ trajectoryId: t.id, source });
    this.postState({ type: 'trajectory', trajectory: this.view, curation: this.curation() });
  }

  private toView(t: Trajectory, source: string): InspectorTrajectory {
    const gt = answerLocations(t.ground_truth?.answer_locations);
    const summary = summarizeTrajectory(t);
    const pdfDir = path.join(this.deps.curation.workspace, 'corpus', 'pdfs');
    const topK = Math.max(3, ...t.iterations.map((i) => i.results?.length ?? 0));
    const cites = citationScores(t.ground_truth?.answer_locations, t.final_citations ?? []);
    return {
      id: t.id,
      questionId: String(t.question_id ?? t.id),
      question: t.question,
      outcome: summary.outcome,
      answers: goldVariants(t.ground_truth?.answers),
      locations: gt,
      steps: t.iterations.map((it) => ({
        step: it.step,
        turn: typeof it.turn === 'number' ? it.turn : null,
        action: it.action ?? 'unknown',
        query: it.query ?? null,
        reasoning: it.reasoning ?? null,
        gtRank: stepGroundTruthRank(it, gt),
        rankScore: typeof it.rank_score === 'number' ? it.rank_score : null,
        results: (it.results ?? []).map((r) => ({
          file: r.file,
          page: r.page_number,
          rank: r.rank,
          isGt: isGroundTruthPage(r, gt),
          hasPdf: existsSync(path.join(pdfDir, path.basename(r.file))),
        })),
        answer: it.answer ?? null,
        error: typeof it.error === 'string' ? it.error : null,
      })),
      finalAnswer: t.final_answer ?? null,
      citations: answerLocations(
        (t.final_citations ?? []).map((c) => ({ document: c.file ?? c.document, page: c.page })),
      ),
      metrics: {
        anls: answerAnls(t.ground_truth?.answers, t.final_answer ?? []),
        pageF1: cites.page.f1,
        docF1: cites.doc.f1,
      },
      error: t.error ?? null,
      model: t.model ?? null,
      source,
      topK,
    };
  }

  private curation(): InspectorCuration {
    const c = this.trajectory ? this.deps.curation.current().byTrajectory.get(this.trajectory.id) : undefined;
    return {
      status: c?.status ?? null,
      reason: c?.reason ?? null,
      labelProblem: c?.labelProblem ?? null,
      pairs: (c?.pairs ?? []).map((p) => ({ chosen: p.chosen?.query ?? '', rejected: p.rejected?.query ?? '' })),
      edits: (c?.edits ?? []).map((e) => ({ query: e.query ?? '', rank: e.verified_rank ?? null })),
      marks: {
        chosen: this.marks.chosen,
        rejected: this.marks.rejected,
        chosenQuery: this.marks.chosenEdit?.query ?? null,
      },
    };
  }

  private sendCuration(): void {
    if (this.trajectory)
      this.postState({ type: 'curation', trajectoryId: this.trajectory.id, curation: this.curation() });
  }

  private tell(message: string, level: 'info' | 'warning' = 'info'): void {
    this.post({ type: 'notice', message, level });
  }

  private base() {
    const t = this.trajectory!;
    return { trajectory_id: t.id, question_id: String(t.question_id ?? t.id) };
  }

  /** Accept / reject (with a reason) / undo / label problem, from a key or a command. */
  async decide(decision: 'accept' | 'reject' | 'undo' | 'label-problem', reason?: string): Promise<void> {
    if (!this.trajectory) return;
    if ((decision === 'reject' || decision === 'label-problem') && reason === undefined) {
      reason = await askReason(decision);
      if (reason === undefined) return;
    }
    await this.deps.curation.decide({ ...this.base(), decision, reason: reason ?? null });
    this.tell(
      decision === 'undo'
        ? 'Undone.'
        : decision === 'accept'
          ? 'Accepted.'
          : decision === 'reject'
            ? `Rejected: ${reason}`
            : `Label marked: ${reason}`,
    );
  }

  /** Marks a step's query as chosen or rejected; with both sides marked, saves the pair (after the guards). */
  async mark(step: number, as: 'chosen' | 'rejected', confirm = true): Promise<void> {
    if (!this.view) return;
    this.marks =
      as === 'chosen' ? { ...this.marks, chosen: step, chosenEdit: null } : { ...this.marks, rejected: step };
    this.sendCuration();
    await this.savePairIfComplete(confirm);
  }

  private async savePairIfComplete(confirm: boolean): Promise<void> {
    if (!this.view) return;
    const { chosen, rejected, chosenEdit } = this.marks;
    if ((chosen === null && !chosenEdit) || rejected === null) return;
    const c = chosenEdit
      ? { query: chosenEdit.query, gtRank: chosenEdit.rank, step: chosen }
      : this.view.steps.find((s) => s.step === chosen);
    const r = this.view.steps.find((s) => s.step === rejected);
    if (!c?.query || !r?.query) {
      this.tell('Both sides of a pair need a query.', 'warning');
      return;
    }
    const warnings = pairWarnings(
      { query: c.query, rank: c.gtRank },
      { query: r.query, rank: r.gtRank },
      {
        topK: this.view.topK,
        minMargin: 0.3,
        answers: this.view.answers.flat(),
        gtFiles: this.view.locations.map((l) => l.file),
      },
    );
    if (warnings.length && confirm) {
      const go = await vscode.window.showWarningMessage(
        `Save this pair anyway? ${warnings.map((w) => w.message).join('; ')}.`,
        { modal: true },
        'Save Pair',
      );
      if (go !== 'Save Pair') {
        this.marks = { chosen: null, rejected: null, chosenEdit: null };
        this.sendCuration();
        return;
      }
    }
    await this.deps.curation.decide({
      ...this.base(),
      decision: 'pair',
      chosen: { query: c.query, trajectory_id: this.view.id, step: c.step ?? null, rank: c.gtRank },
      rejected: { query: r.query, trajectory_id: this.view.id, step: r.step, rank: r.gtRank },
    });
    this.marks = { chosen: null, rejected: null, chosenEdit: null };
    this.tell(`Pair saved: "${c.query}" over "${r.query}".`);
    this.sendCuration();
  }

  /** Edit a step's query, verify it live against the index, and save it as a better query. */
  async edit(step: number, query?: string): Promise<{ rank: number | null } | undefined> {
    if (!this.view) return undefined;
    const original = this.view.steps.find((s) => s.step === step)?.query ?? '';
    const text =
      query ??
      (await vscode.window.showInputBox({
        title: 'Edit the query (verified live before saving)',
        value: original,
        valueSelection: [0, original.length],
        ignoreFocusOut: true,
      }));
    if (!text) return undefined;
    const targets = this.view.locations.filter((l) => l.page !== null).map((l) => ({ file: l.file, page: l.page! }));
    const service = await this.deps.service();
    const { rank } = await service.rankOf(text, targets, this.view.topK);
    const verdict =
      rank === null
        ? `does not find the ground-truth page in the top ${this.view.topK}`
        : `finds the ground-truth page at rank ${rank}`;
    if (query === undefined) {
      const save = await vscode.window.showInformationMessage(`"${text}" ${verdict}.`, { modal: true }, 'Save Query');
      if (save !== 'Save Query') return { rank };
    }
    await this.deps.curation.decide({ ...this.base(), decision: 'edit', step, query: text, verified_rank: rank });
    // The edited query is now the chosen side: mark a step with x to pair it against that step's query.
    this.marks = { ...this.marks, chosen: step, chosenEdit: { query: text, rank } };
    this.tell(`Saved edited query: "${text}" (${verdict}). Press x on a step to pair it against that query.`);
    this.sendCuration();
    await this.savePairIfComplete(query === undefined);
    return { rank };
  }

  protected override async onReady(): Promise<void> {
    await this.deps.curation.ready();
    if (this.view) this.post({ type: 'trajectory', trajectory: this.view, curation: this.curation() });
  }

  protected async onMessage(msg: Exclude<InspectorToHost, { type: 'ready' }>): Promise<void> {
    switch (msg.type) {
      case 'thumbnail':
      case 'openPage': {
        const service = await this.deps.service();
        const large = msg.type === 'openPage';
        const img = await service.render(msg.page.file, msg.page.page, large ? LARGE_PIXELS : THUMB_PIXELS);
        const boxes =
          large && msg.query
            ? (await service.boxes(msg.page.file, msg.page.page, msg.query)).boxes.map(
                ({ left, top, width, height }) => ({ left, top, width, height }),
              )
            : [];
        this.post({
          type: 'image',
          requestId: msg.requestId,
          page: msg.page,
          uri: this.panel.webview.asWebviewUri(vscode.Uri.file(img.path)).toString(),
          width: img.width,
          height: img.height,
          large,
          boxes,
        });
        return;
      }
      case 'decide':
        await this.decide(msg.decision);
        return;
      case 'mark':
        await this.mark(msg.step, msg.as);
        return;
      case 'edit':
        await this.edit(msg.step);
        return;
      case 'pairs':
        if (this.view) await vscode.commands.executeCommand('drag.editPairs', this.view.questionId);
        return;
      default: {
        const never: never = msg;
        void never;
      }
    }
  }
}
