"""A tiny tokenizer and chat template, standard library only, for the mask tests.

The tokenizer splits on a few special markers and otherwise on words and single punctuation, and
returns offset mappings exactly as a fast Hugging Face tokenizer does (character start/end of
each token in the text).
"""

import json
import re

SPECIAL = [
    "<|im_start|>",
    "<|im_end|>",
    "<tool_call>",
    "</tool_call>",
    "<|vision_start|>",
    "<|image_pad|>",
    "<|vision_end|>",
]
TOKEN_RE = re.compile("|".join(re.escape(s) for s in SPECIAL) + r"|\w+|\s+|[^\w\s]")


class FakeTokenizer:
    def __init__(self):
        self.vocab = {}

    def _id(self, piece):
        return self.vocab.setdefault(piece, len(self.vocab) + 10)

    def __call__(self, text, add_special_tokens=False, return_offsets_mapping=True):
        ids, offsets = [], []
        for m in TOKEN_RE.finditer(text):
            ids.append(self._id(m.group()))
            offsets.append((m.start(), m.end()))
        return {"input_ids": ids, "offset_mapping": offsets}

    def convert_tokens_to_ids(self, token):
        return self._id(token)

    def decode_span(self, text, ids_offsets, labels):
        return "".join(text[s:e] for (s, e), l in zip(ids_offsets, labels) if l != -100)

    def apply_chat_template(self, messages, tools=None, tokenize=False, add_generation_prompt=False):
        return chatml(messages, add_generation_prompt, tools)


class FakeThinkingTokenizer(FakeTokenizer):
    """The chat template of a Qwen3 Thinking model: the generation prompt opens the reasoning."""

    def apply_chat_template(self, messages, tools=None, tokenize=False, add_generation_prompt=False):
        return chatml_thinking(messages, add_generation_prompt, tools)


def chatml(messages, add_generation_prompt=False, tools=None):
    """Qwen-style ChatML: tool calls as <tool_call>{json}</tool_call>, a default system prompt."""
    out = []
    if not messages or messages[0]["role"] != "system":
        out.append(
            "<|im_start|>system\nYou are a helpful assistant."
            + (f" Tools: {json.dumps(tools)}" if tools else "")
            + "<|im_end|>\n"
        )
    for m in messages:
        content = m.get("content") or ""
        if isinstance(content, list):
            content = "".join(p.get("text", "<|vision_start|><|image_pad|><|vision_end|>") for p in content)
        for call in m.get("tool_calls") or []:
            content += (
                "\n<tool_call>\n"
                + json.dumps({"name": call["function"]["name"], "arguments": call["function"]["arguments"]})
                + "\n</tool_call>"
            )
        out.append(f"<|im_start|>{m['role']}\n{content}<|im_end|>\n")
    if add_generation_prompt:
        out.append("<|im_start|>assistant\n")
    return "".join(out)


def chatml_thinking(messages, add_generation_prompt=False, tools=None):
    """As Qwen3-VL-8B-Thinking's template: ``<|im_start|>assistant\n<think>\n`` is the generation prompt,
    and an assistant turn with reasoning renders as ``<think>\n…\n</think>\n\n`` then its content."""
    text = chatml(messages, False, tools)
    if add_generation_prompt:
        text += "<|im_start|>assistant\n<think>\n"
    return text
