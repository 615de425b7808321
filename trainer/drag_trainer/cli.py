"""``python -m drag_trainer sft|dpo|merge|check-data|env`` (argument handling: standard library only)."""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .checkpoint import PREEMPTED_EXIT
from .masks import DEFAULT_STRATEGY, STRATEGIES
from .trainlog import REPORT_TO
from .weights import SCHEMES

DEFAULT_MODEL = "Qwen/Qwen3-VL-8B-Thinking"
DEFAULT_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


def _common(p: argparse.ArgumentParser, output_dir: str) -> None:
    g = p.add_argument_group("data and model")
    g.add_argument(
        "--train-data", required=True, help="training JSONL written by drag format (TRL, DRAG or LLaMA-Factory shape)"
    )
    g.add_argument(
        "--val-data", help="validation JSONL; evaluated every --save-steps steps (eval_loss in trainer_log.jsonl)"
    )
    g.add_argument(
        "--output-dir",
        default=output_dir,
        help=f"checkpoints, trainer_log.jsonl, status.json and final/ (default {output_dir})",
    )
    g.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"base model: Hub id or local folder (default {DEFAULT_MODEL})"
    )
    g.add_argument(
        "--images", action="store_true", help="feed the page images listed in the data's images column to the model"
    )
    g.add_argument(
        "--max-length",
        type=int,
        default=2048,
        help="longest sample in tokens; longer ones are truncated and counted (default 2048)",
    )
    g.add_argument("--max-pixels", type=int, default=1003520, help="largest image in pixels (default 1280*28*28)")
    g.add_argument("--min-pixels", type=int, default=200704, help="smallest image in pixels (default 256*28*28)")
    t = p.add_argument_group("optimisation")
    t.add_argument("--epochs", type=float, default=3, help="passes over the data (default 3)")
    t.add_argument("--max-steps", type=int, default=0, help="stop after this many optimizer steps (0 = by --epochs)")
    t.add_argument("--batch-size", type=int, default=4, help="samples per device per micro-batch (default 4)")
    t.add_argument("--grad-accum", type=int, default=4, help="micro-batches per optimizer step (default 4)")
    t.add_argument("--lr", type=float, default=2e-4, help="learning rate of the LoRA weights (default 2e-4)")
    t.add_argument(
        "--warmup-ratio", type=float, default=0.03, help="linear warm-up share of the steps, then cosine (default 0.03)"
    )
    t.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    t.add_argument("--seed", type=int, default=42, help="seed for order, dropout and initialisation (default 42)")
    t.add_argument("--logging-steps", type=int, default=10, help="write trainer_log.jsonl every N steps (default 10)")
    t.add_argument(
        "--save-steps",
        type=int,
        default=100,
        help="checkpoint (adapter, optimizer, RNG, data position) and evaluate every N steps (default 100; 0 = never)",
    )
    t.add_argument("--save-total-limit", type=int, default=3, help="checkpoints kept (default 3)")
    t.add_argument(
        "--resume",
        default=None,
        metavar="auto|PATH",
        help="continue from a checkpoint: auto = the newest complete one in --output-dir "
        "(none there: start at step 0), or a checkpoint folder. "
        f"SIGUSR1 (e.g. SLURM --signal=USR1@120) writes a checkpoint and exits {PREEMPTED_EXIT}",
    )
    t.add_argument(
        "--report-to",
        choices=REPORT_TO,
        default=None,
        help="TensorBoard event files in --output-dir (default: tensorboard when it is installed)",
    )
    t.add_argument(
        "--no-gradient-checkpointing", dest="gradient_checkpointing", action="store_false", help="faster, more memory"
    )
    l = p.add_argument_group("LoRA")
    l.add_argument("--lora-r", type=int, default=16, help="LoRA rank (default 16)")
    l.add_argument("--lora-alpha", type=int, default=32, help="LoRA alpha (default 32)")
    l.add_argument("--lora-dropout", type=float, default=0.05, help="LoRA dropout (default 0.05)")
    l.add_argument(
        "--lora-targets", default=DEFAULT_TARGETS, help=f"comma-separated module names (default {DEFAULT_TARGETS})"
    )
    l.add_argument(
        "--4bit",
        dest="four_bit",
        action="store_true",
        help="QLoRA: load the base model in 4-bit NF4 (needs bitsandbytes)",
    )
    l.add_argument(
        "--no-4bit", dest="four_bit", action="store_false", help="bf16 base model (the default; DRAG's flag, kept)"
    )
    c = p.add_argument_group("components (DRAG's flags)")
    c.add_argument(
        "--tune-vision", action="store_true", help="also train the vision tower (fully, saved with the adapter)"
    )
    c.add_argument(
        "--tune-mlp", action="store_true", help="also train the vision-language merger (fully, saved with the adapter)"
    )
    c.add_argument(
        "--tune-llm", dest="tune_llm", action="store_true", default=True, help="LoRA on the language model (default)"
    )
    c.add_argument(
        "--no-tune-llm",
        dest="tune_llm",
        action="store_false",
        help="no LoRA on the language model (needs --tune-vision or --tune-mlp)",
    )
    c.add_argument("--vision-lr", type=float, help="learning rate of the vision tower (default lr/10)")
    c.add_argument("--projector-lr", type=float, help="learning rate of the merger (default lr)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m drag_trainer",
        description="LoRA SFT, DPO and merge for Qwen-VL on DRAG Studio's data. "
        "Multi-GPU: torchrun --nproc_per_node N -m drag_trainer sft ... (or accelerate launch); only rank 0 writes.",
    )
    parser.add_argument("--version", action="version", version=f"drag_trainer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sft = sub.add_parser(
        "sft",
        help="supervised finetuning with LoRA",
        description="LoRA SFT with dynamic padding, offset-exact label masks and weighted loss.",
    )
    _common(sft, "./checkpoints/sft")
    s = sft.add_argument_group("SFT")
    s.add_argument(
        "--mask-strategy",
        choices=STRATEGIES,
        default=DEFAULT_STRATEGY,
        help=f"which tokens are learned (default {DEFAULT_STRATEGY}: the assistant turns; "
        "none = every token as DRAG, system prompt and tools included; padding never)",
    )
    s.add_argument(
        "--weight-scheme",
        choices=SCHEMES,
        default="none",
        help="sample weights (default none), divided by their mean: "
        "a sample's tokens count w times as much as an average sample's",
    )
    s.add_argument("--min-weight", type=float, default=0.0, help="floor for every weight (0.1 reproduces DRAG's)")

    dpo = sub.add_parser(
        "dpo",
        help="direct preference optimisation with LoRA",
        description="DPO (sigmoid loss); the reference model is the same model with the adapter disabled, "
        "so no second copy is loaded.",
    )
    _common(dpo, "./checkpoints/dpo")
    dpo.add_argument(
        "--beta",
        type=float,
        default=0.1,
        help="DPO beta (default 0.1); dropout is off in DPO, as in TRL, "
        "so that policy and reference see the same network",
    )
    dpo.add_argument(
        "--sft-adapter",
        help="start from an SFT adapter: its weights are trained further and a frozen copy of it is the reference "
        "(else the reference is the base model)",
    )

    merge = sub.add_parser("merge", help="merge a LoRA adapter into its base model")
    merge.add_argument("--adapter-path", required=True, help="the adapter folder (e.g. <output-dir>/final)")
    merge.add_argument("--output-path", required=True, help="where the merged model is written")
    merge.add_argument("--model", default=None, help="base model (default: the one recorded in the adapter's config)")

    check = sub.add_parser("check-data", help="validate a data file (standard library only); names every bad line")
    check.add_argument("--task", choices=("sft", "dpo"), required=True)
    check.add_argument("file")
    check.add_argument("--json", action="store_true", help="machine-readable report")

    env = sub.add_parser("env", help="Python, torch, CUDA, GPUs and missing packages")
    env.add_argument("--json", action="store_true", help="machine-readable report")
    return parser


def validate_args(args: argparse.Namespace) -> str | None:
    """Problems with the options that argparse cannot see; None when fine."""
    if args.command in ("sft", "dpo"):
        if args.batch_size < 1 or args.grad_accum < 1:
            return "--batch-size and --grad-accum must be at least 1"
        if args.max_length < 16:
            return "--max-length must be at least 16"
        if not 0 < args.lr < 1:
            return "--lr must be in (0, 1)"
        if args.epochs <= 0 and args.max_steps <= 0:
            return "give --epochs > 0 or --max-steps > 0"
        if args.save_steps < 0 or args.save_total_limit < 1 or args.logging_steps < 1:
            return "--save-steps must be at least 0, --save-total-limit and --logging-steps at least 1"
        if not args.tune_llm and not (args.tune_vision or args.tune_mlp):
            return "--no-tune-llm leaves nothing to train: add --tune-vision or --tune-mlp"
        if not [t for t in args.lora_targets.split(",") if t.strip()] and args.tune_llm:
            return "--lora-targets is empty"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = validate_args(args)
    if problem:
        parser.error(problem)
    if args.command == "env":
        from .envcheck import format_report, report

        r = report()
        print(json.dumps(r) if args.json else format_report(r))
        return 0 if r["ok"] else 1
    if args.command == "check-data":
        from .data import check_file

        try:
            ok, errors = check_file(args.task, args.file)
        except OSError as err:
            print(f"{args.file}: {err.strerror}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps({"file": args.file, "task": args.task, "ok": ok, "errors": [str(e) for e in errors]}))
        else:
            for e in errors:
                print(e, file=sys.stderr)
            print(
                f"{args.file}: {ok} usable {args.task} records, "
                f"{len(errors)} problems{' (first 50 shown)' if len(errors) >= 50 else ''}"
            )
        return 0 if ok > 0 and not errors else 1
    # The training commands need torch, transformers and peft: imported only now.
    from . import train

    return train.run(args)
