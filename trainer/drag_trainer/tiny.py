"""A tiny, randomly initialised Qwen2-VL-style model and tokenizer, built locally (no downloads).

Used by tests/gpu_smoke.py, tests/test_torch.py and the SFT throughput benchmark. Needs torch,
transformers and tokenizers.
"""

from __future__ import annotations

import json
import os
import random

SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<tool_call>",
    "</tool_call>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<think>",
    "</think>",
]

CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{%- endif %}"
    "{%- for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{%- if m['content'] is string %}{{ m['content'] }}{%- elif m['content'] %}{%- for p in m['content'] %}"
    "{%- if p['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{%- else %}{{ p['text'] }}{%- endif %}"
    "{%- endfor %}{%- endif %}"
    "{%- for c in m.get('tool_calls') or [] %}\n<tool_call>\n"
    "{{ {'name': c['function']['name'], 'arguments': c['function']['arguments']} | tojson }}\n</tool_call>{%- endfor %}"
    "<|im_end|>\n{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}"
)

WORDS = (
    "revenue income margin segment operating report annual page table total net cash debt asset equity growth "
    "what was the in of for did and or not search documents query question answer find year quarter company"
).split()


def synthetic_rows(n: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """SFT rows (TRL shape) whose query is a fixed function of the question, and DPO rows."""
    rng = random.Random(seed)
    sft, dpo = [], []
    for i in range(n):
        a, b = rng.choice(WORDS[:16]), rng.choice(WORDS[:16])
        year = str(2015 + i % 10)
        question = f"what was the {a} {b} in {year} ?"
        good = {"query": f"{a} {b} {year}"}
        bad = {"query": f"{rng.choice(WORDS[16:])} {rng.choice(WORDS[16:])}"}

        def call(q):
            return {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"type": "function", "function": {"name": "search_documents", "arguments": q}}],
            }

        prompt = [{"role": "system", "content": "You search documents ."}, {"role": "user", "content": question}]
        sft.append({"messages": prompt + [call(good)], "rank_score": 1.0, "question_id": f"q{i}"})
        dpo.append({"prompt": prompt, "chosen": [call(good)], "rejected": [call(bad)], "question_id": f"q{i}"})
    return sft, dpo


ARCHS = ("qwen2_vl", "qwen3_vl")


def build(
    out_dir: str, hidden: int = 64, layers: int = 2, seed: int = 0, head_dim: int = 16, arch: str = "qwen2_vl"
) -> str:
    """Writes a tiny Qwen2-VL (or Qwen3-VL, DRAG's default family) model and its tokenizer into ``out_dir``."""
    import torch
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}")
    torch.manual_seed(seed)
    vocab = {t: i for i, t in enumerate(SPECIAL + ["[UNK]"])}
    extra = (
        set(WORDS)
        | {str(y) for y in range(2000, 2040)}
        | set("{}[]\":,.?!'()-_ \n")
        | {
            "name",
            "arguments",
            "search_documents",
            "You",
            "system",
            "user",
            "assistant",
            "tool",
            "a",
            "helpful",
            "\n\n",
        }
    )
    for w in sorted(extra):
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"\w+|\s|[^\w\s]"), behavior="isolated")
    tok.add_special_tokens(SPECIAL)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token="[UNK]"
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out_dir)
    heads = hidden // head_dim
    quarter = head_dim // 8  # M-RoPE sections (temporal, height, width) sum to head_dim / 2, as Qwen2-VL's 16/24/24
    sections = [head_dim // 2 - 6 * quarter // 2, 3 * quarter // 2, 3 * quarter // 2]
    ids = {
        "bos_token_id": vocab["<|endoftext|>"],
        "eos_token_id": vocab["<|im_end|>"],
        "pad_token_id": vocab["<|endoftext|>"],
    }
    text = {
        "vocab_size": len(vocab),
        "hidden_size": hidden,
        "intermediate_size": hidden * 2,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": False,
        **ids,
    }
    special = {
        "image_token_id": vocab["<|image_pad|>"],
        "video_token_id": vocab["<|video_pad|>"],
        "vision_start_token_id": vocab["<|vision_start|>"],
        "vision_end_token_id": vocab["<|vision_end|>"],
    }
    if arch == "qwen2_vl":
        from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

        config = Qwen2VLConfig(
            text_config={**text, "rope_scaling": {"type": "mrope", "mrope_section": sections}},
            vision_config={
                "depth": 1,
                "embed_dim": 32,
                "hidden_size": hidden,
                "num_heads": 2,
                "mlp_ratio": 2,
                "patch_size": 14,
                "spatial_merge_size": 2,
                "temporal_patch_size": 2,
                "in_channels": 3,
            },
            **special,
            **ids,
        )
        model = Qwen2VLForConditionalGeneration(config)
    else:
        from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

        # Qwen3-VL: interleaved M-RoPE, explicit head_dim, a deep-stack vision merger, 16-pixel patches.
        config = Qwen3VLConfig(
            text_config={
                **text,
                "head_dim": head_dim,
                "rope_parameters": {
                    "rope_type": "default",
                    "rope_theta": 500000.0,
                    "mrope_section": sections,
                    "mrope_interleaved": True,
                },
            },
            vision_config={
                "depth": 2,
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_heads": 2,
                "patch_size": 16,
                "spatial_merge_size": 2,
                "temporal_patch_size": 2,
                "in_channels": 3,
                "out_hidden_size": hidden,
                "num_position_embeddings": 256,
                "deepstack_visual_indexes": [1],
            },
            **special,
            **ids,
        )
        model = Qwen3VLForConditionalGeneration(config)
    # With the usual 0.02 initialisation, a 64-wide model's logits span about +-1.3 whatever the
    # hidden state, so no LoRA could push the loss much below ln(vocab) - 1: the smoke test could not
    # tell learning from noise. A wider output layer lets the loss fall as it does in a real model.
    with torch.no_grad():
        model.get_output_embeddings().weight.normal_(0.0, 0.15)
    model.save_pretrained(out_dir)
    with open(os.path.join(out_dir, "drag_tiny.json"), "w", encoding="utf-8") as handle:
        json.dump({"arch": arch, "hidden": hidden, "layers": layers, "vocab": len(vocab)}, handle)
    return out_dir


def add_processor(model_dir: str) -> str:
    """Saves a Qwen-VL processor (image processor + the tiny tokenizer) beside the tiny model."""
    import transformers
    from transformers import AutoTokenizer, Qwen2VLImageProcessor

    with open(os.path.join(model_dir, "drag_tiny.json"), encoding="utf-8") as handle:
        arch = json.load(handle).get("arch", "qwen2_vl")
    patch = 14 if arch == "qwen2_vl" else 16
    factor = patch * 2
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    image_processor = Qwen2VLImageProcessor(
        min_pixels=factor * factor * 4,
        max_pixels=factor * factor * 16,
        patch_size=patch,
        merge_size=2,
        temporal_patch_size=2,
    )
    processor_cls = transformers.Qwen2VLProcessor if arch == "qwen2_vl" else transformers.Qwen3VLProcessor
    video_cls = getattr(transformers, "Qwen2VLVideoProcessor" if arch == "qwen2_vl" else "Qwen3VLVideoProcessor", None)
    kwargs = {}
    if video_cls is not None:
        try:
            kwargs["video_processor"] = video_cls(patch_size=patch)
        except Exception:  # noqa: BLE001 - older transformers: no separate video processor
            pass
    processor_cls(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE, **kwargs
    ).save_pretrained(model_dir)
    return model_dir


def image_rows(image_dir: str, n: int, seed: int = 0) -> list[dict]:
    """SFT rows (TRL shape) whose user turn carries one small page image (PNG files written here)."""
    from PIL import Image

    rng = random.Random(seed)
    os.makedirs(image_dir, exist_ok=True)
    rows = []
    for i, row in enumerate(synthetic_rows(n, seed)[0]):
        path = os.path.join(image_dir, f"page{i}.png")
        shade = rng.randrange(256)
        Image.new("RGB", (56 + 28 * (i % 3), 56), (shade, 255 - shade, 128)).save(path)
        system, user, call = row["messages"]
        user = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": user["content"]}]}
        rows.append({**row, "messages": [system, user, call], "images": [path]})
    return rows


def write_jsonl(path: str, rows: list[dict]) -> str:
    with open(path, "w", encoding="utf-8") as handle:
        for r in rows:
            handle.write(json.dumps(r) + "\n")
    return path
