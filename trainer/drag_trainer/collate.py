"""Batching (standard library only; the trainer turns the lists into tensors).

Dynamic padding: a batch is padded to its own longest sample (optionally rounded up to a multiple,
which tensor cores like), not to ``--max-length`` as DRAG did; padding is masked out of attention
and of the loss. ``length_grouped_order`` puts samples of similar length into the same batch so
little padding is needed at all, while keeping the order random between epochs.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from .masks import IGNORE_INDEX

# Per-token fields beside input_ids that some processors return (transformers 5's Qwen-VL processors
# mark image tokens in mm_token_type_ids for M-RoPE); padded with 0, and 0 for samples without them.
ZERO_PADDED = ("mm_token_type_ids",)


def pad_batch(
    samples: Sequence[dict], pad_id: int, multiple_of: int = 1, max_length: int | None = None
) -> dict[str, list[list[int]]]:
    """Right-pads ``input_ids`` and ``labels`` of each sample; labels of padding are IGNORE_INDEX.

    A ZERO_PADDED field present in any sample is padded with 0 (and all 0 where a sample lacks it).
    """
    if not samples:
        raise ValueError("empty batch")
    longest = max(len(s["input_ids"]) for s in samples)
    if max_length is not None:
        longest = max_length  # the pad-to-max-length baseline (DRAG's behaviour), for the benchmark
    elif multiple_of > 1:
        longest = -(-longest // multiple_of) * multiple_of
    out: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
    extra = [k for k in ZERO_PADDED if any(k in s for s in samples)]
    for k in extra:
        out[k] = []
    for s in samples:
        ids = list(s["input_ids"])[:longest]
        labels = list(s.get("labels", s["input_ids"]))[:longest]
        pad = longest - len(ids)
        out["input_ids"].append(ids + [pad_id] * pad)
        out["attention_mask"].append([1] * len(ids) + [0] * pad)
        out["labels"].append(labels + [IGNORE_INDEX] * pad)
        for k in extra:
            values = list(s.get(k) or [0] * len(ids))[: len(ids)]
            out[k].append(values + [0] * (longest - len(values)))
    return out


def length_grouped_order(
    lengths: Sequence[int], batch_size: int, seed: int, bucket_batches: int = 50
) -> list[list[int]]:
    """Batches of indices: shuffled, then sorted by length within windows of ``bucket_batches`` batches."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * bucket_batches
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: -lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def padding_fraction(batch: dict[str, list[list[int]]]) -> float:
    cells = sum(len(r) for r in batch["attention_mask"])
    return 1 - sum(sum(r) for r in batch["attention_mask"]) / cells if cells else 0.0
