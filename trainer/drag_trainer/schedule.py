"""What each rank does when (standard library only): sharding, accumulation, learning rate, loss norms.

Multi-GPU training hangs when one rank waits in a collective that another rank never enters. So
every decision that involves collectives is made here, from data every rank has (the batch order is
a function of the seed and the epoch), and every rank makes the same one:

* each rank gets the same number of micro-batches per epoch: the batches of an epoch are dealt out
  round-robin and the tail that does not fill a round (fewer batches than ranks) is dropped for
  that epoch; the order is reshuffled every epoch, so a different tail is dropped each time;
* an optimizer step is ``grad_accum`` micro-batches (the last step of an epoch may have fewer, the
  same number on every rank); gradients are synchronised on the last micro-batch of a step only;
* the loss of a step is divided by the learned tokens (SFT) or pairs (DPO) of the whole step across
  all ranks, so every token counts the same whichever rank and micro-batch it landed in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .masks import IGNORE_INDEX


def cosine(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then cosine to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def shard(batches: Sequence[list[int]], rank: int, world: int) -> list[list[int]]:
    """This rank's micro-batches: round-robin, the incomplete last round dropped (same count on every rank)."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} outside a world of {world}")
    usable = len(batches) - len(batches) % world
    return [list(b) for b in batches[rank:usable:world]]


def all_shards(batches: Sequence[list[int]], world: int) -> list[list[list[int]]]:
    return [shard(batches, r, world) for r in range(world)]


def steps_in_epoch(n_batches: int, world: int, grad_accum: int) -> int:
    per_rank = n_batches // world
    return math.ceil(per_rank / grad_accum)


def windows(per_rank: int, grad_accum: int) -> list[list[tuple[int, bool]]]:
    """Optimizer steps of one epoch: lists of (micro-batch index, synchronise gradients now)."""
    out = []
    for start in range(0, per_rank, grad_accum):
        idx = list(range(start, min(per_rank, start + grad_accum)))
        out.append([(i, i == idx[-1]) for i in idx])
    return out


def step_norm(shards: Sequence[Sequence[list[int]]], micro: Sequence[int], units: Sequence[float]) -> float:
    """What each rank divides its summed loss by in one optimizer step.

    ``shards`` are every rank's micro-batches, ``micro`` the micro-batch indices of this step and
    ``units[i]`` what sample i counts for (its learned tokens in SFT, 1 per DPO pair). DDP averages
    gradients over ranks, so dividing by (step total / world) on each rank makes the result the
    sum over all ranks divided by the step total. At least 1, so a step of empty samples is 0.
    """
    world = len(shards)
    total = sum(units[i] for ranks in shards for m in micro for i in ranks[m])
    return max(1.0, float(total)) / world


def completion_window(labels: Sequence[Sequence[int]]) -> tuple[int, int]:
    """(logits_to_keep, first label position) covering every learned label of a padded batch.

    Logits at position t predict the token at t + 1. If the earliest learned label in any row sits
    at position m, the logits from m - 1 to the end are enough: ``logits_to_keep = length - m + 1``
    (the last one predicts past the row and is dropped). DPO then takes log-softmax over those
    positions only, not over the prompt.
    """
    if not labels:
        raise ValueError("empty batch")
    length = len(labels[0])
    first = length
    for row in labels:
        for t in range(1, len(row)):
            if row[t] != IGNORE_INDEX:
                first = min(first, t)
                break
    if first >= length:
        return 1, length  # nothing learned: one position, the caller's mask is all False
    return length - first + 1, first
