/**
 * DRAG's reward for one search (docs/drag-compatibility.md#the-rank-score): where the ground-truth page ranked among
 * the top k, normalised: `(top_k - rank + 1) / top_k` (k = 3: 1, 2/3, 1/3). The one place it is computed.
 */
export function rankScore(rank: number, topK: number): number {
  return (topK - rank + 1) / topK;
}
