"""``python -m drag_trainer env``: what this host has for training, and what is missing."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import sys
from typing import Any

REQUIRED = {"torch": "2.4", "transformers": "4.57", "peft": "0.17"}
OPTIONAL = {"bitsandbytes": "0.45", "PIL": None, "accelerate": None, "tensorboard": None}
# What the trainer has run with (trainer/requirements.txt pins these); other versions are reported
# as untested, not refused.
TESTED = {"torch": "2.11.0", "transformers": "5.17.0", "peft": "0.21.0"}


def untested(name: str, have: str | None) -> str | None:
    """A note when an installed required package is not the tested release (patch releases count as tested)."""
    want = TESTED.get(name)
    if not want or not have or have == "unknown" or _version_tuple(have)[:2] == _version_tuple(want)[:2]:
        return None
    return (
        f"{name} {have} has not been tested with the trainer (tested: {want}; pip install -r trainer/requirements.txt)"
    )


DIST_NAMES = {"PIL": "pillow"}


def _version_tuple(v: str) -> tuple[int, ...]:
    parts = []
    for p in v.split("+")[0].split("."):
        digits = "".join(ch for ch in p if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def version_at_least(have: str, need: str) -> bool:
    return _version_tuple(have) >= _version_tuple(need)


def _installed(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return importlib.metadata.version(DIST_NAMES.get(module, module))
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def report() -> dict[str, Any]:
    out: dict[str, Any] = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "packages": {},
        "missing": [],
        "problems": [],
        "notes": [],
        "tested": dict(TESTED),
    }
    if sys.version_info < (3, 10):  # noqa: UP036 - this report must run (and say so) on an old Python
        out["problems"].append(f"Python {platform.python_version()} is too old: the trainer needs Python >= 3.10")
    for name, need in {**REQUIRED, **OPTIONAL}.items():
        have = _installed(name)
        out["packages"][name] = have
        if name in REQUIRED:
            if have is None:
                out["missing"].append(f"{DIST_NAMES.get(name, name)}>={need}")
            elif have != "unknown" and not version_at_least(have, need):
                out["problems"].append(f"{name} {have} is too old: need >= {need} (pip install -U '{name}>={need}')")
            elif untested(name, have):
                out["notes"].append(untested(name, have))
    out["cuda"] = False
    out["gpus"] = []
    if out["packages"]["torch"]:
        try:
            import torch  # noqa: PLC0415 - heavy import only when torch exists

            out["torch_cuda"] = torch.version.cuda
            out["cuda"] = bool(torch.cuda.is_available())
            if out["cuda"]:
                for i in range(torch.cuda.device_count()):
                    p = torch.cuda.get_device_properties(i)
                    out["gpus"].append(
                        {
                            "index": i,
                            "name": p.name,
                            "memory_gib": round(p.total_memory / 2**30, 1),
                            "bf16": torch.cuda.is_bf16_supported(),
                        }
                    )
            else:
                out["problems"].append(
                    "torch cannot see a CUDA GPU (check the driver with nvidia-smi, and that torch was built with CUDA)"
                )
        except Exception as err:  # noqa: BLE001 - report, never crash the check
            out["problems"].append(f"importing torch failed: {err}")
    if out["missing"]:
        out["problems"].append("missing packages: pip install " + " ".join(f"'{m}'" for m in out["missing"]))
    out["ok"] = not out["problems"]
    return out


def format_report(r: dict[str, Any]) -> str:
    lines = [f"python      {r['python']} ({r['executable']})"]
    for name, have in r["packages"].items():
        lines.append(f"{name:<13}{have or 'missing'}")
    lines.append(f"cuda        {'yes' if r['cuda'] else 'no'}")
    for g in r["gpus"]:
        lines.append(f"gpu {g['index']}       {g['name']}, {g['memory_gib']} GiB{', bf16' if g['bf16'] else ''}")
    lines.extend(f"note: {n}" for n in r.get("notes", []))
    lines.extend(f"problem: {p}" for p in r["problems"])
    lines.append("ok" if r["ok"] else "not ready")
    return "\n".join(lines)
