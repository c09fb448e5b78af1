"""Where a measured number came from: commit, device, library versions, command and date.

Every results file the library writes (benchmarks, reproductions) carries :func:`provenance` so that
``docs/RESULTS.md`` can be generated from the files alone.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from hamjepa.plugins import loaded_plugins


def git_commit() -> str:
    """Short hash of the checkout this package runs from, with ``+dirty`` when it has uncommitted changes."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, cwd=here
        ).stdout.strip()
        if not sha:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=here,
        ).stdout.strip()
        return f"{sha}+dirty" if dirty else sha
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name(device: torch.device | str | None = None) -> str:
    """The GPU model for a CUDA device, else the CPU with its visible core count."""
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def provenance(device: torch.device | str | None = None) -> dict[str, Any]:
    """Commit, device, versions, the command line, the UTC date and the plugin modules loaded, as a JSON-ready dict."""
    return {
        "commit": git_commit(),
        "device": device_name(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": portable(
            " ".join(
                ["hamjepa" if Path(sys.argv[0]).name in ("hamjepa", "__main__.py") else sys.argv[0], *sys.argv[1:]]
            )
        ),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "plugins": loaded_plugins(),
    }


REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this package runs from (paths inside it are recorded relative to it)."""
_ABSOLUTE_PATH = re.compile(r"(?P<flag>--out[ =])?(?<![\w.~:/])(?P<path>/[^\s\"'`,;:]+)")


def portable(value: Any) -> Any:
    """``value`` with every absolute path replaced by one anyone can read: a results file records no machine.

    Paths inside this checkout become relative to it (``configs/cifar100_hamjepa.yaml``; so does a shipped
    config read from another checkout); the path after
    ``--out`` becomes ``OUT/<name>``; any other path (data sets, temporary folders) becomes ``DATA/<name>``.
    Walks dicts, lists and tuples; strings anywhere inside (a whole command line too) are rewritten.
    """
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v) for v in value]
    if not isinstance(value, str):
        return value

    def rewrite(match: re.Match[str]) -> str:
        path = Path(match["path"])
        flag = match["flag"] or ""
        if path.is_relative_to(REPO_ROOT):
            return flag + (path.relative_to(REPO_ROOT).as_posix() or ".")
        if path.parent.name == "configs" and (REPO_ROOT / "configs" / path.name).is_file():
            return f"{flag}configs/{path.name}"  # a shipped config read from another checkout
        return f"{flag}{'OUT' if flag else 'DATA'}/{path.name}"

    return _ABSOLUTE_PATH.sub(rewrite, value)


def write_result(path: str | Path, record: dict[str, Any]) -> Path:
    """Write a results file (JSON, indented) with :func:`portable` paths; returns the path."""
    path = Path(path)
    path.write_text(json.dumps(portable(record), indent=2) + "\n")
    return path
