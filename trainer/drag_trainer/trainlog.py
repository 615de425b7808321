"""trainer_log.jsonl and status.json (standard library only).

``trainer_log.jsonl``: one line per logging step with LLaMA-Factory's keys, so the Training
Monitor (and LLaMA-Factory's own board) can read it: current_steps, total_steps, loss, eval_loss
(when evaluated), learning_rate, epoch, percentage, elapsed_time, remaining_time.
``status.json``: state (starting|running|succeeded|failed|cancelled), step, total_steps,
last_error, updated_at; replaced atomically. Only the main process (rank 0) writes either.
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


class TrainLog:
    def __init__(self, output_dir: str, total_steps: int, is_main: bool = True, clock=time.monotonic):
        self.output_dir = output_dir
        self.total_steps = max(1, total_steps)
        self.is_main = is_main
        self.clock = clock
        self.started = clock()
        self.step = 0
        if is_main:
            os.makedirs(output_dir, exist_ok=True)
            self.path = os.path.join(output_dir, "trainer_log.jsonl")
            self.status("starting")

    def log(self, step: int, loss: float | None, learning_rate: float, epoch: float, eval_loss: float | None = None, **extra: Any) -> dict[str, Any]:
        self.step = step
        elapsed = self.clock() - self.started
        remaining = elapsed / step * (self.total_steps - step) if step > 0 else 0.0
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
        return record

    def status(self, state: str, error: str | None = None) -> None:
        if not self.is_main:
            return
        write_json_atomic(os.path.join(self.output_dir, "status.json"), {
            "state": state,
            "step": self.step,
            "total_steps": self.total_steps,
            "last_error": error,
            "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        })
