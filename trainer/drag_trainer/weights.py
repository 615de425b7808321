"""Sample weights (standard library only).

DRAG treated a rank score of 0 as missing, needed ``gt_rank`` for ``binary`` although most formats
lack it, and averaged weighted losses without dividing by the weights (DRAG-SPEC §9.20). Here:

  none        1
  rank-score  r                      (r = rank_score, else best_rank_score; 0 stays 0)
  rank-sq     r * r
  inv-effort  the effort score: effort_score_until_first_hit, else DRAG's cumulative_effort_score
              (both are already high for little effort), else r
  binary      1 when the ground truth was ranked first (gt_rank == 1 or r == 1), else 0
A record without the field a scheme needs gets weight 1 and is counted as missing. ``--min-weight``
(default 0) floors every weight; 0.1 reproduces DRAG's floor. The loss of a batch is
sum(w_i * loss_i) / sum(w_i).
"""

from __future__ import annotations

from typing import Any, Sequence

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


def weighted_mean(losses: Sequence[float], weights: Sequence[float]) -> float:
    """sum(w * loss) / sum(w); 0 when every weight is 0 (the batch teaches nothing)."""
    if len(losses) != len(weights):
        raise ValueError("one weight per loss")
    total = sum(weights)
    if total <= 0:
        return 0.0
    return sum(w * l for w, l in zip(weights, losses)) / total
