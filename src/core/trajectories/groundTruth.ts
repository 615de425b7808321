/**
 * Where a question's answer is (its ground-truth pages, in every shape DRAG accepts) and where a search
 * ranked it. Plain code, no schema library: reading trajectories for the pipeline loads none.
 */

/** A normalised ground-truth location. `page` is null when it could not be read as an integer. */
export interface Location {
  file: string;
  page: number | null;
}

function toPage(value: unknown): number | null {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^\s*\d+\s*$/.test(value)) return Number.parseInt(value, 10);
  return null;
}

function toLocation(entry: unknown): Location | null {
  if (typeof entry === 'string') {
    // "{file}:{page}": the page is the last part, so file names containing ':' still work.
    const cut = entry.lastIndexOf(':');
    if (cut <= 0) return null;
    return { file: entry.slice(0, cut), page: toPage(entry.slice(cut + 1)) };
  }
  if (entry && typeof entry === 'object') {
    const obj = entry as Record<string, unknown>;
    const file = (typeof obj.document === 'string' && obj.document) || (typeof obj.file === 'string' && obj.file) || '';
    if (!file) return null;
    return { file, page: toPage(obj.page) };
  }
  return null;
}

/**
 * All answer locations, normalised (docs/drag-compatibility.md#input-data): every location counts (not only the
 * first), and a numeric-string page matches an integer page.
 */
export function answerLocations(value: unknown): Location[] {
  if (!value) return [];
  const list = Array.isArray(value) ? value : [value];
  const out: Location[] = [];
  for (const entry of list) {
    const loc = toLocation(entry);
    if (loc) out.push(loc);
  }
  return out;
}

/** Whether a search result is one of the ground-truth pages. */
export function isGroundTruthPage(
  result: { file: string; page_number: number },
  locations: readonly Location[],
): boolean {
  return locations.some((loc) => loc.file === result.file && loc.page === result.page_number);
}

/**
 * The step's ground-truth rank: as logged, or (when the collector logged nothing) recomputed from the
 * results against every ground-truth location.
 */
export function stepGroundTruthRank(
  step: {
    gt_found?: boolean | null;
    gt_rank?: number | null;
    results?: Array<{ file: string; page_number: number; rank: number }> | null;
  },
  groundTruth: readonly Location[],
): number | null {
  if (step.gt_found && typeof step.gt_rank === 'number') return step.gt_rank;
  if (step.gt_found === false || !step.results || groundTruth.length === 0) return null;
  const hit = step.results.find((r) => isGroundTruthPage(r, groundTruth));
  return hit ? hit.rank : null;
}
