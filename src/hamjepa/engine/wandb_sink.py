"""Weights & Biases destination of the run logger (``train.wandb: offline | online``; default ``off``).

One W&B run per run directory: it is named after the directory, receives the resolved config, and its id is
kept in ``RUN_DIR/wandb_run_id.txt`` so that ``--resume RUN_DIR`` continues the same W&B run. Files go to
``RUN_DIR/wandb/`` (``offline-run-*`` folders in offline mode, to upload later with ``wandb sync``). Every
numeric field of a logged row becomes the scalar ``<kind>/<field>`` at the row's step, as in TensorBoard.
Only rank 0 creates a sink (see :class:`~hamjepa.engine.run_logger.RunLogger`). The usual ``WANDB_*``
environment variables (``WANDB_ENTITY``, ``WANDB_DIR``, ``WANDB_API_KEY``, ...) apply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hamjepa.errors import HamjepaError

WANDB_ID_NAME = "wandb_run_id.txt"
"""File in the run directory holding the W&B run id (for resuming the same W&B run)."""


class WandbUnavailableError(HamjepaError):
    """W&B logging was asked for but the ``wandb`` package cannot be imported."""


def require_wandb(mode: str) -> None:
    """Fail fast, with one line naming the fix, when ``mode`` is not ``off`` and ``wandb`` is missing."""
    if mode == "off":
        return
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise WandbUnavailableError(
            f"train: 'train.wandb' = {mode} needs the wandb package; pip install wandb (or set train.wandb=off)."
        ) from None


def wandb_scalars(row: dict[str, Any]) -> dict[str, float]:
    """``{'<kind>/<field>': value}`` for the numeric fields of a logged row (not ``step``; ``epoch`` kept)."""
    kind = row.get("kind", "train")
    out = {
        f"{kind}/{key}": float(value)
        for key, value in row.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("step", "epoch")
    }
    if isinstance(row.get("epoch"), int):
        out["epoch"] = float(row["epoch"])
    return out


class WandbSink:
    """Logs rows to a W&B run (offline or online) in ``run_dir``.

    Args:
        run_dir: the run directory (W&B files go to ``run_dir/wandb`` unless ``WANDB_DIR`` says otherwise).
        mode: ``offline`` or ``online``.
        project: W&B project name.
        config: the resolved config as a plain dict (recorded with the run).
    """

    def __init__(self, run_dir: Path, *, mode: str, project: str, config: dict[str, Any]) -> None:
        if mode not in ("offline", "online"):
            raise ValueError(f"mode must be 'offline' or 'online', got {mode!r}")
        require_wandb(mode)
        import wandb

        id_file = run_dir / WANDB_ID_NAME
        run_id = id_file.read_text().strip() if id_file.is_file() else None
        self.run = wandb.init(
            project=project,
            name=run_dir.name,
            id=run_id,
            resume="allow" if run_id else None,
            mode=mode,
            dir=str(run_dir),
            config=config,
        )
        id_file.write_text(self.run.id + "\n")

    def write(self, row: dict[str, Any], step: int) -> None:
        """Log the row's numeric fields at its step (W&B ignores steps lower than one already logged)."""
        scalars = wandb_scalars(row)
        if scalars:
            self.run.log(scalars, step=int(row.get("step", step)))

    def close(self) -> None:
        """Finish the W&B run (flushes the offline files)."""
        self.run.finish()
