"""The training commands: sft, dpo, merge (torch, transformers >= 4.57, peft; imported here only).

What differs from DRAG's finetune.py (DRAG-SPEC §6, §9.17-22):
* the model's own chat template renders the agent's real prompt (system prompt, tools, tool calls);
* batches are padded dynamically and padding never enters the loss;
* label masks come from tokenizer offset mappings (exact), not from re-tokenised prefixes;
* weights keep 0 as 0 and the loss is sum(w * loss) / sum(w) over the whole accumulation window;
* DPO's reference model is the same model with the adapter disabled (no second copy in memory), or
  with --sft-adapter a frozen copy of that adapter; dropout is off in DPO;
* only rank 0 writes; trainer_log.jsonl and status.json are written as training goes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import sys
import time
from typing import Any

from .collate import length_grouped_order, pad_batch
from .data import Example, load_examples
from .envcheck import version_at_least
from .masks import IGNORE_INDEX, assistant_spans, common_prefix_length, labels_from_offsets, learned_spans
from .trainlog import TrainLog, write_json_atomic
from .weights import sample_weight


class Cancelled(Exception):
    pass


def _imports():
    missing = []
    try:
        import torch  # noqa: F401
    except ImportError:
        missing.append("torch>=2.4")
    try:
        import transformers
    except ImportError:
        missing.append("transformers>=4.57")
        transformers = None
    try:
        import peft  # noqa: F401
    except ImportError:
        missing.append("peft>=0.17")
    if missing:
        raise SystemExit(f"drag_trainer: missing packages on this host: pip install {' '.join(repr(m) for m in missing)} (python -m drag_trainer env tells more)")
    if transformers is not None and not version_at_least(transformers.__version__, "4.57"):
        raise SystemExit(f"drag_trainer: transformers {transformers.__version__} is too old for Qwen3-VL: pip install -U 'transformers>=4.57'")


# ----------------------------------------------------------------------------- setup

def _dist():
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    return world, rank, device


def load_model(args, device, world: int, for_training: bool = True):
    import torch
    from transformers import AutoModelForCausalLM, AutoProcessor, AutoTokenizer

    processor = None
    for kwargs_try in ({"min_pixels": args.min_pixels, "max_pixels": args.max_pixels}, {}):
        try:
            processor = AutoProcessor.from_pretrained(args.model, **kwargs_try)
            break
        except Exception:  # noqa: BLE001 - text-only models have no processor; newer ones size images differently
            processor = None
    tokenizer = getattr(processor, "tokenizer", None) or AutoTokenizer.from_pretrained(args.model)
    tokenizer.padding_side = "right"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float32
    kwargs: dict[str, Any] = {"dtype": dtype}
    if getattr(args, "four_bit", False):
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as err:
            raise SystemExit("drag_trainer: --4bit needs bitsandbytes on this host: pip install 'bitsandbytes>=0.45' (or drop --4bit)") from err
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype)
    if device.type == "cuda":
        kwargs["device_map"] = {"": device} if world > 1 or for_training else "auto"
    model = None
    try:
        from transformers import AutoModelForImageTextToText

        model = AutoModelForImageTextToText.from_pretrained(args.model, **kwargs)
    except (ValueError, KeyError, ImportError):
        model = AutoModelForCausalLM.from_pretrained(args.model, **kwargs)
    if device.type != "cuda":
        model.to(device)
    return model, tokenizer, processor


def wrap_lora(model, args):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if getattr(args, "four_bit", False):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=args.gradient_checkpointing, gradient_checkpointing_kwargs={"use_reentrant": False})
    elif args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    targets = [t.strip() for t in args.lora_targets.split(",") if t.strip()]
    names = "|".join(sorted(set(targets))) if args.tune_llm else "__none__"
    # The language model only: the vision tower of Qwen2.5-VL has gate/up/down_proj too (DRAG-SPEC §6.2).
    target_regex = rf"^(?!.*visual).*\.({names})$"
    modules_to_save = []
    if args.tune_vision:
        modules_to_save.append("visual")
    elif args.tune_mlp:
        modules_to_save.append("merger")
    config = LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, bias="none", task_type="CAUSAL_LM", target_modules=target_regex, modules_to_save=modules_to_save or None)
    return get_peft_model(model, config)


def param_groups(model, args):
    groups: dict[str, list] = {"lora": [], "vision": [], "merger": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = "merger" if "merger" in name else "vision" if "visual" in name else "lora"
        groups[key].append(p)
    lrs = {"lora": args.lr, "vision": args.vision_lr or args.lr / 10, "merger": args.projector_lr or args.lr}
    return [{"params": ps, "lr": lrs[k], "weight_decay": args.weight_decay, "name": k} for k, ps in groups.items() if ps]


# ----------------------------------------------------------------------------- encoding

class Encoder:
    def __init__(self, tokenizer, processor, args):
        self.tok = tokenizer
        self.processor = processor
        self.max_length = args.max_length
        self.images = bool(getattr(args, "images", False))
        self.truncated = 0
        self.fallbacks = 0
        self.skipped = 0

    def render(self, messages, tools, generation: bool) -> str:
        if not messages:
            return ""
        return self.tok.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=generation)

    def encode_spans(self, text: str, spans):
        enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        labels = labels_from_offsets(ids, offsets, spans)
        if len(ids) > self.max_length:
            self.truncated += 1
            ids, labels = ids[: self.max_length], labels[: self.max_length]
        return ids, labels

    def sft(self, ex: Example, strategy: str):
        text, turns = assistant_spans(lambda m, g: self.render(m, ex.tools, g), ex.messages)
        spans, fell_back = learned_spans(strategy, text, turns)
        self.fallbacks += fell_back
        ids, labels = self.encode_spans(text, spans)
        if all(l == IGNORE_INDEX for l in labels[1:]):
            self.skipped += 1
            return None
        if self.images and ex.images:
            if self.processor is None:
                raise SystemExit(f"drag_trainer: --images, but {getattr(self.tok, 'name_or_path', 'the model')} has no image processor")
            slots = text.count("<|image_pad|>")
            if slots != len(ex.images):
                raise SystemExit(f"line {ex.line}: {len(ex.images)} images but {slots} image slots in the rendered text: put {{\"type\": \"image\"}} parts in the messages")
        return {"input_ids": ids, "labels": labels, "text": text, "images": ex.images if self.images else []}

    def dpo(self, ex: Example):
        prompt = self.render(ex.messages, ex.tools, True)
        rows = []
        for completion in (ex.chosen, ex.rejected):
            full = self.render(ex.messages + completion, ex.tools, False)
            start = common_prefix_length(prompt, full)
            ids, labels = self.encode_spans(full, [(start, len(full))])
            if all(l == IGNORE_INDEX for l in labels[1:]):
                self.skipped += 1
                return None
            rows.append({"input_ids": ids, "labels": labels, "text": full, "images": ex.images if self.images else []})
        return rows


def to_tensors(rows, pad_id, device, processor=None, tokenizer=None):
    """A padded batch as tensors; rows with images go through the processor, image tokens never learned."""
    import torch

    extra: dict[str, Any] = {}
    if any(r["images"] for r in rows):
        from PIL import Image

        pad_token = tokenizer.convert_tokens_to_ids("<|image_pad|>")
        pixel, grids, expanded = [], [], []
        for r in rows:
            if not r["images"]:
                expanded.append(r)
                continue
            out = processor(text=[r["text"]], images=[Image.open(p).convert("RGB") for p in r["images"]], return_tensors="pt")
            ids = out["input_ids"][0].tolist()
            labels, j = [], 0
            for tid, lab in zip(r["input_ids"], r["labels"]):
                if tid == pad_token:
                    while j < len(ids) and ids[j] == pad_token:
                        labels.append(IGNORE_INDEX)
                        j += 1
                else:
                    labels.append(lab)
                    j += 1
            row = {"input_ids": ids[: len(labels)], "labels": labels}
            if "mm_token_type_ids" in out:  # transformers >= 5: M-RoPE needs to know the image tokens
                row["mm_token_type_ids"] = out["mm_token_type_ids"][0].tolist()[: len(labels)]
            expanded.append(row)
            pixel.append(out["pixel_values"])
            grids.append(out["image_grid_thw"])
        rows = expanded
        extra = {"pixel_values": torch.cat(pixel).to(device), "image_grid_thw": torch.cat(grids).to(device)}
    batch = pad_batch(rows, pad_id, multiple_of=8)
    tensors = {k: torch.tensor(v, device=device) for k, v in batch.items()}
    tensors.update(extra)
    return tensors


def token_logps(model, batch):
    """Per-token log-probabilities of the labels, and the mask of learned positions (shifted)."""
    import torch

    labels = batch["labels"][:, 1:]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs).logits[:, :-1]
    mask = labels != IGNORE_INDEX
    safe = labels.masked_fill(~mask, 0)
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return logp * mask, mask


# ----------------------------------------------------------------------------- loops

def _cosine(step, total, warmup):
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _save(model, tokenizer, processor, path, meta):
    os.makedirs(path, exist_ok=True)
    # Only the trained adapter: DPO from an SFT adapter also holds the frozen reference copy.
    adapters = getattr(model, "peft_config", None) or {}
    model.save_pretrained(path, **({"selected_adapters": ["default"]} if len(adapters) > 1 else {}))
    tokenizer.save_pretrained(path)
    if processor is not None:
        try:
            processor.save_pretrained(path)
        except Exception:  # noqa: BLE001 - a processor that cannot be saved does not block the adapter
            pass
    write_json_atomic(os.path.join(path, "drag_adapter.json"), meta)


def _rotate(output_dir, keep):
    ckpts = sorted((d for d in os.listdir(output_dir) if d.startswith("checkpoint-")), key=lambda d: int(d.split("-")[1]))
    for d in ckpts[: max(0, len(ckpts) - keep)]:
        shutil.rmtree(os.path.join(output_dir, d), ignore_errors=True)


def train(args) -> int:
    import torch

    world, rank, device = _dist()
    is_main = rank == 0
    torch.manual_seed(args.seed)
    task = args.command
    examples, errors = load_examples(task, args.train_data)
    for e in errors[:20]:
        print(f"skipped: {e}", file=sys.stderr)
    if not examples:
        raise SystemExit(f"drag_trainer: no usable {task} records in {args.train_data} ({len(errors)} problems; python -m drag_trainer check-data --task {task} {args.train_data})")
    val_examples = load_examples(task, args.val_data)[0] if args.val_data else []

    model, tokenizer, processor = load_model(args, device, world)
    ref_adapter = None
    if task == "dpo" and args.sft_adapter:
        from peft import PeftModel

        # DPO continues the SFT adapter; the reference is the SFT model (a frozen second copy of the
        # adapter), not the bare base model: otherwise the first loss is already below ln 2 and beta
        # pulls the policy back towards the base model instead of the SFT model.
        model = PeftModel.from_pretrained(model, args.sft_adapter, is_trainable=True)
        if is_main:
            cfg = model.peft_config["default"]
            print(f"continuing the SFT adapter {args.sft_adapter} (LoRA r {cfg.r}, alpha {cfg.lora_alpha}: its own settings; --lora-* options do not apply)", file=sys.stderr, flush=True)
        ref_adapter = "reference"
        model.load_adapter(args.sft_adapter, adapter_name=ref_adapter, is_trainable=False)
        model.set_adapter("default")
    else:
        model = wrap_lora(model, args)
    if task == "dpo":
        # As TRL's disable_dropout: with dropout on, the policy and reference passes drop different
        # units, so the margin is noise from the first step (measured on a GPU: DPO from an SFT
        # adapter started at 0.64 instead of ln 2 = 0.693).
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    enc = Encoder(tokenizer, processor, args)

    def encode(exs):
        out, weights, missing = [], [], 0
        for ex in exs:
            if task == "sft":
                item = enc.sft(ex, args.mask_strategy)
                if item is None:
                    continue
                w, miss = sample_weight(args.weight_scheme, ex.meta, args.min_weight)
                missing += miss
                out.append(item)
                weights.append(w)
            else:
                item = enc.dpo(ex)
                if item is not None:
                    out.append(item)
                    weights.append(1.0)
        return out, weights, missing

    data, weights, missing = encode(examples)
    val_data, val_weights, _ = encode(val_examples)
    if not data:
        raise SystemExit(f"drag_trainer: none of the {len(examples)} samples has a token to learn with --mask-strategy {getattr(args, 'mask_strategy', 'assistant')} (or they were truncated away: raise --max-length)")
    if task == "sft" and sum(weights) <= 0:
        raise SystemExit(f"drag_trainer: every sample has weight 0 under --weight-scheme {args.weight_scheme}: nothing to learn (use --min-weight or another scheme)")
    lengths = [len(d["input_ids"]) if task == "sft" else max(len(r["input_ids"]) for r in d) for d in data]

    def learned_counts(items):
        # Learned (shifted) label positions per SFT sample: counted once, used by every window's norm.
        return [sum(1 for l in d["labels"][1:] if l != IGNORE_INDEX) for d in items] if task == "sft" else []

    train_split = (data, weights, learned_counts(data))
    val_split = (val_data, val_weights, learned_counts(val_data))
    per_rank = math.ceil(len(data) / args.batch_size / world)
    steps_per_epoch = max(1, math.ceil(per_rank / args.grad_accum))
    total = args.max_steps or max(1, math.ceil(args.epochs * steps_per_epoch))
    log = TrainLog(args.output_dir, total, is_main)
    if is_main:
        learned = sum(train_split[2])
        tokens = sum(lengths)
        print(f"{len(data)} {task} samples ({len(errors)} bad lines skipped, {enc.truncated} truncated to {args.max_length}, {enc.skipped} with nothing to learn, "
              f"{enc.fallbacks} mask fallbacks, {missing} without the weight's field); {total} steps; "
              + (f"learning {100 * learned / max(1, tokens):.1f}% of tokens" if task == "sft" else f"beta {args.beta}"), file=sys.stderr, flush=True)

    raw_model = model
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=False)
    model.train()
    groups = param_groups(raw_model, args)
    optimizer = torch.optim.AdamW(groups, lr=args.lr, weight_decay=args.weight_decay)
    base_lrs = [g["lr"] for g in groups]
    warmup = int(total * args.warmup_ratio)
    pad_id = tokenizer.pad_token_id
    meta = {"base_model": args.model, "task": task, "args": {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool)) or v is None}}

    @contextlib.contextmanager
    def reference_model():
        """The DPO reference: the frozen SFT adapter when continuing one, else the base model."""
        if ref_adapter is None:
            with raw_model.disable_adapter():
                yield
            return
        raw_model.set_adapter(ref_adapter)
        try:
            yield
        finally:
            raw_model.set_adapter("default")  # also makes the trained adapter's weights trainable again

    def micro_loss(split, idx, norm):
        items, item_weights, _ = split
        if task == "sft":
            rows = [items[i] for i in idx]
            w = torch.tensor([item_weights[i] for i in idx], device=device)
            batch = to_tensors(rows, pad_id, device, processor, tokenizer)
            labels = batch["labels"][:, 1:]
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            logits = model(**inputs).logits[:, :-1]
            mask = labels != IGNORE_INDEX
            ce = torch.zeros(labels.shape, device=device)
            ce[mask] = torch.nn.functional.cross_entropy(logits[mask].float(), labels[mask], reduction="none")
            if args.weight_scheme == "none":
                return ce.sum() / norm
            per_sample = ce.sum(1) / mask.sum(1).clamp(min=1)
            return (per_sample * w).sum() / norm
        pairs = [items[i] for i in idx]
        rows = [p[0] for p in pairs] + [p[1] for p in pairs]
        batch = to_tensors(rows, pad_id, device, processor, tokenizer)
        with torch.no_grad(), reference_model():
            ref_logp, _ = token_logps(raw_model, batch)
            ref = ref_logp.sum(-1)
        logp, _ = token_logps(model, batch)
        policy = logp.sum(-1)
        n = len(pairs)
        margin = (policy[:n] - ref[:n]) - (policy[n:] - ref[n:])
        losses = -torch.nn.functional.logsigmoid(args.beta * margin)
        return losses.sum() / norm

    def window_norm(split, windows):
        """What a window's summed loss is divided by: its pairs (DPO), learned tokens, or sum of weights."""
        _, item_weights, learned_tokens = split
        if task != "sft":
            return float(sum(len(b) for b in windows))
        if args.weight_scheme == "none":
            return float(max(1, sum(learned_tokens[i] for b in windows for i in b)))
        return float(sum(item_weights[i] for b in windows for i in b))

    def evaluate():
        if not val_data:
            return None
        model.eval()
        total_loss, count = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(val_data), args.batch_size):
                idx = list(range(start, min(len(val_data), start + args.batch_size)))
                total_loss += float(micro_loss(val_split, idx, window_norm(val_split, [idx]) or 1.0))
                count += 1
        model.train()
        return total_loss / max(1, count)

    stop = {"flag": False}

    def on_term(signum, frame):  # noqa: ARG001
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_term)
    step, epoch, recent = 0, 0, []
    started = time.monotonic()
    while step < total:
        batches = length_grouped_order(lengths, args.batch_size, args.seed + epoch)[rank::world]
        step_at_epoch_start = step
        for w_start in range(0, len(batches), args.grad_accum):
            if step >= total:
                break
            if stop["flag"]:
                raise Cancelled()
            windows = batches[w_start : w_start + args.grad_accum]
            norm = window_norm(train_split, windows)
            if norm <= 0:
                continue  # every weight in the window is 0: nothing to learn
            lr_scale = _cosine(step, total, warmup)
            for g, base in zip(optimizer.param_groups, base_lrs):
                g["lr"] = base * lr_scale
            loss_value = 0.0
            for b in windows:
                loss = micro_loss(train_split, b, norm)
                loss.backward()
                loss_value += float(loss.detach())
            torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            recent.append(loss_value)
            ep = epoch + min(1.0, (w_start + len(windows)) / max(1, len(batches)))
            do_eval = args.save_steps > 0 and step % args.save_steps == 0
            eval_loss = evaluate() if do_eval else None
            if step % args.logging_steps == 0 or step == total or eval_loss is not None:
                log.log(step, sum(recent) / len(recent), optimizer.param_groups[0]["lr"], ep, eval_loss,
                        tokens_per_second=round(sum(lengths) * ep / max(1e-9, time.monotonic() - started), 1) if task == "sft" else None)
                recent = []
            if do_eval and is_main:
                _save(raw_model, tokenizer, processor, os.path.join(args.output_dir, f"checkpoint-{step}"), {**meta, "step": step})
                _rotate(args.output_dir, args.save_total_limit)
        epoch += 1
        if step == step_at_epoch_start:
            raise SystemExit("drag_trainer: a whole epoch without an optimizer step (no batch on this rank, or every window weighs 0)")
    if is_main:
        _save(raw_model, tokenizer, processor, os.path.join(args.output_dir, "final"), {**meta, "step": step})
        log.status("succeeded")
    if world > 1:
        torch.distributed.barrier()
    return 0


def merge(args) -> int:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoProcessor, AutoTokenizer

    base = args.model
    if base is None:
        with open(os.path.join(args.adapter_path, "adapter_config.json"), encoding="utf-8") as handle:
            base = json.load(handle).get("base_model_name_or_path")
        if not base:
            raise SystemExit(f"drag_trainer: {args.adapter_path}/adapter_config.json names no base model: pass --model")
    dtype = torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    kwargs = {"dtype": dtype, **({"device_map": "auto"} if torch.cuda.is_available() else {})}
    try:
        from transformers import AutoModelForImageTextToText

        model = AutoModelForImageTextToText.from_pretrained(base, **kwargs)
    except (ValueError, KeyError, ImportError):
        model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    merged = PeftModel.from_pretrained(model, args.adapter_path).merge_and_unload()
    merged.save_pretrained(args.output_path, safe_serialization=True)
    try:
        AutoProcessor.from_pretrained(base).save_pretrained(args.output_path)
    except Exception:  # noqa: BLE001
        AutoTokenizer.from_pretrained(args.adapter_path).save_pretrained(args.output_path)
    print(f"merged {args.adapter_path} into {base} -> {args.output_path}", file=sys.stderr)
    return 0


def run(args) -> int:
    _imports()
    if args.command == "merge":
        return merge(args)
    log_dir = args.output_dir
    try:
        return train(args)
    except Cancelled:
        _final_status(log_dir, "cancelled", "stopped by SIGTERM")
        return 143
    except KeyboardInterrupt:
        _final_status(log_dir, "cancelled", "interrupted")
        return 130
    except SystemExit as err:
        _final_status(log_dir, "failed", str(err))
        raise
    except Exception as err:
        _final_status(log_dir, "failed", f"{type(err).__name__}: {err}")
        raise


def _final_status(output_dir: str, state: str, error: str) -> None:
    if int(os.environ.get("RANK", "0")) != 0:
        return
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "status.json")
    previous: dict[str, Any] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            previous = json.load(handle)
    except (OSError, ValueError):
        pass
    write_json_atomic(path, {**previous, "state": state, "last_error": error, "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
