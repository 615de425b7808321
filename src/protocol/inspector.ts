import { z } from 'zod';
import { PageImage, PageRef } from './searchPanel';
import { type PanelSettings, shortcutAllowed } from './panel';

/**
 * Messages between the Trajectory Inspector webview and the host, parsed with zod on both sides.
 * Pages are (file name, page) pairs resolved by the host inside the corpus; no message names a
 * path or a command. All strings are untrusted text (model output, OCR, questions).
 */
export const InspectorResult = z.strictObject({
  file: z.string(),
  page: z.number().int(),
  rank: z.number().int(),
  isGt: z.boolean(),
  hasPdf: z.boolean(),
});

export const InspectorStep = z.strictObject({
  step: z.number().int(),
  turn: z.number().int().nullable(),
  action: z.string(),
  query: z.string().nullable(),
  reasoning: z.string().nullable(),
  gtRank: z.number().int().nullable(),
  rankScore: z.number().nullable(),
  results: z.array(InspectorResult),
  answer: z.array(z.string()).nullable(),
  error: z.string().nullable(),
});
export type InspectorStep = z.infer<typeof InspectorStep>;

export const InspectorCuration = z.strictObject({
  status: z.enum(['accepted', 'rejected']).nullable(),
  reason: z.string().nullable(),
  labelProblem: z.string().nullable(),
  pairs: z.array(z.strictObject({ chosen: z.string(), rejected: z.string() })),
  edits: z.array(z.strictObject({ query: z.string(), rank: z.number().int().nullable() })),
  marks: z.strictObject({
    chosen: z.number().int().nullable(),
    rejected: z.number().int().nullable(),
    chosenQuery: z.string().nullable(),
  }),
});
export type InspectorCuration = z.infer<typeof InspectorCuration>;

export const InspectorTrajectory = z.strictObject({
  id: z.string(),
  questionId: z.string(),
  question: z.string(),
  outcome: z.enum(['rank1', 'lower', 'never', 'errored']),
  answers: z.array(z.array(z.string())),
  locations: z.array(z.strictObject({ file: z.string(), page: z.number().int().nullable() })),
  steps: z.array(InspectorStep),
  finalAnswer: z.array(z.string()).nullable(),
  citations: z.array(z.strictObject({ file: z.string(), page: z.number().int().nullable() })),
  metrics: z.strictObject({ anls: z.number(), pageF1: z.number(), docF1: z.number() }),
  error: z.string().nullable(),
  model: z.string().nullable(),
  source: z.string(),
  topK: z.number().int(),
});
export type InspectorTrajectory = z.infer<typeof InspectorTrajectory>;

export const InspectorToHost = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ready') }),
  z.strictObject({ type: z.literal('thumbnail'), requestId: z.number().int(), page: PageRef }),
  z.strictObject({
    type: z.literal('openPage'),
    requestId: z.number().int(),
    page: PageRef,
    query: z.string().max(2000),
  }),
  z.strictObject({ type: z.literal('decide'), decision: z.enum(['accept', 'reject', 'undo', 'label-problem']) }),
  z.strictObject({ type: z.literal('mark'), step: z.number().int(), as: z.enum(['chosen', 'rejected']) }),
  z.strictObject({ type: z.literal('edit'), step: z.number().int() }),
  z.strictObject({ type: z.literal('pairs') }),
]);
export type InspectorToHost = z.infer<typeof InspectorToHost>;

export const HostToInspector = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('trajectory'), trajectory: InspectorTrajectory, curation: InspectorCuration }),
  z.strictObject({ type: z.literal('curation'), trajectoryId: z.string(), curation: InspectorCuration }),
  PageImage.extend({
    boxes: z.array(z.strictObject({ left: z.number(), top: z.number(), width: z.number(), height: z.number() })),
  }),
  z.strictObject({ type: z.literal('notice'), message: z.string(), level: z.enum(['info', 'warning', 'error']) }),
]);
export type HostToInspector = z.infer<typeof HostToInspector>;

/**
 * What the inspector can do, one row per action: the keys that run it, its toolbar button (if
 * it has one) and its line in the help overlay all come from this table.
 */
export interface InspectorAction {
  id:
    | 'next'
    | 'previous'
    | 'open'
    | 'accept'
    | 'reject'
    | 'label-problem'
    | 'undo'
    | 'chosen'
    | 'rejected'
    | 'edit'
    | 'pairs'
    | 'help'
    | 'close';
  /** `KeyboardEvent.key` values; the first is the one shown. */
  keys: string[];
  /** The toolbar button's text (the key is appended), or null for keys only. */
  button: string | null;
  /** The help overlay's words for it. */
  help: string;
  /** Help lines: actions of one group share a line. */
  group: 'navigate' | 'decide' | 'queries' | 'pairs' | 'overlay';
}

export const INSPECTOR_ACTIONS: readonly InspectorAction[] = [
  { id: 'next', keys: ['j', 'ArrowDown'], button: null, help: 'next step', group: 'navigate' },
  { id: 'previous', keys: ['k', 'ArrowUp'], button: null, help: 'previous step', group: 'navigate' },
  { id: 'open', keys: ['o'], button: null, help: 'open the page (query words highlighted)', group: 'navigate' },
  { id: 'accept', keys: ['a'], button: 'Accept', help: 'accept', group: 'decide' },
  { id: 'reject', keys: ['r'], button: 'Reject', help: 'reject with a reason', group: 'decide' },
  { id: 'label-problem', keys: ['l'], button: 'Label is wrong', help: 'the label is wrong', group: 'decide' },
  { id: 'undo', keys: ['u'], button: 'Undo', help: 'undo', group: 'decide' },
  { id: 'chosen', keys: ['c'], button: 'Chosen', help: "mark this step's query chosen", group: 'queries' },
  {
    id: 'rejected',
    keys: ['x'],
    button: 'Rejected',
    help: "mark this step's query rejected (both marked: the pair is saved)",
    group: 'queries',
  },
  { id: 'edit', keys: ['e'], button: 'Edit query', help: 'edit the query and verify it live', group: 'queries' },
  {
    id: 'pairs',
    keys: ['p'],
    button: 'All queries → pairs',
    help: 'the DPO Pair Editor: every query of this question, across runs and samples',
    group: 'pairs',
  },
  { id: 'close', keys: ['Escape'], button: null, help: 'closes', group: 'overlay' },
  { id: 'help', keys: ['?'], button: 'Keys', help: 'this help', group: 'overlay' },
];

/**
 * The keys of an action that work under these settings, the one to show first: with single-letter
 * shortcuts off, `a` no longer accepts, while arrows and Escape still move and close.
 */
export function actionKeys(action: InspectorAction, settings: PanelSettings): string[] {
  return action.keys.filter((key) => shortcutAllowed({ key }, settings));
}

/** The action a key press runs under these settings (none with Ctrl, Alt or Cmd held). */
export function inspectorActionFor(
  event: { key: string; ctrlKey?: boolean; metaKey?: boolean; altKey?: boolean },
  settings: PanelSettings,
): InspectorAction | undefined {
  if (event.ctrlKey || event.metaKey || event.altKey) return undefined;
  return INSPECTOR_ACTIONS.find((a) => actionKeys(a, settings).includes(event.key));
}
