"""One benchmark run: train one method on one task with one seed, then apply the paper's protocols.

Methods (all share the encoder, optimiser and data of the task):

* ``"jepa"``: classic JEPA = :class:`~hamjepa.objectives.bijepa.BiJEPAObjective` with ``alpha = 1``
  (EMA target encoder, one MLP predictor).
* ``"bijepa"``: BiJEPA, ``alpha = 0.5`` (two MLP predictors), EMA target encoder.
* ``"hamjepa"``: the registry's ``hamjepa`` objective on the MLP/ConvNet encoder, whose output
  ``z = [q; p]`` is split in halves; the predictor is the symplectic
  :class:`~hamjepa.dynamics.HamiltonianPredictor` (separable H, 2 leapfrog steps of dt 0.05), forward
  with ``+h`` (context -> target) and backward with ``-h``. No EMA target (stop-gradient on the other
  view), matching on the full state (``match="qp"``), the paper's anti-collapse regularisers, no
  residual-scale warm-up (this loop has no epochs). The predictor probe uses ``Psi_{+h}(f(x))``.

Task settings follow ``bijepa_lejepa.md`` Secs. 1.3-1.5; ``scale`` shortens training for quick runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from hamjepa.config import Config, OptimConfig, PredictorConfig
from hamjepa.engine.build import build_context, build_objective
from hamjepa.objectives.base import Objective
from hamjepa.objectives.bijepa import norm_mode_settings
from hamjepa.sequences.data import ImageHalves, SequenceTask, make_lorenz_task, make_sine_task
from hamjepa.sequences.encoders import HalfImageEncoder, SequenceEncoder
from hamjepa.sequences.protocols import (
    decoder_probe,
    embed_frozen,
    linear_classification_probe,
    linear_regression_probe,
)
from hamjepa.sequences.train import predict_forward, train_pairs

__all__ = [
    "DEFAULT_SETTINGS",
    "METHODS",
    "SEQUENCE_TASKS",
    "TASKS",
    "TaskSettings",
    "benchmark_config",
    "build_benchmark_objective",
    "make_sequence_task",
    "run_image_halves",
    "run_sequence",
]

METHODS: tuple[str, ...] = ("jepa", "bijepa", "hamjepa")
SEQUENCE_TASKS: tuple[str, ...] = ("sine", "lorenz")
TASKS: tuple[str, ...] = ("sine", "lorenz", "halves")


@dataclass(frozen=True)
class TaskSettings:
    """Training/probing settings of one task (paper values unless noted).

    Attributes:
        steps: optimiser steps (sequences); for ``halves`` the number of steps over the shuffled
            training set (the paper's 10 epochs are 2,350 steps; our default is shorter, see
            :data:`DEFAULT_SETTINGS`).
        lr: AdamW learning rate; weight decay comes from the norm mode (1e-4 "expressive").
        batch_size: pairs per step.
        hidden_dim: encoder/predictor hidden width.
        embed_dim: D (even, so HamJEPA can split it into q and p).
        momentum: EMA momentum of the target encoder.
        probe_epochs: regression-probe epochs (sequences) or classifier/decoder epochs (halves).
        probe_train_size: images used to train the halves probes (None = all 60,000).
    """

    steps: int
    lr: float
    batch_size: int
    hidden_dim: int
    embed_dim: int
    momentum: float
    probe_epochs: int
    probe_train_size: int | None = None

    def scaled(self, scale: float) -> TaskSettings:
        """Copy with ``steps`` multiplied by ``scale`` (at least 1)."""
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        return replace(self, steps=max(1, math.ceil(self.steps * scale)))


DEFAULT_SETTINGS: dict[str, TaskSettings] = {
    "sine": TaskSettings(
        steps=2000, lr=1e-3, batch_size=64, hidden_dim=64, embed_dim=16, momentum=0.995, probe_epochs=100
    ),
    "lorenz": TaskSettings(
        steps=3000, lr=5e-4, batch_size=64, hidden_dim=128, embed_dim=32, momentum=0.995, probe_epochs=200
    ),
    # Paper: 10 epochs of MNIST (2,350 steps) and probes over all 60k images for 10 epochs. To fit the
    # CPU budget we train 100 steps of batch 128 (~0.2 epoch of Fashion-MNIST) and train the probes
    # (10 epochs) on the first 5,000 training images; test metrics use all 10,000 test images.
    "halves": TaskSettings(
        steps=100,
        lr=1e-3,
        batch_size=128,
        hidden_dim=128,
        embed_dim=64,
        momentum=0.99,
        probe_epochs=10,
        probe_train_size=5000,
    ),
}


def make_sequence_task(name: str, train_seed: int, *, data_seed: int = 42) -> SequenceTask:
    """The ``sine`` or ``lorenz`` task with fixed evaluation sets (``data_seed``) and a seeded train stream."""
    if name == "sine":
        return make_sine_task(data_seed, train_seed)
    if name == "lorenz":
        return make_lorenz_task(data_seed, train_seed)
    raise ValueError(f"sequence task must be one of {', '.join(SEQUENCE_TASKS)}, got {name!r}")


def benchmark_config(method: str, settings: TaskSettings, *, norm_mode: str = "expressive", seed: int = 0) -> Config:
    """The engine config of one benchmark run: its ``objective``, ``predictor`` and ``optim`` sections.

    ``jepa`` / ``bijepa`` are the registry's ``bijepa`` objective (``alpha`` 1 / 0.5, the task's predictor
    width and EMA momentum). ``hamjepa`` is the registry's ``hamjepa`` objective with the predictor config's
    defaults (separable H, leapfrog, dt 0.05, 2 steps, ``base_coeff`` 0.1, ``residual_scale`` 0.02, depth 2,
    GELU) at the task's hidden width. The optimiser is AdamW with the norm mode's weight decay at the task's
    constant learning rate (no warm-up, cosine floor = lr), no clipping.
    """
    mode = norm_mode_settings(norm_mode)
    optim = OptimConfig(lr=settings.lr, weight_decay=mode.weight_decay, warmup_epochs=0.0, min_lr_ratio=1.0)
    if method in ("jepa", "bijepa"):
        objective: dict[str, Any] = {
            "name": "bijepa",
            "alpha": 1.0 if method == "jepa" else 0.5,
            "hidden_dim": settings.hidden_dim,
            "norm_mode": norm_mode,
            "momentum": settings.momentum,
        }
        return Config(seed=seed, predictor=PredictorConfig(kind="none"), objective=objective, optim=optim)
    if method == "hamjepa":
        if settings.embed_dim % 2:
            raise ValueError(f"hamjepa splits z into q and p: embed_dim must be even, got {settings.embed_dim}")
        objective = {
            "name": "hamjepa",
            "match": "qp",
            "p_weight": 0.0,
            "logdet_proj_dim": min(128, settings.embed_dim // 2),
            "residual_scale_warmup_epochs": 0,
        }
        predictor = PredictorConfig(kind="hamiltonian", hidden_dim=settings.hidden_dim)
        return Config(seed=seed, predictor=predictor, objective=objective, optim=optim)
    raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def build_benchmark_objective(
    method: str, settings: TaskSettings, *, norm_mode: str = "expressive", seed: int = 0
) -> Objective:
    """The objective (with its predictor(s)) of ``method`` in :data:`METHODS`, built by the engine from
    :func:`benchmark_config`."""
    cfg = benchmark_config(method, settings, norm_mode=norm_mode, seed=seed)
    return build_objective(cfg, build_context(cfg, dim=settings.embed_dim))


def _sequence_batches(task: SequenceTask, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    while True:
        seqs = task.sample_train(batch_size)
        yield task.context(seqs), task.target(seqs)


def _tail_mean(values: Tensor, fraction: float = 0.05) -> float:
    n = max(1, int(values.numel() * fraction))
    return float(values[-n:].mean())


def _history_summary(history: dict[str, Tensor]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "train_loss_end": _tail_mean(history["loss"]),
        "embed_norm_end": _tail_mean(history["online_norm"]),
    }
    if "loss_fwd" in history:
        summary["train_loss_fwd_end"] = _tail_mean(history["loss_fwd"])
    if "pred" in history:
        summary["train_loss_fwd_end"] = _tail_mean(history["pred"])
    return summary


def run_sequence(
    task_name: str, method: str, seed: int, *, settings: TaskSettings | None = None, norm_mode: str = "expressive"
) -> dict[str, Any]:
    """Train ``method`` on the ``sine`` / ``lorenz`` task with ``seed`` and evaluate Protocols A and B.

    Returns a JSON-ready dict: ``metrics`` (``enc_probe_train``/``enc_probe_heldout``,
    ``pred_probe_train``/``pred_probe_heldout`` MSEs, ``train_loss_end``, ``train_loss_fwd_end``,
    ``embed_norm_end``, ``train_seconds``), ``settings``, and ``plot`` (test sequences ``[20, T, C]``
    and the two probes' 1-step forecasts ``[20, C]``, as nested lists).
    """
    settings = settings or DEFAULT_SETTINGS[task_name]
    task = make_sequence_task(task_name, seed)
    torch.manual_seed(seed)
    mode = norm_mode_settings(norm_mode)
    encoder = SequenceEncoder(
        task.context_dim,
        settings.hidden_dim,
        settings.embed_dim,
        layer_norm=mode.layer_norm,
        unit_sphere=mode.unit_sphere,
    )
    cfg = benchmark_config(method, settings, norm_mode=norm_mode, seed=seed)
    objective = build_objective(cfg, build_context(cfg, dim=settings.embed_dim))
    result = train_pairs(
        encoder, objective, _sequence_batches(task, settings.batch_size), steps=settings.steps, optim=cfg.optim
    )

    def features(seqs: Tensor) -> Tensor:
        return embed_frozen(encoder, task.context(seqs))

    enc = {name: features(getattr(task, name)) for name in ("probe", "heldout", "test")}
    pred = {name: predict_forward(objective, z) for name, z in enc.items()}
    target = {name: task.next_value(getattr(task, name)) for name in ("probe", "heldout", "test")}
    probe_a = linear_regression_probe(
        enc["probe"],
        target["probe"],
        enc["heldout"],
        target["heldout"],
        epochs=settings.probe_epochs,
        seed=seed,
        extra_x=enc["test"],
    )
    probe_b = linear_regression_probe(
        pred["probe"],
        target["probe"],
        pred["heldout"],
        target["heldout"],
        epochs=settings.probe_epochs,
        seed=seed,
        extra_x=pred["test"],
    )
    metrics = {
        "enc_probe_train": probe_a.train,
        "enc_probe_heldout": probe_a.heldout,
        "pred_probe_train": probe_b.train,
        "pred_probe_heldout": probe_b.heldout,
        "train_seconds": result.seconds,
        **_history_summary(result.history),
    }
    plot = {
        "test": task.test.tolist(),
        "split": task.split,
        "enc_forecast": probe_a.predictions.tolist() if probe_a.predictions is not None else None,
        "pred_forecast": probe_b.predictions.tolist() if probe_b.predictions is not None else None,
    }
    return {
        "task": task_name,
        "method": method,
        "seed": seed,
        "norm_mode": norm_mode,
        "settings": asdict(settings),
        "metrics": metrics,
        "plot": plot,
    }


def _image_batches(halves: ImageHalves, batch_size: int, seed: int) -> Iterator[tuple[Tensor, Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    n = halves.train_left.shape[0]
    while True:
        for idx in torch.randperm(n, generator=generator).split(batch_size):
            if idx.numel() < 2:
                continue
            yield halves.train_left[idx], halves.train_right[idx]


def run_image_halves(
    halves: ImageHalves,
    method: str,
    seed: int,
    *,
    settings: TaskSettings | None = None,
    norm_mode: str = "expressive",
) -> dict[str, Any]:
    """Train ``method`` on left -> right image halves and evaluate the linear and decoder probes.

    Returns a JSON-ready dict with ``metrics``: ``linear_acc_train``/``linear_acc_test`` (%),
    ``decoder_mse_train``/``decoder_mse_test``, ``train_loss_end``, ``train_loss_fwd_end``,
    ``embed_norm_end``, ``train_seconds``.
    """
    settings = settings or DEFAULT_SETTINGS["halves"]
    torch.manual_seed(seed)
    mode = norm_mode_settings(norm_mode)
    encoder = HalfImageEncoder(
        settings.embed_dim, layer_norm=mode.layer_norm, unit_sphere=mode.unit_sphere, hidden_dim=settings.hidden_dim
    )
    cfg = benchmark_config(method, settings, norm_mode=norm_mode, seed=seed)
    objective = build_objective(cfg, build_context(cfg, dim=settings.embed_dim))
    result = train_pairs(
        encoder, objective, _image_batches(halves, settings.batch_size, seed), steps=settings.steps, optim=cfg.optim
    )
    n_train = halves.train_left.shape[0]
    if settings.probe_train_size is not None:
        n_train = min(n_train, settings.probe_train_size)
    train_feats = embed_frozen(encoder, halves.train_left[:n_train], batch_size=1024)
    test_feats = embed_frozen(encoder, halves.test_left, batch_size=1024)
    num_classes = int(halves.y_train.max()) + 1
    linear = linear_classification_probe(
        train_feats,
        halves.y_train[:n_train],
        test_feats,
        halves.y_test,
        num_classes=num_classes,
        epochs=settings.probe_epochs,
        seed=seed,
    )
    decoder = decoder_probe(
        train_feats,
        halves.train_right_01[:n_train],
        test_feats,
        halves.test_right_01,
        epochs=settings.probe_epochs,
        seed=seed,
    )
    metrics = {
        "linear_acc_train": linear.train,
        "linear_acc_test": linear.heldout,
        "decoder_mse_train": decoder.train,
        "decoder_mse_test": decoder.heldout,
        "train_seconds": result.seconds,
        **_history_summary(result.history),
    }
    return {
        "task": "halves",
        "method": method,
        "seed": seed,
        "norm_mode": norm_mode,
        "settings": asdict(settings),
        "metrics": metrics,
        "plot": None,
    }


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (for reports)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
