"""Sample weights (standard library only).

DRAG treated a rank score of 0 as missing, needed ``gt_rank`` for ``binary`` although most formats
lack it, and averaged weighted losses without dividing by the weights (docs/drag-compatibility.md).
Here:

  none        1
  rank-score  r                      (r = rank_score, else best_rank_score; 0 stays 0)
  rank-sq     r * r
  inv-effort  the effort score: effort_score_until_first_hit, else DRAG's cumulative_effort_score
              (both are already high for little effort), else r
  binary      1 when the ground truth was ranked first (gt_rank == 1 or r == 1), else 0
A record without the field a scheme needs gets weight 1 and is counted as missing. ``--min-weight``
(default 0) floors every weight; 0.1 reproduces DRAG's floor.

How a weight acts on the loss: weights are divided by their mean over the whole training set
(``normalise``), so on average a weighted run learns as strongly as an unweighted one, and a sample
of weight 0.2 moves the model a fifth as much as an average one, whatever else is in its
accumulation window (a window of low-score samples gets a small update, not a full one). The loss
of an optimizer step stays a per-token mean: sum over samples of w_i * (summed token losses of i),
divided by the number of learned tokens in the step (``window_loss``). With every weight 1 this is
exactly the unweighted loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SCHEMES = ("none", "rank-score", "rank-sq", "inv-effort", "binary")


def _number(meta: dict[str, Any], *keys: str) -> float | None:
    for k in keys:
        v = meta.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def sample_weight(scheme: str, meta: dict[str, Any], min_weight: float = 0.0) -> tuple[float, bool]:
    """(weight, missing): ``missing`` when the record lacked what the scheme needs (weight 1 then)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown weight scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    if scheme == "none":
        return 1.0, False
    r = _number(meta, "rank_score", "best_rank_score")
    if scheme == "rank-score":
        w = r
    elif scheme == "rank-sq":
        w = None if r is None else r * r
    elif scheme == "inv-effort":
        w = _number(meta, "effort_score_until_first_hit", "cumulative_effort_score")
        if w is None:
            w = r
    else:
        rank = meta.get("gt_rank")
        if isinstance(rank, int) and not isinstance(rank, bool):
            w = 1.0 if rank == 1 else 0.0
        else:
            w = None if r is None else (1.0 if r >= 1.0 else 0.0)
    if w is None:
        return max(1.0, min_weight), True
    return max(w, min_weight), False


def normalise(weights: Sequence[float]) -> list[float]:
    """Weights divided by their mean (so they average 1); all zeros stay zeros."""
    mean = sum(weights) / len(weights) if weights else 0.0
    if mean <= 0:
        return [0.0 for _ in weights]
    return [w / mean for w in weights]


def window_loss(sample_token_sums, weights, norm):
    """sum_i w_i * sample_token_sums[i] / norm; works on floats and on 0-d tensors alike.

    ``sample_token_sums`` are each sample's summed token losses, ``norm`` the learned tokens of the
    whole optimizer step (all micro-batches, all ranks, divided by the number of ranks because DDP
    averages the ranks' gradients).
    """
    total = 0.0
    for s, w in zip(sample_token_sums, weights):
        total = total + s * w
    return total / norm


def weighted_mean(losses: Sequence[float], weights: Sequence[float]) -> float:
    """sum(w * loss) / sum(w); 0 when every weight is 0 (the batch teaches nothing)."""
    if len(losses) != len(weights):
        raise ValueError("one weight per loss")
    total = sum(weights)
    if total <= 0:
        return 0.0
    return sum(w * l for w, l in zip(weights, losses)) / total
