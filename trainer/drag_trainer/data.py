"""Reading and checking training data (standard library only).

Accepted files, as ``drag format`` writes them (one JSON object per line):

* SFT: TRL conversational (``messages`` [+ ``tools``, ``images``]), DRAG (``input``, ``output``),
  LLaMA-Factory sharegpt (``conversations`` [+ ``system``, ``tools``]).
* DPO: TRL preference (``prompt``, ``chosen``, ``rejected`` as message lists), DRAG (the same
  keys as strings), LLaMA-Factory sharegpt (``conversations``, ``chosen``, ``rejected``).

Every problem is reported as ``file:line: field: message`` and the rest of the file is still read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "user", "assistant", "tool")
SHAREGPT_ROLES = {
    "human": "user",
    "gpt": "assistant",
    "function_call": "assistant",
    "observation": "tool",
    "system": "system",
}
META_KEYS = (
    "rank_score",
    "best_rank_score",
    "gt_rank",
    "cumulative_effort_score",
    "effort_score_until_first_hit",
    "question_id",
    "trajectory_id",
)


@dataclass
class LineError:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclass
class Example:
    """One normalised training example: chat messages (the model's own template renders them)."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    images: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    # DPO only: the prompt is ``messages``; these are the two completions.
    chosen: list[dict[str, Any]] | None = None
    rejected: list[dict[str, Any]] | None = None
    line: int = 0


def read_jsonl(path: str) -> Iterator[tuple[int, Any, LineError | None]]:
    """Yields (line number, parsed object or None, error or None) for each non-blank line."""
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw), None
            except json.JSONDecodeError as err:
                yield number, None, LineError(path, number, "", f"invalid JSON: {err.msg} at column {err.colno}")


def detect_format(obj: dict[str, Any]) -> str:
    if "messages" in obj:
        return "trl"
    if "conversations" in obj:
        return "sharegpt"
    if "prompt" in obj and isinstance(obj.get("prompt"), list):
        return "trl"
    return "drag"


def _check_messages(value: Any, name: str, errors: list[tuple[str, str]], need_assistant: bool) -> None:
    if not isinstance(value, list) or not value:
        errors.append((name, "must be a non-empty list of messages"))
        return
    for i, m in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(m, dict):
            errors.append((where, "must be an object with role and content"))
            continue
        if m.get("role") not in ROLES:
            errors.append((f"{where}.role", f"must be one of {', '.join(ROLES)} (got {m.get('role')!r})"))
        content = m.get("content")
        if content is None and not m.get("tool_calls"):
            errors.append((f"{where}.content", "missing (and no tool_calls)"))
        elif content is not None and not isinstance(content, (str, list)):
            errors.append((f"{where}.content", "must be a string or a list of parts"))
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict) or part.get("type") not in ("text", "image"):
                    errors.append(
                        (f"{where}.content[{j}]", 'must be {"type": "text", "text": ...} or {"type": "image"}')
                    )
        for j, call in enumerate(m.get("tool_calls") or []):
            fn = call.get("function") if isinstance(call, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                errors.append((f"{where}.tool_calls[{j}].function.name", "missing"))
    if need_assistant and not any(isinstance(m, dict) and m.get("role") == "assistant" for m in value):
        errors.append((name, "has no assistant message to learn from"))


def _check_str(obj: dict[str, Any], key: str, errors: list[tuple[str, str]]) -> None:
    v = obj.get(key)
    if not isinstance(v, str) or not v.strip():
        errors.append((key, "missing or not a non-empty string"))


def _check_sharegpt_turn(value: Any, name: str, errors: list[tuple[str, str]]) -> None:
    if (
        not isinstance(value, dict)
        or value.get("from") not in SHAREGPT_ROLES
        or not isinstance(value.get("value"), str)
    ):
        errors.append((name, 'must be {"from": human|gpt|function_call|observation, "value": "..."}'))


def check_record(task: str, obj: Any) -> list[tuple[str, str]]:
    """The problems of one record as (field, message) pairs; empty when it is usable."""
    if not isinstance(obj, dict):
        return [("", "each line must be a JSON object")]
    errors: list[tuple[str, str]] = []
    kind = detect_format(obj)
    if task == "sft":
        if kind == "trl":
            _check_messages(obj.get("messages"), "messages", errors, need_assistant=True)
        elif kind == "sharegpt":
            turns = obj.get("conversations")
            if not isinstance(turns, list) or not turns:
                errors.append(("conversations", "must be a non-empty list"))
            else:
                for i, t in enumerate(turns):
                    _check_sharegpt_turn(t, f"conversations[{i}]", errors)
        else:
            _check_str(obj, "input", errors)
            _check_str(obj, "output", errors)
    elif task == "dpo":
        if kind == "trl":
            _check_messages(obj.get("prompt"), "prompt", errors, need_assistant=False)
            _check_messages(obj.get("chosen"), "chosen", errors, need_assistant=True)
            _check_messages(obj.get("rejected"), "rejected", errors, need_assistant=True)
        elif kind == "sharegpt":
            if not isinstance(obj.get("conversations"), list) or not obj["conversations"]:
                errors.append(("conversations", "must be a non-empty list"))
            _check_sharegpt_turn(obj.get("chosen"), "chosen", errors)
            _check_sharegpt_turn(obj.get("rejected"), "rejected", errors)
        else:
            for key in ("prompt", "chosen", "rejected"):
                _check_str(obj, key, errors)
        if not errors and json.dumps(obj.get("chosen"), sort_keys=True) == json.dumps(
            obj.get("rejected"), sort_keys=True
        ):
            errors.append(("rejected", "is the same as chosen: the pair teaches nothing"))
    else:
        raise ValueError(f"unknown task {task!r}")
    images = obj.get("images")
    if images is not None and (not isinstance(images, list) or not all(isinstance(p, str) for p in images)):
        errors.append(("images", "must be a list of file paths"))
    for key in ("rank_score", "best_rank_score", "cumulative_effort_score", "effort_score_until_first_hit"):
        v = obj.get(key)
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 1):
            errors.append((key, f"must be a number in [0, 1] or null (got {v!r})"))
    tools = obj.get("tools")
    if isinstance(tools, str):
        try:
            json.loads(tools)
        except json.JSONDecodeError:
            errors.append(("tools", "is a string but not JSON"))
    return errors


def check_file(task: str, path: str, limit: int = 50) -> tuple[int, list[LineError]]:
    """Checks a whole file: (number of usable records, the first ``limit`` problems)."""
    ok = 0
    errors: list[LineError] = []
    for number, obj, err in read_jsonl(path):
        problems = [err] if err else [LineError(path, number, f, m) for f, m in check_record(task, obj)]
        if problems:
            errors.extend(problems[: max(0, limit - len(errors))])
        else:
            ok += 1
    return ok, errors


def _parse_tool_call(value: str) -> dict[str, Any]:
    call = json.loads(value)
    return {"type": "function", "function": {"name": call.get("name"), "arguments": call.get("arguments", {})}}


def _sharegpt_messages(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for t in turns:
        role = SHAREGPT_ROLES[t["from"]]
        if t["from"] == "function_call":
            out.append({"role": "assistant", "content": "", "tool_calls": [_parse_tool_call(t["value"])]})
        else:
            out.append({"role": role, "content": t["value"]})
    return out


def _tools(obj: dict[str, Any]) -> list[dict[str, Any]] | None:
    tools = obj.get("tools")
    if isinstance(tools, str):
        tools = json.loads(tools) if tools.strip() else None
    return tools or None


def _resolve_images(obj: dict[str, Any], base_dir: str) -> list[str]:
    return [p if os.path.isabs(p) else os.path.join(base_dir, p) for p in obj.get("images") or []]


def to_example(task: str, obj: dict[str, Any], line: int = 0, base_dir: str = ".") -> Example:
    """A checked record as an Example (call ``check_record`` first)."""
    kind = detect_format(obj)
    meta = {k: obj.get(k) for k in META_KEYS if k in obj}
    system = (
        [{"role": "system", "content": obj["system"]}] if isinstance(obj.get("system"), str) and obj["system"] else []
    )
    if task == "sft":
        if kind == "trl":
            messages = obj["messages"]
        elif kind == "sharegpt":
            messages = system + _sharegpt_messages(obj["conversations"])
        else:
            messages = [{"role": "user", "content": obj["input"]}, {"role": "assistant", "content": obj["output"]}]
        return Example(
            messages=messages, tools=_tools(obj), images=_resolve_images(obj, base_dir), meta=meta, line=line
        )
    if kind == "trl":
        prompt, chosen, rejected = obj["prompt"], obj["chosen"], obj["rejected"]
    elif kind == "sharegpt":
        prompt = system + _sharegpt_messages(obj["conversations"])
        chosen, rejected = _sharegpt_messages([obj["chosen"]]), _sharegpt_messages([obj["rejected"]])
    else:
        prompt = [{"role": "user", "content": obj["prompt"]}]
        chosen = [{"role": "assistant", "content": obj["chosen"]}]
        rejected = [{"role": "assistant", "content": obj["rejected"]}]
    return Example(
        messages=prompt,
        chosen=chosen,
        rejected=rejected,
        tools=_tools(obj),
        images=_resolve_images(obj, base_dir),
        meta=meta,
        line=line,
    )


def load_examples(task: str, path: str) -> tuple[list[Example], list[LineError]]:
    """All usable examples of a file, and the problems of the rest (which are skipped)."""
    examples: list[Example] = []
    errors: list[LineError] = []
    base_dir = os.path.dirname(os.path.abspath(path))
    for number, obj, err in read_jsonl(path):
        if err:
            errors.append(err)
            continue
        problems = check_record(task, obj)
        if problems:
            errors.extend(LineError(path, number, f, m) for f, m in problems)
            continue
        examples.append(to_example(task, obj, number, base_dir))
    return examples, errors
