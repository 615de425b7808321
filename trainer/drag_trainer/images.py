"""Page images in token space (standard library only).

The chat template writes one ``<|image_pad|>`` per image; the model needs it repeated once per
merged patch (about 1,280 times for a page at the default pixel budget). The trainer counts those
tokens before it truncates a sample, so ``--max-length`` applies to the real length and a cut never
falls inside an image (that would fail in the model with "image features and tokens do not match").
The counts follow Qwen2-VL's and Qwen3-VL's image processor (``smart_resize``); the trainer checks
them against the processor's own grid when it builds a batch and stops with a message if they
ever disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .masks import IGNORE_INDEX


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """The size Qwen-VL's image processor resizes an image to (multiples of ``factor``, within the pixel budget)."""
    if min(height, width) <= 0:
        raise ValueError(f"image of {width}x{height} pixels")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"image of {width}x{height} pixels: aspect ratio over 200, which Qwen-VL's processor refuses")
    h = round(height / factor) * factor
    w = round(width / factor) * factor
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def image_tokens(width: int, height: int, patch: int, merge: int, min_pixels: int, max_pixels: int) -> int:
    """How many ``<|image_pad|>`` tokens one image becomes."""
    h, w = smart_resize(height, width, patch * merge, min_pixels, max_pixels)
    return (h // patch) * (w // patch) // (merge * merge)


def _edges(size: Any) -> tuple[int | None, int | None]:
    """(shortest_edge, longest_edge) of a ``size`` dict or of a SizeDict-like object."""
    if isinstance(size, dict):
        return size.get("shortest_edge"), size.get("longest_edge")
    return getattr(size, "shortest_edge", None), getattr(size, "longest_edge", None)


def effective_pixels(image_processor: Any) -> tuple[int | None, int | None]:
    """(min_pixels, max_pixels) an image processor really uses: transformers >= 4.5x keeps them in ``size``."""
    edges = _edges(getattr(image_processor, "size", None))
    if edges != (None, None):
        return edges
    return getattr(image_processor, "min_pixels", None), getattr(image_processor, "max_pixels", None)


def pixel_problem(requested: tuple[int, int], effective: tuple[int | None, int | None]) -> str | None:
    """A sentence when the processor does not use the pixel limits asked for; None when it does."""
    want_min, want_max = requested
    have_min, have_max = effective
    if (have_min, have_max) == (want_min, want_max):
        return None
    return (
        f"the image processor uses min_pixels={have_min}, max_pixels={have_max}, "
        f"not the requested --min-pixels {want_min} --max-pixels {want_max}: images are sized by the processor's values"
    )


def fit(
    ids: Sequence[int],
    labels: Sequence[int],
    image_pad: int,
    counts: Sequence[int],
    max_length: int,
    vision_start: int | None = None,
) -> tuple[list[int], list[int], int, bool]:
    """Truncates a sample so its length after image expansion is at most ``max_length``.

    Returns (ids, labels, images kept, truncated). An image that does not fit whole is dropped
    with everything after it, its ``vision_start`` token included, so the cut is never inside an
    image and the images kept match the ``image_pad`` tokens kept.
    """
    if len(ids) != len(labels):
        raise ValueError(f"{len(ids)} ids but {len(labels)} labels")
    if sum(1 for t in ids if t == image_pad) != len(counts):
        raise ValueError(f"{len(counts)} image token counts for {sum(1 for t in ids if t == image_pad)} image slots")
    length, image, cut = 0, 0, len(ids)
    for pos, tid in enumerate(ids):
        size = counts[image] if tid == image_pad else 1
        if length + size > max_length:
            cut = pos
            if tid == image_pad and vision_start is not None and pos > 0 and ids[pos - 1] == vision_start:
                cut = pos - 1
            break
        length += size
        image += tid == image_pad
    return list(ids[:cut]), list(labels[:cut]), image, cut < len(ids)


def expand(ids: Sequence[int], labels: Sequence[int], image_pad: int, counts: Sequence[int]) -> dict[str, list[int]]:
    """One ``image_pad`` per image token, never learned; ``mm_token_type_ids`` 1 on image tokens (transformers 5)."""
    out: dict[str, list[int]] = {"input_ids": [], "labels": [], "mm_token_type_ids": []}
    image = 0
    for tid, lab in zip(ids, labels):
        if tid == image_pad:
            n = counts[image]
            image += 1
            out["input_ids"].extend([image_pad] * n)
            out["labels"].extend([IGNORE_INDEX] * n)
            out["mm_token_type_ids"].extend([1] * n)
        else:
            out["input_ids"].append(tid)
            out["labels"].append(lab)
            out["mm_token_type_ids"].append(0)
    if image != len(counts):
        raise ValueError(f"{len(counts)} image token counts for {image} image slots")
    return out


def apply_pixels(image_processor: Any, min_pixels: int, max_pixels: int) -> str | None:
    """Sets the pixel limits on a loaded image processor; a sentence when it does not take them."""
    size = getattr(image_processor, "size", None)
    try:
        if _edges(size) != (None, None):
            extra = (
                {k: v for k, v in size.items() if k not in ("shortest_edge", "longest_edge")}
                if isinstance(size, dict)
                else {}
            )
            image_processor.size = {**extra, "shortest_edge": min_pixels, "longest_edge": max_pixels}
        for name, value in (("min_pixels", min_pixels), ("max_pixels", max_pixels)):
            if hasattr(image_processor, name):
                setattr(image_processor, name, value)
    except (AttributeError, TypeError, ValueError) as err:
        return f"the image processor refused --min-pixels {min_pixels} --max-pixels {max_pixels} ({err})"
    return pixel_problem((min_pixels, max_pixels), effective_pixels(image_processor))
