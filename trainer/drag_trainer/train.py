"""The training commands: sft, dpo, merge (torch, transformers, peft; imported here only).

What differs from DRAG's finetune.py (docs/drag-compatibility.md has the details):
* the model's own chat template renders the agent's real prompt (system prompt, tools, tool calls);
* batches are padded dynamically and padding never enters the loss;
* label masks come from tokenizer offset mappings (exact), not from re-tokenised prefixes, and the
  default learns the assistant turns, not the fixed system prompt and tool schema;
* weights keep 0 as 0, are divided by their mean over the data, and scale each sample's tokens in a
  per-token mean over the whole optimizer step (weights.py);
* DPO's reference model is the same model with the adapter disabled (no second copy in memory), or
  with --sft-adapter a frozen copy of that adapter; dropout is off in DPO; log-probabilities are
  taken over the completion positions only;
* several processes (torchrun) get the same number of micro-batches and synchronise gradients once
  per optimizer step (schedule.py); only rank 0 writes;
* checkpoints hold what a run needs to continue (checkpoint.py); SIGUSR1 writes one and exits 75.

``train()`` is three parts: ``setup`` (model, data, optimizer, resume), ``loop`` (the steps) and
``finish`` (the final adapter and status).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from . import checkpoint, lora, schedule
from .collate import length_grouped_order, pad_batch
from .data import Example, load_examples
from .envcheck import version_at_least
from .images import apply_pixels, effective_pixels, expand, fit, image_tokens
from .masks import IGNORE_INDEX, assistant_spans, common_prefix_length, labels_from_offsets, learned_spans
from .trainlog import TrainLog, resolve_report_to, write_json_atomic
from .weights import normalise, sample_weight, window_loss


class Cancelled(Exception):
    """SIGTERM: stop at the next step boundary (exit 143, status cancelled)."""


class Preempted(Exception):
    """SIGUSR1: a checkpoint was written at the next step boundary (exit 75, status preempted)."""


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
        raise SystemExit(
            f"drag_trainer: missing packages on this host: pip install {' '.join(repr(m) for m in missing)} "
            "(or pip install -r trainer/requirements.txt; python -m drag_trainer env tells more)"
        )
    if transformers is not None and not version_at_least(transformers.__version__, "4.57"):
        raise SystemExit(
            f"drag_trainer: transformers {transformers.__version__} is too old for Qwen3-VL: "
            "pip install -U 'transformers>=4.57'"
        )


# ----------------------------------------------------------------------------- model


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


def load_processor(args, is_main: bool = True):
    """The model's processor (None for text-only models) with the pixel limits applied; a refusal is reported."""
    from transformers import AutoProcessor

    processor, refused = None, None
    for kwargs in ({"min_pixels": args.min_pixels, "max_pixels": args.max_pixels}, {}):
        try:
            processor = AutoProcessor.from_pretrained(args.model, **kwargs)
            break
        except Exception as err:  # noqa: BLE001 - text-only models have no processor; some refuse the pixel options
            refused = refused or err
            processor = None
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is not None:
        problem = apply_pixels(image_processor, args.min_pixels, args.max_pixels)
        if problem and getattr(args, "images", False):
            raise SystemExit(f"drag_trainer: {problem}; pass limits this processor accepts")
        if problem and is_main:
            print(f"warning: {problem}", file=sys.stderr, flush=True)
    elif getattr(args, "images", False):
        raise SystemExit(f"drag_trainer: --images, but {args.model} has no image processor ({refused})")
    return processor


def load_model(args, device, world: int, for_training: bool = True, is_main: bool = True):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    processor = load_processor(args, is_main)
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
            raise SystemExit(
                "drag_trainer: --4bit needs bitsandbytes on this host: "
                "pip install 'bitsandbytes>=0.45' (or drop --4bit)"
            ) from err
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype
        )
    if device.type == "cuda":
        kwargs["device_map"] = {"": device} if world > 1 or for_training else "auto"
    try:
        from transformers import AutoModelForImageTextToText

        model = AutoModelForImageTextToText.from_pretrained(args.model, **kwargs)
    except (ValueError, KeyError, ImportError):
        model = AutoModelForCausalLM.from_pretrained(args.model, **kwargs)
    if device.type != "cuda":
        model.to(device)
    return model, tokenizer, processor


def prepare_base(model, args):
    """Before any adapter: 4-bit preparation, or gradient checkpointing with input gradients.

    Both the new-adapter path and DPO from an SFT adapter go through here: without checkpointing an
    8B model's activations at the default batch do not fit in 80 GB.
    """
    if getattr(args, "four_bit", False):
        from peft import prepare_model_for_kbit_training

        return prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=args.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        # The base weights are frozen: without this, checkpointed blocks see inputs that need no
        # gradient and the LoRA weights inside them would get none.
        model.enable_input_require_grads()
    return model


def wrap_lora(model, args):
    from peft import LoraConfig, get_peft_model

    try:
        from peft.utils.constants import DUMMY_TARGET_MODULES as dummy
    except ImportError:
        dummy = lora.DUMMY_TARGET_MODULES
    if args.tune_llm:
        unmatched = lora.unmatched_targets((n for n, _ in model.named_modules()), args.lora_targets)
        if unmatched:
            raise SystemExit(
                f"drag_trainer: --lora-targets {', '.join(unmatched)} "
                f"match no module of the language model in {args.model}"
            )
    save = lora.modules_to_save(args.tune_vision, args.tune_mlp)
    config = LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        bias="none",
        task_type="CAUSAL_LM",
        target_modules=lora.target_pattern(args.lora_targets, args.tune_llm, dummy),
        modules_to_save=save or None,
    )
    return get_peft_model(model, config)


def continue_adapter(model, args, is_main: bool):
    """DPO from an SFT adapter: the adapter trained further, a frozen copy of it the reference.

    The reference is the SFT model, not the bare base model: otherwise the first loss is already
    below ln 2 and beta pulls the policy back towards the base model instead of the SFT model.
    """
    from peft import PeftModel

    model = PeftModel.from_pretrained(model, args.sft_adapter, is_trainable=True)
    if is_main:
        cfg = model.peft_config["default"]
        print(
            f"continuing the SFT adapter {args.sft_adapter} "
            f"(LoRA r {cfg.r}, alpha {cfg.lora_alpha}: its own settings; --lora-* options do not apply)",
            file=sys.stderr,
            flush=True,
        )
    model.load_adapter(args.sft_adapter, adapter_name="reference", is_trainable=False)
    model.set_adapter("default")
    return model, "reference"


def build_trainable(model, args, is_main: bool):
    """(model with adapters, name of the DPO reference adapter or None, whether fp32 copies need bf16 autocast)."""
    import torch

    model = prepare_base(model, args)
    ref_adapter = None
    if args.command == "dpo" and getattr(args, "sft_adapter", None):
        model, ref_adapter = continue_adapter(model, args, is_main)
    else:
        model = wrap_lora(model, args)
    if args.command == "dpo":
        # As TRL's disable_dropout: with dropout on, the policy and reference passes drop different
        # units, so the margin is noise from the first step.
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    problem = lora.nothing_trained_message(
        trainable, f"--tune-llm {args.tune_llm}, --tune-mlp {args.tune_mlp}, --tune-vision {args.tune_vision}"
    )
    if problem:
        raise SystemExit(problem)
    upcast = False
    for name, p in model.named_parameters():
        if p.requires_grad and lora.keep_in_fp32(name) and p.dtype in (torch.bfloat16, torch.float16):
            p.data = p.data.float()
            upcast = True
    return model, ref_adapter, upcast


def param_groups(model, args):
    groups: dict[str, list] = {"lora": [], "vision": [], "merger": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = "merger" if "merger" in name else "vision" if "visual" in name else "lora"
        groups[key].append(p)
    lrs = {"lora": args.lr, "vision": args.vision_lr or args.lr / 10, "merger": args.projector_lr or args.lr}
    return [
        {"params": ps, "lr": lrs[k], "weight_decay": args.weight_decay, "name": k} for k, ps in groups.items() if ps
    ]


# ----------------------------------------------------------------------------- encoding


class Encoder:
    """Chat rows to token ids and labels; image tokens counted before truncation (images.py).

    ``image_size(path) -> (width, height)`` and ``geometry`` (patch, merge, min_pixels,
    max_pixels) are needed only with --images.
    """

    def __init__(self, tokenizer, processor, args, image_size=None, geometry=None):
        self.tok = tokenizer
        self.processor = processor
        self.max_length = args.max_length
        self.images = bool(getattr(args, "images", False))
        self.image_size = image_size
        self.geometry = geometry
        self.truncated = 0
        self.too_long = 0
        self.fallbacks = 0
        self.skipped = 0
        self.image_pad = -1
        self.vision_start = None
        if self.images:
            self.image_pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
            self.vision_start = tokenizer.convert_tokens_to_ids("<|vision_start|>")

    def render(self, messages, tools, generation: bool) -> str:
        if not messages:
            return ""
        return self.tok.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=generation)

    def encode_spans(self, text: str, spans):
        enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        return list(ids), labels_from_offsets(ids, offsets, spans)

    def image_counts(self, ex: Example, text: str) -> list[int]:
        if not (self.images and ex.images):
            return []
        if self.processor is None or self.geometry is None:
            raise SystemExit(
                f"drag_trainer: --images, but {getattr(self.tok, 'name_or_path', 'the model')} has no image processor"
            )
        slots = text.count("<|image_pad|>")
        if slots != len(ex.images):
            raise SystemExit(
                f"line {ex.line}: {len(ex.images)} images but {slots} image slots in the rendered text: "
                f'put {{"type": "image"}} parts in the messages'
            )
        patch, merge, lo, hi = self.geometry
        counts = []
        for path in ex.images:
            try:
                width, height = self.image_size(path)
                counts.append(image_tokens(width, height, patch, merge, lo, hi))
            except (OSError, ValueError) as err:
                raise SystemExit(f"line {ex.line}: image {path}: {err}") from err
        return counts

    def sft(self, ex: Example, strategy: str):
        text, turns = assistant_spans(lambda m, g: self.render(m, ex.tools, g), ex.messages)
        spans, fell_back = learned_spans(strategy, text, turns)
        self.fallbacks += fell_back
        ids, labels = self.encode_spans(text, spans)
        counts = self.image_counts(ex, text)
        try:
            ids, labels, kept, truncated = fit(ids, labels, self.image_pad, counts, self.max_length, self.vision_start)
        except ValueError as err:
            raise SystemExit(f"line {ex.line}: {err}: list the row's page images in its images column") from err
        self.truncated += truncated
        if all(lab == IGNORE_INDEX for lab in labels[1:]):
            self.skipped += 1
            return None
        counts = counts[:kept]
        return {
            "input_ids": ids,
            "labels": labels,
            "text": text,
            "images": ex.images[:kept] if self.images else [],
            "image_tokens": counts,
            "length": len(ids) - len(counts) + sum(counts),
        }

    def dpo(self, ex: Example):
        """Both rows of a pair, or None. A pair longer than --max-length is skipped whole, never cut:
        a cut would drop the completion's end-of-turn token (or split an image) in one row only."""
        prompt = self.render(ex.messages, ex.tools, True)
        rows = []
        for completion in (ex.chosen, ex.rejected):
            full = self.render(ex.messages + completion, ex.tools, False)
            start = common_prefix_length(prompt, full)
            ids, labels = self.encode_spans(full, [(start, len(full))])
            counts = self.image_counts(ex, full)
            length = len(ids) - len(counts) + sum(counts)
            if length > self.max_length:
                self.too_long += 1
                return None
            if all(lab == IGNORE_INDEX for lab in labels[1:]):
                self.skipped += 1
                return None
            rows.append(
                {
                    "input_ids": ids,
                    "labels": labels,
                    "text": full,
                    "images": ex.images if self.images else [],
                    "image_tokens": counts,
                    "length": length,
                }
            )
        return rows


def to_tensors(rows, pad_id, device, processor=None, image_pad=-1, mm_token_types=True):
    """A padded batch as tensors; image slots expanded to the counted tokens, which are never learned."""
    import torch

    extra: dict[str, Any] = {}
    if any(r["images"] for r in rows):
        from PIL import Image

        paths = [p for r in rows for p in r["images"]]
        out = processor.image_processor(images=[Image.open(p).convert("RGB") for p in paths], return_tensors="pt")
        merge = getattr(processor.image_processor, "merge_size", 2)
        made = (out["image_grid_thw"].prod(-1) // (merge * merge)).tolist()
        counted = [c for r in rows for c in r["image_tokens"]]
        if made != counted:
            raise SystemExit(
                f"drag_trainer: the image processor made {made} tokens for {paths}, the trainer counted {counted}: "
                "this processor sizes images differently (please report it with the model's name)"
            )
        rows = [expand(r["input_ids"], r["labels"], image_pad, r["image_tokens"]) if r["images"] else r for r in rows]
        extra = {"pixel_values": out["pixel_values"].to(device), "image_grid_thw": out["image_grid_thw"].to(device)}
    batch = pad_batch(rows, pad_id, multiple_of=8)
    if not mm_token_types:
        batch.pop("mm_token_type_ids", None)
    tensors = {k: torch.tensor(v, device=device) for k, v in batch.items()}
    tensors.update(extra)
    return tensors


def forward_logits(model, batch, keep_arg: bool):
    """Logits for the positions that predict learned labels only, and those labels (schedule.completion_window)."""
    keep, first = schedule.completion_window(batch["labels"].tolist())
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if keep_arg:
        logits = model(**inputs, logits_to_keep=keep).logits
    else:
        logits = model(**inputs).logits[:, -keep:]
    return logits[:, :-1], batch["labels"][:, first:]


def token_logps(model, batch, keep_arg: bool):
    """Per-token log-probabilities of the labels over the completion positions, and their mask."""
    import torch

    logits, labels = forward_logits(model, batch, keep_arg)
    mask = labels != IGNORE_INDEX
    safe = labels.masked_fill(~mask, 0)
    logits = logits.float()
    logp = logits.gather(-1, safe.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    return logp * mask, mask


def _accepts_logits_to_keep(model) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        return "logits_to_keep" in inspect.signature(type(base).forward).parameters
    except (TypeError, ValueError):
        return False


def _image_size(path):
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def _geometry(processor, args):
    ip = getattr(processor, "image_processor", None)
    if ip is None or not getattr(args, "images", False):
        return None
    lo, hi = effective_pixels(ip)
    return (getattr(ip, "patch_size", 14), getattr(ip, "merge_size", 2), lo or args.min_pixels, hi or args.max_pixels)


# ----------------------------------------------------------------------------- setup


@dataclass
class Run:
    """Everything ``setup`` prepares for ``loop`` and ``finish``."""

    args: Any
    world: int
    rank: int
    device: Any
    model: Any  # wrapped in DistributedDataParallel when world > 1
    raw_model: Any
    tokenizer: Any
    processor: Any
    ref_adapter: str | None
    autocast: bool
    keep_arg: bool
    mm_types: bool
    train: tuple  # (items, weights, units): units are learned tokens (SFT) or 1 per pair (DPO)
    val: tuple
    lengths: list
    optimizer: Any = None
    base_lrs: list = field(default_factory=list)
    total: int = 1
    per_epoch: int = 1
    warmup: int = 0
    log: Any = None
    meta: dict = field(default_factory=dict)
    step: int = 0
    saved_step: int = -1
    rng: Any = None
    flags: dict = field(default_factory=lambda: {"term": False, "usr1": False})

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _encode(enc: Encoder, task: str, args, examples):
    out, weights, missing = [], [], 0
    for ex in examples:
        item = enc.sft(ex, args.mask_strategy) if task == "sft" else enc.dpo(ex)
        if item is None:
            continue
        w, miss = sample_weight(args.weight_scheme, ex.meta, args.min_weight) if task == "sft" else (1.0, False)
        missing += miss
        out.append(item)
        weights.append(w)
    units = [sum(1 for lab in d["labels"][1:] if lab != IGNORE_INDEX) for d in out] if task == "sft" else [1] * len(out)
    return out, weights, units, missing


def setup(args) -> Run:
    import importlib.util

    import torch
    import transformers

    # SIGUSR1's default action ends the process: from here on it asks for a checkpoint instead, which
    # loop() writes at its first step boundary.
    flags = {"term": False, "usr1": False}
    signal.signal(signal.SIGUSR1, lambda signum, frame: flags.update(usr1=True))
    world, rank, device = _dist()
    is_main = rank == 0
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    task = args.command
    report_to = resolve_report_to(args.report_to, importlib.util.find_spec("tensorboard") is not None)
    resume_from = checkpoint.resolve_resume(args.resume, args.output_dir)
    if resume_from:  # before the model is loaded: a wrong checkpoint fails in seconds
        problem = checkpoint.mismatch(
            checkpoint.read_state(resume_from).get("args") or {}, checkpoint.fingerprint(args, world)
        )
        if problem:
            raise SystemExit(f"drag_trainer: cannot resume from {resume_from}: {problem}")
    examples, errors = load_examples(task, args.train_data)
    for e in errors[:20]:
        print(f"skipped: {e}", file=sys.stderr)
    if not examples:
        raise SystemExit(
            f"drag_trainer: no usable {task} records in {args.train_data} "
            f"({len(errors)} problems; python -m drag_trainer check-data --task {task} {args.train_data})"
        )
    val_examples = load_examples(task, args.val_data)[0] if args.val_data else []

    model, tokenizer, processor = load_model(args, device, world, is_main=is_main)
    model, ref_adapter, upcast = build_trainable(model, args, is_main)
    enc = Encoder(tokenizer, processor, args, _image_size, _geometry(processor, args))
    data, weights, units, missing = _encode(enc, task, args, examples)
    val_data, val_weights, val_units, _ = _encode(enc, task, args, val_examples)
    if not data:
        raise SystemExit(
            f"drag_trainer: none of the {len(examples)} samples has a token to learn with --mask-strategy "
            f"{getattr(args, 'mask_strategy', 'assistant')} "
            "(or they were longer than --max-length: raise it)"
        )
    if task == "sft" and sum(weights) <= 0:
        raise SystemExit(
            f"drag_trainer: every sample has weight 0 under --weight-scheme {args.weight_scheme}: "
            "nothing to learn (use --min-weight or another scheme)"
        )
    lengths = [d["length"] if task == "sft" else max(r["length"] for r in d) for d in data]
    n_batches = math.ceil(len(data) / args.batch_size)
    if n_batches < world:
        raise SystemExit(
            f"drag_trainer: {len(data)} samples make {n_batches} batches of {args.batch_size}, "
            f"fewer than the {world} processes: lower --batch-size or use fewer GPUs"
        )
    run = Run(
        args=args,
        world=world,
        rank=rank,
        device=device,
        model=model,
        raw_model=model,
        tokenizer=tokenizer,
        processor=processor,
        ref_adapter=ref_adapter,
        autocast=upcast and device.type == "cuda",
        keep_arg=_accepts_logits_to_keep(model),
        mm_types=version_at_least(transformers.__version__, "5"),
        train=(data, normalise(weights), units),
        val=(val_data, normalise(val_weights), val_units),
        lengths=lengths,
        flags=flags,
    )
    run.per_epoch = schedule.steps_in_epoch(n_batches, world, args.grad_accum)
    run.total = args.max_steps or max(1, math.ceil(args.epochs * run.per_epoch))
    run.warmup = int(run.total * args.warmup_ratio)
    run.meta = {
        "base_model": args.model,
        "task": task,
        "args": {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool)) or v is None},
    }
    if is_main:
        dropped = n_batches % world
        print(
            f"{len(data)} {task} samples ({len(errors)} bad lines skipped, "
            f"{enc.truncated} truncated to {args.max_length}, "
            f"{enc.too_long} pairs over --max-length skipped, "
            f"{enc.skipped} with nothing to learn, {enc.fallbacks} mask fallbacks, "
            f"{missing} without the weight's field); {run.total} "
            f"steps of {run.per_epoch} per epoch"
            + (
                f"; {dropped} of {n_batches} batches left out each epoch "
                f"so that the {world} processes get the same number"
                if dropped
                else ""
            )
            + (
                f"; learning {100 * sum(units) / max(1, sum(lengths)):.1f}% of tokens"
                if task == "sft"
                else f"; beta {args.beta}"
            ),
            file=sys.stderr,
            flush=True,
        )
    state = _load_trainable(run, resume_from) if resume_from else None
    if world > 1:
        run.model = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=bool(args.tune_vision or args.tune_mlp),
        )
    run.model.train()
    groups = param_groups(model, args)
    run.optimizer = torch.optim.AdamW(groups, lr=args.lr, weight_decay=args.weight_decay)
    run.base_lrs = [g["lr"] for g in groups]
    if state is not None:
        run.optimizer.load_state_dict(
            torch.load(os.path.join(resume_from, "optimizer.pt"), map_location=device, weights_only=True)
        )
        if is_main:
            print(f"resuming from {resume_from} at step {run.step} of {run.total}", file=sys.stderr, flush=True)
    sink = None
    if report_to == "tensorboard" and is_main:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: a resumed run replaces what the stopped one logged after its checkpoint.
        sink = SummaryWriter(log_dir=args.output_dir, purge_step=run.step or None)
    if is_main:
        checkpoint.clear_request(args.output_dir)  # before trainer_log.jsonl exists: a request from then on counts
    run.log = TrainLog(args.output_dir, run.total, is_main, resume_step=run.step, sink=sink)
    return run


def _load_trainable(run: Run, path: str) -> dict:
    """Trained tensors, step and RNG states from a checkpoint (the optimizer's state is loaded once it exists)."""
    import torch

    state = checkpoint.read_state(path)
    problem = checkpoint.mismatch(state.get("args") or {}, checkpoint.fingerprint(run.args, run.world))
    if problem:
        raise SystemExit(f"drag_trainer: cannot resume from {path}: {problem}")
    trained = torch.load(os.path.join(path, "trainable.pt"), map_location=run.device, weights_only=True)
    for name, p in run.raw_model.named_parameters():
        if p.requires_grad:
            if name not in trained:
                raise SystemExit(f"drag_trainer: cannot resume from {path}: it has no tensor {name}")
            p.data.copy_(trained[name].to(p.dtype))
    states = torch.load(os.path.join(path, "rng_state.pt"), weights_only=True)
    run.rng = states[run.rank] if run.rank < len(states) else None
    run.step = run.saved_step = state["step"]
    return state


# ----------------------------------------------------------------------------- loop


def _autocast(run: Run):
    import torch

    return (
        torch.autocast(device_type=run.device.type, dtype=torch.bfloat16) if run.autocast else contextlib.nullcontext()
    )


@contextlib.contextmanager
def _reference(run: Run):
    """The DPO reference: the frozen SFT adapter when continuing one, else the base model."""
    if run.ref_adapter is None:
        with run.raw_model.disable_adapter():
            yield
        return
    run.raw_model.set_adapter(run.ref_adapter)
    try:
        yield
    finally:
        run.raw_model.set_adapter("default")  # also makes the trained adapter's weights trainable again


def micro_loss(run: Run, split, idx, norm: float, model):
    """This micro-batch's share of the step's loss: summed token losses (weighted) divided by the step's norm."""
    import torch

    items, item_weights, _ = split
    if run.args.command == "sft":
        batch = to_tensors(
            [items[i] for i in idx],
            run.tokenizer.pad_token_id,
            run.device,
            run.processor,
            _image_pad(run),
            run.mm_types,
        )
        with _autocast(run):
            logits, labels = forward_logits(model, batch, run.keep_arg)
        mask = labels != IGNORE_INDEX
        ce = torch.zeros(labels.shape, device=run.device)
        ce[mask] = torch.nn.functional.cross_entropy(logits[mask].float(), labels[mask], reduction="none")
        return window_loss(ce.sum(1), [item_weights[i] for i in idx], norm)
    pairs = [items[i] for i in idx]
    batch = to_tensors(
        [p[0] for p in pairs] + [p[1] for p in pairs],
        run.tokenizer.pad_token_id,
        run.device,
        run.processor,
        _image_pad(run),
        run.mm_types,
    )
    with torch.no_grad(), _reference(run), _autocast(run):
        ref = token_logps(run.raw_model, batch, run.keep_arg)[0].sum(-1)
    with _autocast(run):
        policy = token_logps(model, batch, run.keep_arg)[0].sum(-1)
    n = len(pairs)
    margin = (policy[:n] - ref[:n]) - (policy[n:] - ref[n:])
    return -torch.nn.functional.logsigmoid(run.args.beta * margin).sum() / norm


def _image_pad(run: Run) -> int:
    if not getattr(run.args, "images", False):
        return -1
    return run.tokenizer.convert_tokens_to_ids("<|image_pad|>")


def evaluate(run: Run):
    """Validation loss per learned token (SFT) or per pair (DPO): each rank takes every world-th batch
    of the validation set with the bare model (no collectives inside), then one all-reduce adds up."""
    import torch

    items, _, units = run.val
    if not items:
        return None
    run.raw_model.eval()
    starts = list(range(0, len(items), run.args.batch_size))[run.rank :: run.world]
    total, count = 0.0, 0.0
    with torch.no_grad():
        for start in starts:
            idx = list(range(start, min(len(items), start + run.args.batch_size)))
            total += float(micro_loss(run, run.val, idx, 1.0, run.raw_model))
            count += float(sum(units[i] for i in idx))
    run.raw_model.train()
    if run.world > 1:
        import torch.distributed as dist

        t = torch.tensor([total, count], dtype=torch.float64, device=run.device)
        dist.all_reduce(t)
        total, count = float(t[0]), float(t[1])
    return total / max(1.0, count)


def _agree(run: Run, loss_value: float):
    """(loss averaged over ranks, any rank got SIGTERM, any rank got SIGUSR1 or rank 0 sees the request file).

    One collective per step, so every rank stops (or checkpoints) at the same step."""
    if run.is_main and checkpoint.requested(run.args.output_dir):
        run.flags["usr1"] = True
    if run.world == 1:
        return loss_value, run.flags["term"], run.flags["usr1"]
    import torch
    import torch.distributed as dist

    t = torch.tensor(
        [loss_value, float(run.flags["term"]), float(run.flags["usr1"])], dtype=torch.float64, device=run.device
    )
    dist.all_reduce(t)
    return float(t[0]) / run.world, bool(t[1] > 0), bool(t[2] > 0)


def _restore_rng(run: Run) -> None:
    import torch

    if not run.rng:
        return
    python = run.rng.get("python")
    if python is not None:
        random.setstate((python[0], tuple(python[1]), python[2]))
    torch.set_rng_state(run.rng["torch"].cpu())
    if torch.cuda.is_available() and run.rng.get("cuda"):
        torch.cuda.set_rng_state_all([t.cpu() for t in run.rng["cuda"]])


def loop(run: Run) -> None:
    import torch

    args = run.args

    def on_signal(signum, frame):  # noqa: ARG001
        run.flags["usr1" if signum == signal.SIGUSR1 else "term"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGUSR1, on_signal)
    _restore_rng(run)
    params = [p for g in run.optimizer.param_groups for p in g["params"]]
    started, tokens, recent = time.monotonic(), 0, []
    while run.step < run.total:
        epoch, done = divmod(run.step, run.per_epoch)
        shards = schedule.all_shards(length_grouped_order(run.lengths, args.batch_size, args.seed + epoch), run.world)
        mine = shards[run.rank]
        for index, window in enumerate(schedule.windows(len(mine), args.grad_accum)):
            if index < done:
                continue  # resumed: these steps were taken before the checkpoint
            if run.step >= run.total:
                break
            norm = schedule.step_norm(shards, [i for i, _ in window], run.train[2])
            for g, base in zip(run.optimizer.param_groups, run.base_lrs):
                g["lr"] = base * schedule.cosine(run.step, run.total, run.warmup)
            loss_value = 0.0
            for i, sync in window:
                # Gradients are all-reduced once per step, on its last micro-batch.
                with run.model.no_sync() if run.world > 1 and not sync else contextlib.nullcontext():
                    loss = micro_loss(run, run.train, mine[i], norm, run.model)
                    loss.backward()
                loss_value += float(loss.detach())
                tokens += sum(run.lengths[j] for j in mine[i]) * run.world
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            run.optimizer.step()
            run.optimizer.zero_grad(set_to_none=True)
            run.step += 1
            loss_value, term, usr1 = _agree(run, loss_value)
            if term:
                _stop_status(run, "cancelled", "stopped by SIGTERM")
                raise Cancelled()
            recent.append(loss_value)
            save_now = args.save_steps > 0 and run.step % args.save_steps == 0
            eval_loss = evaluate(run) if save_now else None
            if run.step % args.logging_steps == 0 or run.step == run.total or eval_loss is not None:
                tps = round(tokens / max(1e-9, time.monotonic() - started), 1) if args.command == "sft" else None
                run.log.log(
                    run.step,
                    sum(recent) / len(recent),
                    run.optimizer.param_groups[0]["lr"],
                    epoch + (index + 1) / run.per_epoch,
                    eval_loss,
                    tokens_per_second=tps,
                )
                recent = []
            if save_now or usr1:
                save_checkpoint(run, epoch, index + 1)
            if usr1:
                if run.is_main:
                    checkpoint.clear_request(args.output_dir)
                message = f"stopped by SIGUSR1 after writing checkpoint-{run.step}; continue with --resume auto"
                _stop_status(run, "preempted", message)
                raise Preempted(message)


def _stop_status(run: Run, state: str, message: str) -> None:
    """status.json before any rank exits: under torchrun, the first rank to exit gets the others killed."""
    if run.is_main:
        run.log.step = run.step
        run.log.status(state, message)
    if run.world > 1:
        import torch.distributed as dist

        dist.barrier()


# ----------------------------------------------------------------------------- save


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


def save_checkpoint(run: Run, epoch: int, steps_done_in_epoch: int) -> None:
    """checkpoint-<step>: every rank hands its RNG state to rank 0, which writes (checkpoint.py has the layout)."""
    import torch

    if run.saved_step == run.step:
        return
    rng = {
        "python": random.getstate(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    states = [rng]
    if run.world > 1:
        import torch.distributed as dist

        states = [None] * run.world
        dist.all_gather_object(states, rng)
    if run.is_main:

        def files(path):
            _save(run.raw_model, run.tokenizer, run.processor, path, {**run.meta, "step": run.step})
            torch.save(
                {n: p.detach() for n, p in run.raw_model.named_parameters() if p.requires_grad},
                os.path.join(path, "trainable.pt"),
            )
            torch.save(run.optimizer.state_dict(), os.path.join(path, "optimizer.pt"))
            torch.save(states, os.path.join(path, "rng_state.pt"))

        state = {
            "epoch": epoch,
            "steps_done_in_epoch": steps_done_in_epoch,
            "total_steps": run.total,
            "args": checkpoint.fingerprint(run.args, run.world),
        }
        checkpoint.write(run.args.output_dir, run.step, state, files)
        checkpoint.rotate(run.args.output_dir, max(1, run.args.save_total_limit))
    if run.world > 1:
        import torch.distributed as dist

        dist.barrier()  # no rank exits (ending the job under torchrun) while rank 0 still writes
    run.saved_step = run.step


def finish(run: Run) -> None:
    if run.is_main:
        _save(
            run.raw_model,
            run.tokenizer,
            run.processor,
            os.path.join(run.args.output_dir, "final"),
            {**run.meta, "step": run.step},
        )
        run.log.status("succeeded")
    _close(run)


def _close(run: Run) -> None:
    if run.log is not None:
        run.log.close()
    if run.world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()


def train(args) -> int:
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGUSR1)}
    try:
        run = setup(args)
        try:
            loop(run)
        except Preempted:
            _close(run)
            raise
        finish(run)
        return 0
    finally:
        for sig, handler in handlers.items():  # a caller that trains twice in one process gets its own back
            signal.signal(sig, handler)


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
    except Preempted as err:
        _final_status(log_dir, "preempted", str(err))
        return checkpoint.PREEMPTED_EXIT
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
    write_json_atomic(
        path,
        {
            **previous,
            "state": state,
            "last_error": error,
            "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
