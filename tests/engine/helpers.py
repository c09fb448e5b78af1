"""Tiny real-shaped CIFAR-like data and configs for engine tests (no ../shared needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hamjepa.components import load_config
from hamjepa.config import Config

REPO = Path(__file__).resolve().parents[2]


def write_tiny_cifar(path: Path, n_train: int = 32, n_test: int = 16, classes: int = 4, seed: int = 0) -> Path:
    """A packed .npz with random uint8 32x32 images and balanced labels."""
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8),
        y_train=np.arange(n_train, dtype=np.int64) % classes,
        x_test=rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8),
        y_test=np.arange(n_test, dtype=np.int64) % classes,
    )
    return path


def tiny_overrides(data: Path, **extra: object) -> list[str]:
    """Overrides that make the paper configs run in seconds on a CPU."""
    values = {
        "data.path": str(data),
        "data.batch_size": 8,
        "train.epochs": 2,
        "optim.warmup_epochs": 1,
        "train.log_every": 1,
        "train.progress": False,
        "train.tensorboard": False,
        "train.device": "cpu",
        "model.channels_last": False,
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def tiny_config(name: str, data: Path, **extra: object) -> Config:
    """A shipped config (``configs/<name>.yaml``) shrunk by :func:`tiny_overrides`."""
    return load_config(REPO / "configs" / f"{name}.yaml", tiny_overrides(data, **extra))
