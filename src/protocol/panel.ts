import { z } from 'zod';

/**
 * What every panel shares with its host, beside its own protocol: the settings the host delivers
 * once the webview is `ready` (and again when they change), and the small state a panel keeps so
 * that "Reload Window" can restore it. Parsed with zod on both sides; the shared webview base
 * (webview/shared/host.ts) handles these before a panel's own messages.
 */

/** The settings a webview honours (from `drag.*` configuration). */
export const PanelSettings = z.strictObject({
  /** `drag.keyboard.singleLetterShortcuts`: off, a key without a modifier runs nothing (WCAG 2.1.4). */
  singleLetterShortcuts: z.boolean(),
});
export type PanelSettings = z.infer<typeof PanelSettings>;

export const DEFAULT_PANEL_SETTINGS: PanelSettings = { singleLetterShortcuts: true };

/** A key that is a single character (letter, digit, punctuation): the shortcuts WCAG 2.1.4 is about. */
export function isSingleCharacterKey(key: string): boolean {
  return [...key].length === 1 && key !== ' ';
}

/** Whether a key press may run a shortcut under these settings (modifiers other than Shift make it no single key). */
export function shortcutAllowed(
  event: { key: string; ctrlKey?: boolean; metaKey?: boolean; altKey?: boolean },
  settings: PanelSettings,
): boolean {
  if (settings.singleLetterShortcuts || !isSingleCharacterKey(event.key)) return true;
  return !!(event.ctrlKey || event.metaKey || event.altKey);
}

/** A reference to an evaluation folder, relative to the workspace folder (never `..`, never absolute). */
const WorkspacePath = z
  .string()
  .min(1)
  .max(1000)
  .refine((p) => !/^([/\\]|[A-Za-z]:)/.test(p) && !p.split(/[/\\]/).includes('..'), {
    message: 'must be a path inside the workspace folder',
  });

/**
 * What each panel keeps to be restored, by view type: references only (ids, workspace-relative
 * folders, a query), never the data, which is read again from the files when the panel comes back.
 */
export const PANEL_RESTORE_STATES = {
  'drag.searchCorpus': z.strictObject({ query: z.string().max(2000) }),
  'drag.inspector': z.strictObject({
    trajectoryId: z.string().min(1).max(500),
    /** The trajectories file, as the workspace names it (`vscode.workspace.asRelativePath`). */
    source: z.string().min(1).max(2000),
  }),
  'drag.pairEditor': z.strictObject({ questionId: z.string().min(1).max(500) }),
  'drag.compare': z.strictObject({
    runs: z.tuple([
      z.strictObject({ target: WorkspacePath, label: z.string().max(500) }),
      z.strictObject({ target: WorkspacePath, label: z.string().max(500) }),
    ]),
  }),
  'drag.trainingMonitor': z.strictObject({ jobId: z.string().regex(/^[A-Za-z0-9][\w.-]{0,199}$/) }),
} as const;

export type RestorableViewType = keyof typeof PANEL_RESTORE_STATES;
export type PanelRestoreState<V extends RestorableViewType> = z.infer<(typeof PANEL_RESTORE_STATES)[V]>;

/** The panels' names, for messages. */
export const PANEL_NAMES: Record<RestorableViewType, string> = {
  'drag.searchCorpus': 'Search Corpus',
  'drag.inspector': 'Trajectory Inspector',
  'drag.pairEditor': 'DPO Pair Editor',
  'drag.compare': 'Compare Evaluations',
  'drag.trainingMonitor': 'Training Monitor',
};

/**
 * The key of the webview state (`vscode.setState`) that holds the restore state; panels keep their own
 * keys beside it.
 */
export const RESTORE_KEY = 'restore';

/**
 * The restore state of a panel, read from the whole webview state VS Code hands a serializer
 * (untrusted: an older version or a hand-edited profile may have written it). A bad state is a
 * sentence that says why the panel cannot be restored, never an exception.
 */
export function parseRestoreState<V extends RestorableViewType>(
  viewType: V,
  webviewState: unknown,
): { ok: true; state: PanelRestoreState<V> } | { ok: false; message: string } {
  const name = PANEL_NAMES[viewType];
  const raw =
    webviewState && typeof webviewState === 'object'
      ? (webviewState as Record<string, unknown>)[RESTORE_KEY]
      : undefined;
  if (raw === undefined || raw === null)
    return {
      ok: false,
      message:
        `Cannot restore the ${name} panel: ` +
        'it saved nothing to restore from (it had not finished loading). Open it again.',
    };
  const parsed = PANEL_RESTORE_STATES[viewType].safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length ? `${RESTORE_KEY}.${issue.path.join('.')}` : RESTORE_KEY;
    return {
      ok: false,
      message:
        `Cannot restore the ${name} panel: ` +
        `its saved state is not valid (${where}: ${issue.message}). Open it again.`,
    };
  }
  return { ok: true, state: parsed.data as PanelRestoreState<V> };
}

/** Host → webview messages every panel handles in its shared base, before its own protocol. */
export const HostToPanel = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('panel.settings'), settings: PanelSettings }),
  z.strictObject({ type: z.literal('panel.restoreState'), state: z.record(z.string(), z.unknown()) }),
]);
export type HostToPanel = z.infer<typeof HostToPanel>;
