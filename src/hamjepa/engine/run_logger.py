"""The run directory and where metrics go: ``metrics.jsonl``, TensorBoard, Weights & Biases, the progress bar.

Every logged row is a flat-ish dict with ``kind`` (``train``, ``epoch``, ``monitor``, ``error``, ...),
``step`` and ``epoch``. A :class:`RunLogger` hands each row to its sinks; a sink is one class with
``write(row, step)`` and ``close()`` (see :class:`MetricSink`), so adding a destination means adding a class
and listing it in :func:`default_sinks`. Only rank 0 writes anything.

Run directory layout::

    RUN_DIR/config.yaml          resolved config
    RUN_DIR/provenance.jsonl     one line per start / resume: commit, versions, command, UTC date
    RUN_DIR/metrics.jsonl        one JSON object per log point / epoch / callback result
    RUN_DIR/tensorboard/         TensorBoard events (when tensorboard is installed)
    RUN_DIR/wandb/               W&B files with train.wandb=offline|online (run id in wandb_run_id.txt)
    RUN_DIR/checkpoints/last.pt  latest checkpoint (epoch_XXXX.pt with train.keep_epoch_checkpoints)
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Protocol

from hamjepa.config import Config, save_config
from hamjepa.engine.wandb_sink import WandbSink
from hamjepa.provenance import provenance

METRICS_NAME = "metrics.jsonl"
PROVENANCE_NAME = "provenance.jsonl"


def default_run_dir(cfg: Config) -> Path:
    """``train.out_dir / (train.run_name or '<objective>-seed<seed>')``."""
    return Path(cfg.train.out_dir) / (cfg.train.run_name or f"{cfg.objective['name']}-seed{cfg.seed}")


class MetricSink(Protocol):
    """A destination for logged rows."""

    def write(self, row: dict[str, Any], step: int) -> None:
        """Record one row (``step`` is the row's step, or the trainer's when the row has none)."""

    def close(self) -> None:
        """Flush and release resources at the end of training."""


class JsonlSink:
    """Appends each row as one JSON line to ``RUN_DIR/metrics.jsonl``."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / METRICS_NAME

    def write(self, row: dict[str, Any], step: int) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(row) + "\n")

    def close(self) -> None:
        pass


class TensorBoardSink:
    """Writes every numeric field (except ``step``/``epoch``) as the scalar ``<kind>/<field>``."""

    def __init__(self, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def write(self, row: dict[str, Any], step: int) -> None:
        for key, value in row.items():
            if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                self.writer.add_scalar(f"{row.get('kind', 'train')}/{key}", value, row.get("step", step))

    def close(self) -> None:
        self.writer.close()


def default_sinks(cfg: Config, run_dir: Path) -> list[MetricSink]:
    """The sinks a config asks for: always JSONL, TensorBoard with ``train.tensorboard`` when installed, and
    Weights & Biases with ``train.wandb`` = ``offline`` / ``online`` (see :mod:`hamjepa.engine.wandb_sink`)."""
    sinks: list[MetricSink] = [JsonlSink(run_dir)]
    if cfg.train.tensorboard:
        with contextlib.suppress(ImportError):  # the tensorboard package is optional
            sinks.append(TensorBoardSink(run_dir))
    if cfg.train.wandb != "off":
        sinks.append(WandbSink(run_dir, mode=cfg.train.wandb, project=cfg.train.wandb_project, config=cfg.to_dict()))
    return sinks


def record_provenance(run_dir: Path) -> None:
    """Append the code's commit, library versions, command line and UTC date to ``RUN_DIR/provenance.jsonl``
    (one line per start or resume; ``hamjepa export`` puts the first commit on the model card)."""
    info = {k: v for k, v in provenance().items() if k != "device"}  # the device is not known here
    with open(run_dir / PROVENANCE_NAME, "a") as fh:
        fh.write(json.dumps(info) + "\n")


def recorded_plugins(run_dir: Path) -> list[str]:
    """The plugin modules (``hamjepa --import`` / entry points) of every start of a run, from its
    ``provenance.jsonl`` (``[]`` when absent or unreadable)."""
    modules: list[str] = []
    with contextlib.suppress(OSError):
        for line in (run_dir / PROVENANCE_NAME).read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError, AttributeError, TypeError):
                modules += [m for m in json.loads(line).get("plugins", []) if isinstance(m, str)]
    return list(dict.fromkeys(modules))


class RunLogger:
    """Owns the run directory on rank 0 and fans each row out to the sinks (no-op on other ranks)."""

    def __init__(self, run_dir: Path, *, is_main: bool) -> None:
        self.run_dir = run_dir
        self.is_main = is_main
        self.sinks: list[MetricSink] = []

    def open(self, cfg: Config) -> None:
        """Create the run directory, write ``config.yaml`` and open the config's sinks (rank 0 only)."""
        if not self.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, self.run_dir / "config.yaml")
        record_provenance(self.run_dir)
        self.sinks = default_sinks(cfg, self.run_dir)

    def log(self, row: dict[str, Any], step: int = 0) -> None:
        """Write ``row`` to every sink (rank 0 only)."""
        if not self.is_main:
            return
        for sink in self.sinks:
            sink.write(row, step)

    def close(self) -> None:
        """Close every sink."""
        for sink in self.sinks:
            sink.close()
        self.sinks = []


def progress_bar(total: int, epoch: int, epochs: int, *, enabled: bool, initial: int = 0):
    """A tqdm bar for one epoch, or None when disabled (non-main ranks, ``train.progress=false``)."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=f"epoch {epoch}/{epochs}", leave=False, dynamic_ncols=True)
