"""What a training checkpoint holds: assembling it from the live objects, and checking/restoring it on resume.

The file format (keys and meaning) is documented in :mod:`hamjepa.engine.checkpoint`, which also writes
and reads the files.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hamjepa.components import config_from_dict
from hamjepa.config import Config
from hamjepa.engine.auxiliary import AuxiliaryOptimizer
from hamjepa.engine.checkpoint import (
    CHECKPOINT_FORMAT,
    LAST_NAME,
    capture_rng_state,
    load_checkpoint,
    load_state_strict,
    restore_rng_state,
)
from hamjepa.engine.run_logger import recorded_plugins
from hamjepa.engine.schedule import WarmupCosineSchedule
from hamjepa.errors import CheckpointError, HamjepaError
from hamjepa.plugins import missing_plugins_hint


@dataclass
class TrainingParts:
    """The stateful objects of a run, as saved in and restored from a checkpoint."""

    encoder: nn.Module
    objective: nn.Module
    target_encoder: nn.Module | None
    optimizer: torch.optim.Optimizer
    scheduler: WarmupCosineSchedule
    stream: Any
    """The training stream (``state_dict`` / ``load_state_dict``: seed, epoch, position)."""
    auxiliary: AuxiliaryOptimizer
    """The optimiser of the objective's auxiliary parameters (inactive when it declares none)."""


def checkpoint_path(run_dir: Path) -> Path:
    """``RUN_DIR/checkpoints/last.pt``."""
    return run_dir / "checkpoints" / LAST_NAME


def training_state(cfg: Config, parts: TrainingParts, *, epoch: int, step: int, epoch_complete: bool) -> dict[str, Any]:
    """The checkpoint dict of a run at ``epoch`` (completed epochs) / ``step`` (optimiser steps done)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "config": cfg.to_dict(),
        "encoder": parts.encoder.state_dict(),
        "objective": parts.objective.state_dict(),
        "target_encoder": None if parts.target_encoder is None else parts.target_encoder.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "auxiliary_optimizer": parts.auxiliary.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "epoch": epoch,
        "step": step,
        "epoch_complete": epoch_complete,
        "data": parts.stream.state_dict(),
        "rng": capture_rng_state(),
    }


def config_identity(cfg: Config) -> dict[str, Any]:
    """The config fields a resumed run must share with its checkpoint (model, objective, data set, batch)."""
    d = cfg.to_dict()
    return {
        "model": d["model"],
        "predictor": d["predictor"],
        "objective": d["objective"],
        "dataset": d["data"]["dataset"],
        "batch_size": d["data"]["batch_size"],
    }


def read_resume_state(run_dir: Path, cfg: Config) -> dict[str, Any]:
    """Read ``run_dir/checkpoints/last.pt`` and check it belongs to ``cfg`` (before building anything)."""
    file = checkpoint_path(run_dir)
    # Always onto the CPU: the RNG states must stay CPU ByteTensors (torch.set_rng_state and numpy refuse
    # device tensors), and load_state_dict / the optimiser copy weights and moments to their parameters'
    # device anyway.
    state = load_checkpoint(file, map_location="cpu")
    try:
        saved = config_from_dict(state["config"])
    except ValueError as err:
        hint = missing_plugins_hint(recorded_plugins(run_dir))
        raise CheckpointError(f"checkpoint: {file} carries a config this version cannot read: {err}{hint}") from None
    if config_identity(saved) != config_identity(cfg):
        raise CheckpointError(
            f"checkpoint: {file} was written by another config (model/objective/data differ); resume with "
            f"the run's own config ({run_dir / 'config.yaml'}) or start a new run directory."
        )
    return state


SCHEDULE_KEYS = ("train.epochs", "optim.lr", "optim.warmup_epochs", "optim.min_lr_ratio")
"""Config keys that fix the learning-rate schedule: changing one on resume re-plans the schedule."""


def _dotted(d: dict[str, Any], key: str) -> Any:
    section, name = key.split(".")
    return d.get(section, {}).get(name)


def schedule_changes(state: dict[str, Any], cfg: Config) -> list[str]:
    """``"key: saved -> new"`` for every :data:`SCHEDULE_KEYS` entry where ``cfg`` differs from the checkpoint's
    config (empty when a resume continues the same schedule)."""
    saved, new = state["config"], cfg.to_dict()
    return [
        f"{key}: {_dotted(saved, key)} -> {_dotted(new, key)}"
        for key in SCHEDULE_KEYS
        if _dotted(saved, key) != _dotted(new, key)
    ]


def check_schedule_on_resume(state: dict[str, Any], cfg: Config, *, replan: bool, main: bool = True) -> None:
    """Refuse a resume whose config changes the learning-rate schedule unless ``replan``; with ``replan``,
    say (on the main process) that the schedule is re-planned.

    Raises:
        HamjepaError: :func:`schedule_changes` is not empty and ``replan`` is false.
    """
    changes = "; ".join(schedule_changes(state, cfg))
    if not changes:
        return
    if not replan:
        raise HamjepaError(
            f"train: resuming with another learning-rate schedule ({changes}) re-plans the warm-up + cosine "
            "schedule mid-run (the rate jumps from where it was); pass --replan-schedule to do that, or resume "
            "without changing these keys"
        )
    if main:
        print(
            f"train: --replan-schedule: the learning-rate schedule is re-planned at step {int(state['step'])} "
            f"({changes})",
            file=sys.stderr,
            flush=True,
        )


def run_is_finished(state: dict[str, Any], cfg: Config) -> bool:
    """Whether the checkpoint ``state`` already completed the training ``cfg`` asks for (``train.epochs``
    complete epochs, or ``train.max_steps`` steps)."""
    t = cfg.train
    if t.max_steps is not None and int(state["step"]) >= t.max_steps:
        return True
    return int(state["epoch"]) >= t.epochs and bool(state.get("epoch_complete", True))


def restore_training_state(state: dict[str, Any], parts: TrainingParts, file: Path) -> tuple[int, int]:
    """Load weights, optimiser, schedule, data position and RNG from ``state``; returns ``(epoch, step)``."""
    load_state_strict(parts.encoder, state["encoder"], "encoder", file)
    load_state_strict(parts.objective, state["objective"], "objective", file)
    if parts.target_encoder is not None and state.get("target_encoder") is not None:
        load_state_strict(parts.target_encoder, state["target_encoder"], "target encoder", file)
    parts.optimizer.load_state_dict(state["optimizer"])
    if parts.auxiliary.active:
        if state.get("auxiliary_optimizer") is None:
            raise CheckpointError(
                f"checkpoint: {file} holds no state for the objective's auxiliary optimiser (written by an older "
                "version that kept it inside the objective); it cannot be resumed exactly: start a new run."
            )
        parts.auxiliary.load_state_dict(state["auxiliary_optimizer"])
    parts.scheduler.load_state_dict(state["scheduler"])
    parts.stream.load_state_dict(state["data"])
    restore_rng_state(state["rng"])
    return int(state["epoch"]), int(state["step"])
