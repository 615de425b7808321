"""Checkpoints that a run can resume from (standard library only; the tensors are written by train.py).

Layout of ``<output-dir>/checkpoint-<step>/``:
  adapter_config.json, adapter_model.safetensors, tokenizer and processor files, drag_adapter.json
                      the PEFT adapter at that step (loadable and servable like final/)
  trainable.pt        every trained tensor, the float32 copies of --tune-mlp/--tune-vision included
  optimizer.pt        AdamW's state
  rng_state.pt        Python's and torch's random states (CPU and CUDA), one per rank
  trainer_state.json  step, epoch, micro-batches done in that epoch, the options that must not
                      change on resume; written last: a folder without it is not a checkpoint
The learning-rate schedule is a function of the step, so the step is the scheduler's state.

A checkpoint is written into ``checkpoint-<step>.partial`` and renamed when complete, so a run
stopped while saving leaves a ``.partial`` folder that is never picked (and is removed by the next
save). ``--resume auto`` picks the newest complete checkpoint in the output folder and starts from
step 0 when there is none; ``--resume PATH`` takes that checkpoint (or the newest in that folder).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from typing import Any

STATE_FILE = "trainer_state.json"
FILES = ("trainable.pt", "optimizer.pt", "rng_state.pt")
NAME = re.compile(r"^checkpoint-(\d+)$")
# Options that fix the data order, the model's trained parameters or the schedule: a checkpoint
# only continues the run that wrote it.
MUST_MATCH = (
    "command",
    "model",
    "train_data",
    "train_data_bytes",
    "world_size",
    "batch_size",
    "grad_accum",
    "seed",
    "epochs",
    "max_steps",
    "warmup_ratio",
    "max_length",
    "images",
    "mask_strategy",
    "weight_scheme",
    "min_weight",
    "lora_r",
    "lora_alpha",
    "lora_targets",
    "tune_llm",
    "tune_mlp",
    "tune_vision",
    "four_bit",
    "sft_adapter",
)

# A file that asks for the same as SIGUSR1 when the signal cannot reach the trainer's processes:
# torchrun itself dies of SIGUSR1 (it handles only TERM, INT, HUP and QUIT), so a SLURM batch script
# that starts torchrun takes the signal itself (--signal=B:USR1@120) and runs
# `touch <output-dir>/save-and-stop` in its trap. Rank 0 looks for it after every step.
REQUEST_FILE = "save-and-stop"

# The exit status after SIGUSR1 (SLURM's --signal=USR1@N before the time limit): a checkpoint was
# written and the run can continue with --resume auto. 75 is EX_TEMPFAIL: "try again later".
PREEMPTED_EXIT = 75


def read_state(path: str) -> dict[str, Any] | None:
    """The checkpoint's trainer_state.json when the folder is a complete checkpoint, else None."""
    m = NAME.match(os.path.basename(os.path.normpath(path)))
    try:
        with open(os.path.join(path, STATE_FILE), encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not state.get("complete") or not isinstance(state.get("step"), int):
        return None
    if m is None or int(m.group(1)) != state["step"]:
        return None
    if not all(os.path.isfile(os.path.join(path, f)) for f in FILES):
        return None
    return state


def complete_checkpoints(output_dir: str) -> list[tuple[int, str]]:
    """(step, path) of every complete checkpoint in ``output_dir``, oldest first."""
    try:
        names = os.listdir(output_dir)
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(output_dir, name)
        if NAME.match(name) and read_state(path) is not None:
            found.append((int(NAME.match(name).group(1)), path))
    return sorted(found)


def resolve_resume(resume: str | None, output_dir: str) -> str | None:
    """The checkpoint folder to continue from, or None to start at step 0; SystemExit when PATH is no checkpoint."""
    if not resume or resume == "none":
        return None
    if resume == "auto":
        found = complete_checkpoints(output_dir)
        return found[-1][1] if found else None
    if read_state(resume) is not None:
        return resume
    found = complete_checkpoints(resume)
    if found:
        return found[-1][1]
    raise SystemExit(
        f"drag_trainer: --resume {resume}: not a complete checkpoint "
        f"(no {STATE_FILE} marked complete, or a missing {', '.join(FILES)}) "
        "and no complete checkpoint-N folder inside it"
    )


def fingerprint(args: Any, world_size: int) -> dict[str, Any]:
    values = {**vars(args), "world_size": world_size}
    try:
        values["train_data_bytes"] = os.path.getsize(args.train_data)
    except (OSError, TypeError, AttributeError):
        values["train_data_bytes"] = None
    return {k: values.get(k) for k in MUST_MATCH}


def mismatch(saved: dict[str, Any], current: dict[str, Any]) -> str | None:
    """A sentence naming the first option that differs from the checkpoint's run; None when they agree."""
    for key in MUST_MATCH:
        if key in saved and saved.get(key) != current.get(key):
            flag = (
                "number of processes"
                if key == "world_size"
                else "training data size"
                if key == "train_data_bytes"
                else "--" + key.replace("_", "-")
            )
            return f"{flag} is {current.get(key)!r} but the checkpoint's run used {saved.get(key)!r}"
    return None


def write(output_dir: str, step: int, state: dict[str, Any], write_files: Callable[[str], None]) -> str:
    """Writes checkpoint-<step> atomically: files into .partial, the state file last, then a rename."""
    final = os.path.join(output_dir, f"checkpoint-{step}")
    partial = final + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    write_files(partial)
    state_path = os.path.join(partial, STATE_FILE)
    with open(state_path, "w", encoding="utf-8") as handle:
        json.dump({**state, "step": step, "complete": True}, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    if os.path.exists(final):
        shutil.rmtree(final)
    os.rename(partial, final)
    _fsync_dir(output_dir)
    return final


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# The job wrapper's own request file (DRAG Studio's SLURM wrapper sets it to its requeue_requested):
# the ranks of a multi-node job that srun starts get no signal, but they all see the job folder.
# Only the wrapper removes it, since it also tells the wrapper to requeue the job once we exit.
STOP_FILE_ENV = "DRAG_STOP_FILE"


def requested(output_dir: str) -> bool:
    stop_file = os.environ.get(STOP_FILE_ENV)
    if stop_file and os.path.exists(stop_file):
        return True
    return os.path.exists(os.path.join(output_dir, REQUEST_FILE))


def clear_request(output_dir: str) -> None:
    """Removes the request file: after the checkpoint it asked for, and at start (one left by a killed job)."""
    try:
        os.remove(os.path.join(output_dir, REQUEST_FILE))
    except FileNotFoundError:
        pass


def rotate(output_dir: str, keep: int) -> None:
    """Keeps the newest ``keep`` checkpoints; removes older ones and any left-over ``.partial`` folder."""
    names = os.listdir(output_dir)
    ckpts = sorted((int(m.group(1)), n) for n in names if (m := NAME.match(n)))
    for _, name in ckpts[: max(0, len(ckpts) - keep)]:
        shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)
    for name in names:
        if name.startswith("checkpoint-") and name.endswith(".partial"):
            shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)
