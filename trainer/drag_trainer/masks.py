"""Which tokens the loss learns from (standard library only).

DRAG mapped character spans to tokens by re-tokenising prefixes, which is approximate (DRAG-SPEC
§9.18), and padded every sample with the padding inside the loss (§9.17). Here the spans are
character ranges of the rendered chat text, and a token is learned when its offset range (from
the tokenizer's ``return_offsets_mapping``) overlaps one of them. Padding is added later by the
collator and is never learned.

Strategies:
  none          every token of the sample (prompt included, as DRAG's default did; never padding)
  assistant     the assistant turns, their end-of-turn token included
  search-only   the search spans inside assistant turns: ``<search>…</search>`` (DRAG's formats)
                or ``<tool_call>…</tool_call>`` (TRL tool calls, as Qwen's templates render them)
  search-think  the search spans and the ``<think>…</think>`` spans
When a strategy finds no span in a sample, the assistant turns are learned instead (DRAG fell back
to every token); the number of such fallbacks is reported.
"""

from __future__ import annotations

from typing import Callable, Sequence

IGNORE_INDEX = -100
STRATEGIES = ("none", "assistant", "search-only", "search-think")
SEARCH_TAGS = (("<search>", "</search>"), ("<tool_call>", "</tool_call>"))
THINK_TAGS = (("<think>", "</think>"),)

Span = tuple[int, int]


def common_prefix_length(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def assistant_spans(render: Callable[[list, bool], str], messages: list) -> tuple[str, list[Span]]:
    """The full rendered text and the character span of each assistant message in it.

    ``render(messages, add_generation_prompt)`` is the model's chat template. A turn starts where
    the conversation up to it, rendered with the generation prompt, stops agreeing with the full
    text, and ends where the conversation including it ends; so whatever the template puts around
    a turn (tool-call markup, thinking tags) is measured, not guessed.
    """
    full = render(messages, False)
    spans: list[Span] = []
    for i, m in enumerate(messages):
        if m.get("role") != "assistant":
            continue
        before = render(messages[:i], True) if i else ""
        upto = render(messages[: i + 1], False)
        start = common_prefix_length(before, full)
        end = common_prefix_length(upto, full)
        # The end-of-turn marker belongs to the turn (the model must learn to stop); its trailing
        # newline is the template's.
        if end > start:
            spans.append((start, end))
    return full, spans


def tag_spans(text: str, tags: Sequence[tuple[str, str]], within: Sequence[Span]) -> list[Span]:
    """Spans of ``open…close`` (tags included) inside the given spans; an unclosed tag runs to the span's end."""
    found: list[Span] = []
    for lo, hi in within:
        for open_tag, close_tag in tags:
            pos = lo
            while True:
                s = text.find(open_tag, pos, hi)
                if s < 0:
                    break
                e = text.find(close_tag, s + len(open_tag), hi)
                end = hi if e < 0 else e + len(close_tag)
                found.append((s, end))
                pos = end
    return sorted(found)


def learned_spans(strategy: str, text: str, assistant: Sequence[Span]) -> tuple[list[Span] | None, bool]:
    """(spans to learn or None for every token, whether the strategy fell back to the assistant turns)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown mask strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if strategy == "none":
        return None, False
    if strategy == "assistant":
        return list(assistant), False
    tags = SEARCH_TAGS + (THINK_TAGS if strategy == "search-think" else ())
    spans = tag_spans(text, tags, assistant)
    if not spans:
        return list(assistant), True
    return spans, False


def labels_from_offsets(input_ids: Sequence[int], offsets: Sequence[tuple[int, int]], spans: Sequence[Span] | None) -> list[int]:
    """Labels for one sample: the token id where its characters overlap a span, else IGNORE_INDEX.

    Tokens with an empty offset range (added by the tokenizer, not in the text) are never learned
    unless every token is (``spans`` is None).
    """
    if len(input_ids) != len(offsets):
        raise ValueError(f"{len(input_ids)} token ids but {len(offsets)} offsets")
    if spans is None:
        return list(input_ids)
    labels = []
    ordered = sorted(spans)
    for tid, (ts, te) in zip(input_ids, offsets):
        keep = te > ts and any(ts < e and te > s for s, e in ordered)
        labels.append(tid if keep else IGNORE_INDEX)
    return labels


def learned_fraction(labels: Sequence[int]) -> float:
    return sum(1 for t in labels if t != IGNORE_INDEX) / len(labels) if labels else 0.0
