"""Checkpoints: atomic writes, safe loading, and rebuilding a trained run.

A checkpoint is a dict of tensors and plain Python types only, so it is loaded with
``torch.load(..., weights_only=True)``: a downloaded file cannot run code. Keys:

``format`` (int), ``config`` (resolved config, plain dict), ``encoder``, ``objective`` (state dicts; the
predictor lives under ``predictor.``), ``target_encoder`` (EMA copy or None), ``optimizer``,
``auxiliary_optimizer`` (AdamW of the objective's auxiliary parameters, or None), ``scheduler``,
``epoch`` (last completed epoch), ``step`` (optimiser steps done), ``data`` (stream state), ``rng`` (torch
CPU/CUDA, Python and NumPy generator states), ``epoch_complete`` (bool).
"""

from __future__ import annotations

import pickle
import random
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hamjepa.atomic_files import atomic_write
from hamjepa.components import config_from_dict
from hamjepa.engine.build import build_model
from hamjepa.engine.run_logger import recorded_plugins
from hamjepa.errors import CheckpointError
from hamjepa.plugins import missing_plugins_hint

CHECKPOINT_FORMAT = 1
LAST_NAME = "last.pt"
EXPORT_MANIFEST_NAME = "hamjepa_export.json"
"""The file that marks an export folder (``hamjepa export``); its format is :mod:`hamjepa.inference.export`'s."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (temp file in the same folder, fsync, rename), with the
    permissions of every other file of the run (the umask: ``0644`` under umask ``022``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda fh: torch.save(state, fh), fsync=True)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run directory's ``checkpoints/last.pt``."""
    path = Path(path)
    if path.is_dir():
        candidate = path / "checkpoints" / LAST_NAME
        if not candidate.is_file():
            raise CheckpointError(
                f"checkpoint: no {candidate} in run directory {path}; train first or pass a .pt file."
            )
        return candidate
    if not path.is_file():
        raise CheckpointError(f"checkpoint: {path} does not exist; pass a run directory or a .pt file.")
    return path


def run_dir_of(checkpoint: str | Path) -> Path:
    """The run folder a checkpoint file belongs to (``RUN_DIR/checkpoints/x.pt`` -> ``RUN_DIR``), else its folder."""
    parent = Path(checkpoint).resolve().parent
    return parent.parent if parent.name == "checkpoints" else parent


def clip_words(text: str, limit: int) -> str:
    """``text`` on one line, cut to at most ``limit`` characters at a word boundary (with "..." when cut)."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 3]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "..."


def _load_failure(file: Path, err: BaseException) -> CheckpointError:
    """One-line error telling apart foreign objects (refused), a damaged file, and a file that is no checkpoint.

    ``weights_only=True`` raises ``UnpicklingError`` both for a real pickle naming a non-allowed global (a
    class or function: refused for safety) and for bytes that are not a pickle at all ("Unsupported
    operand"); the former is recognised by the refused ``GLOBAL`` it names.
    """
    text = str(err)
    refused = re.search(r"GLOBAL ([\w.]+)", text)
    if isinstance(err, pickle.UnpicklingError) and refused:
        return CheckpointError(
            f"checkpoint: {file} holds objects other than tensors and plain types ({refused.group(1)}) and is "
            "refused for safety; re-save it with tensors and plain types only."
        )
    with open(file, "rb") as fh:
        head = fh.read(4)
    if not head:
        return CheckpointError(
            f"checkpoint: {file} is empty (an interrupted write?); use an earlier checkpoint or retrain."
        )
    if head == b"PK\x03\x04" or isinstance(err, EOFError):
        first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
        return CheckpointError(
            f"checkpoint: {file} is truncated or corrupt ({clip_words(first, 120)}); "
            "use an earlier checkpoint or retrain."
        )
    return CheckpointError(
        f"checkpoint: {file} is not a PyTorch checkpoint (its bytes do not parse as one); pass the .pt file "
        "that `hamjepa train` wrote (RUN_DIR/checkpoints/last.pt) or the run directory."
    )


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``) with one-line errors for bad files.

    Errors distinguish a file that is not a checkpoint at all, a truncated or corrupt one, and a real pickle
    holding objects other than tensors and plain types (refused for safety).
    """
    file = resolve_checkpoint(path)
    try:
        state = torch.load(file, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, KeyError, ValueError) as err:
        raise _load_failure(file, err) from None
    if not isinstance(state, dict) or "encoder" not in state or "config" not in state:
        raise CheckpointError(f"checkpoint: {file} is not a hamjepa checkpoint (no 'encoder'/'config' keys).")
    return state


def load_state_strict(module: nn.Module, state: dict[str, Any], what: str, file: str | Path) -> None:
    """``module.load_state_dict(state)`` with a one-line error when the shapes or keys differ."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = clip_words(str(err), 200)
        raise CheckpointError(
            f"checkpoint: {file}: the {what} weights do not fit the model built from the config "
            f"(a checkpoint of another config?): {detail}"
        ) from None


def capture_rng_state() -> dict[str, Any]:
    """Every RNG state a run depends on, as tensors and plain types."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached": float(np_state[4]),
        },
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (state tensors may sit on any device; they are read on the CPU)."""
    torch.set_rng_state(state["torch"].cpu())
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    if state.get("cuda") and torch.cuda.is_available():
        # A run resumed on fewer visible GPUs than it was saved on restores the devices it has.
        for index, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state.cpu(), index)


@dataclass
class LoadedRun:
    """A trained run rebuilt from its checkpoint (eval mode, weights loaded)."""

    config: dict[str, Any]
    """The resolved config (plain dict)."""
    encoder: nn.Module
    objective: nn.Module
    checkpoint_path: Path
    epoch: int
    step: int


def load_run(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild the encoder and objective of a run directory or checkpoint file, weights loaded, eval mode."""
    file = resolve_checkpoint(path)
    state = load_checkpoint(file, map_location=map_location)
    try:
        cfg = config_from_dict(state["config"])
    except ValueError as err:
        hint = missing_plugins_hint(recorded_plugins(run_dir_of(file)))
        raise CheckpointError(f"checkpoint: {file} carries a config this version cannot read: {err}{hint}") from None
    encoder, objective = build_model(cfg)
    load_state_strict(encoder, state["encoder"], "encoder", file)
    if state.get("objective") is not None:
        load_state_strict(objective, state["objective"], "objective", file)
    encoder.eval()
    objective.eval()
    return LoadedRun(
        config=state["config"],
        encoder=encoder,
        objective=objective,
        checkpoint_path=file,
        epoch=int(state.get("epoch", 0)),
        step=int(state.get("step", 0)),
    )
