"""trainer_log.jsonl and status.json (standard library only).

``trainer_log.jsonl``: one line per logging step with LLaMA-Factory's keys, so the Training
Monitor (and LLaMA-Factory's own board) can read it: current_steps, total_steps, loss, eval_loss
(when evaluated), learning_rate, epoch, percentage, elapsed_time, remaining_time.
``status.json``: state (starting|running|succeeded|failed|cancelled|preempted), step,
total_steps, last_error, updated_at; replaced atomically. ``preempted``: stopped by SIGUSR1 after
writing a checkpoint (resume with ``--resume auto``). Only the main process (rank 0) writes either.
TensorBoard: the same numbers as event files in the output folder (``--report-to tensorboard``,
the default when the tensorboard package is importable) under HF Trainer's tags: train/loss,
train/learning_rate, train/epoch, eval/loss.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


def fmt_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def write_json_atomic(path: str, value: Any) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


REPORT_TO = ("tensorboard", "none")


def resolve_report_to(value: str | None, tensorboard_importable: bool) -> str:
    """'tensorboard' or 'none'; unset means tensorboard when it is importable. SystemExit when asked for and missing."""
    if value is None:
        return "tensorboard" if tensorboard_importable else "none"
    if value == "tensorboard" and not tensorboard_importable:
        raise SystemExit(
            "drag_trainer: --report-to tensorboard, but the tensorboard package is not installed here: "
            "pip install tensorboard (or --report-to none)"
        )
    return value


def keep_lines_up_to(path: str, step: int) -> None:
    """On resume: drops the log lines written after the checkpoint's step (they are trained again)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.readlines()
    except OSError:
        return
    kept = []
    for line in lines:
        try:
            if json.loads(line).get("current_steps", 0) > step:
                continue
        except (ValueError, AttributeError):
            continue  # a half-written last line
        kept.append(line if line.endswith("\n") else line + "\n")
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.writelines(kept)
    os.replace(tmp, path)


class TrainLog:
    def __init__(
        self,
        output_dir: str,
        total_steps: int,
        is_main: bool = True,
        clock=time.monotonic,
        resume_step: int = 0,
        sink: Any = None,
    ):
        self.output_dir = output_dir
        self.total_steps = max(1, total_steps)
        self.is_main = is_main
        self.clock = clock
        self.started = clock()
        self.first_step = resume_step
        self.step = resume_step
        self.sink = sink if is_main else None  # TensorBoard's SummaryWriter, or anything with add_scalar/flush
        if is_main:
            os.makedirs(output_dir, exist_ok=True)
            self.path = os.path.join(output_dir, "trainer_log.jsonl")
            if resume_step:
                keep_lines_up_to(self.path, resume_step)
            else:
                open(self.path, "w", encoding="utf-8").close()  # a fresh run in a reused folder starts a fresh curve
            self.status("starting")

    def log(
        self,
        step: int,
        loss: float | None,
        learning_rate: float,
        epoch: float,
        eval_loss: float | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        self.step = step
        elapsed = self.clock() - self.started
        done = step - self.first_step
        remaining = elapsed / done * (self.total_steps - step) if done > 0 else 0.0
        record: dict[str, Any] = {
            "current_steps": step,
            "total_steps": self.total_steps,
            "loss": None if loss is None else round(float(loss), 6),
            "learning_rate": float(learning_rate),
            "epoch": round(float(epoch), 4),
            "percentage": round(100.0 * step / self.total_steps, 2),
            "elapsed_time": fmt_duration(elapsed),
            "remaining_time": fmt_duration(remaining),
        }
        if eval_loss is not None:
            record["eval_loss"] = round(float(eval_loss), 6)
        record.update(extra)
        if self.is_main:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            self.status("running")
            if self.sink is not None:
                for key, tag in (
                    ("loss", "train/loss"),
                    ("learning_rate", "train/learning_rate"),
                    ("epoch", "train/epoch"),
                    ("eval_loss", "eval/loss"),
                ):
                    if record.get(key) is not None:
                        self.sink.add_scalar(tag, record[key], step)
                for key, value in extra.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        self.sink.add_scalar(f"train/{key}", value, step)
                self.sink.flush()
        return record

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()
            self.sink = None

    def status(self, state: str, error: str | None = None) -> None:
        if not self.is_main:
            return
        write_json_atomic(
            os.path.join(self.output_dir, "status.json"),
            {
                "state": state,
                "step": self.step,
                "total_steps": self.total_steps,
                "last_error": error,
                "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
