"""What is trained (standard library only): LoRA targets, fully trained copies, and a check that something is.

``--lora-targets`` names module leaves (q_proj, …) of the language model only: the vision tower of
Qwen2.5-VL has gate/up/down_proj too, and those are excluded by the pattern. ``--tune-mlp`` trains
the vision-language merger fully and ``--tune-vision`` the whole vision tower (PEFT's
``modules_to_save``: saved with the adapter). With ``--no-tune-llm`` no LoRA layer is added (PEFT's
dummy target) and only those copies train.

The fully trained copies are kept in float32 even when the model is loaded in bf16: their updates
are about lr x 1e-3 of a weight, below bf16's resolution (8 bits of mantissa), so in bf16 most of
them would round away. The forward pass then runs under bf16 autocast.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# peft.utils.constants.DUMMY_TARGET_MODULES (PEFT >= 0.12): a LoRA config that adds no LoRA layer.
DUMMY_TARGET_MODULES = "dummy-target-modules"


def targets(lora_targets: str) -> list[str]:
    return sorted({t.strip() for t in lora_targets.split(",") if t.strip()})


def target_pattern(lora_targets: str, tune_llm: bool, dummy: str = DUMMY_TARGET_MODULES) -> str:
    """PEFT's ``target_modules``: a regex over module names, or the dummy target when the LLM is not tuned."""
    if not tune_llm:
        return dummy
    names = targets(lora_targets)
    if not names:
        raise ValueError("--lora-targets is empty")
    return rf"^(?!.*visual).*\.({'|'.join(re.escape(n) for n in names)})$"


def modules_to_save(tune_vision: bool, tune_mlp: bool) -> list[str]:
    if tune_vision:
        return ["visual"]  # the merger is part of the vision tower
    if tune_mlp:
        return ["merger"]
    return []


def unmatched_targets(module_names: Iterable[str], lora_targets: str) -> list[str]:
    """The target names that match no module of the language model (a typo, or another architecture)."""
    pattern = re.compile(target_pattern(lora_targets, True))
    leaves = {n.rsplit(".", 1)[-1] for n in module_names if pattern.match(n)}
    return [t for t in targets(lora_targets) if t not in leaves]


def keep_in_fp32(name: str) -> bool:
    """A trainable parameter that is a fully trained copy (not a LoRA matrix)."""
    return "modules_to_save" in name


def nothing_trained_message(trainable: Sequence[str], args_summary: str) -> str | None:
    if trainable:
        return None
    return (
        f"drag_trainer: this configuration trains no parameter ({args_summary}): "
        "check --lora-targets, --tune-llm, --tune-mlp, --tune-vision"
    )
