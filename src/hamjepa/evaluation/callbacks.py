"""Training callbacks from the evaluation side: the online kNN monitor and the evaluation after training.

The engine never imports this package; whoever builds a :class:`~hamjepa.engine.trainer.Trainer` (the CLI,
the reproduction driver) passes ``callbacks=callbacks_from_config(cfg)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from hamjepa.config import Config
from hamjepa.data import build_eval_data_from_config
from hamjepa.engine.callbacks import Callback

from .cli import evaluate_run
from .monitor import OnlineKNNMonitor
from .pipeline import EvalOptions

if TYPE_CHECKING:
    from hamjepa.engine.trainer import Trainer, TrainResult


def _take(batches: Any, n: int) -> tuple[Tensor, Tensor]:
    """The first ``n`` images and labels of a batch iterator factory."""
    xs, ys, have = [], [], 0
    for x, y in batches():
        xs.append(x)
        ys.append(y)
        have += x.shape[0]
        if have >= n:
            break
    return torch.cat(xs)[:n], torch.cat(ys)[:n]


class KNNMonitorCallback(Callback):
    """``train.monitor_every``: kNN top-1 on a fixed stratified subset of the eval data (docs/spec.md §H.2, one k).

    The subset is loaded onto the trainer's device when training starts; results are logged as
    ``{"kind": "monitor", "knn_top1": ...}`` rows.
    """

    kind = "monitor"

    def __init__(self) -> None:
        self.monitor: OnlineKNNMonitor | None = None

    def on_train_start(self, trainer: Trainer) -> None:
        t, d = trainer.cfg.train, trainer.cfg.data
        # The run's own eval data (its workers and data.on_corrupt policy), cut to the monitor's size.
        data = build_eval_data_from_config(trainer.cfg, subset=max(t.monitor_train_size, t.monitor_test_size))
        xtr, ytr = _take(data.train, t.monitor_train_size)
        xte, yte = _take(data.test, t.monitor_test_size)
        self.monitor = OnlineKNNMonitor(
            xtr,
            ytr,
            xte,
            yte,
            mean=data.mean,
            std=data.std,
            k=min(20, xtr.shape[0]),
            every_n_epochs=t.monitor_every,
            num_classes=data.num_classes,
            batch_size=d.eval_batch_size,
            device=trainer.device,
        )

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> dict[str, Any] | None:
        if self.monitor is None:
            return None
        return self.monitor.maybe_run(trainer.encoder, epoch)


class EvalAtEndCallback(Callback):
    """``train.eval_at_end``: the full frozen-feature evaluation of the finished run (rank 0)."""

    kind = "eval"

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        if trainer.is_main:
            # train.progress=false silences the evaluation's bars too
            evaluate_run(result.run_dir, options=EvalOptions(progress=trainer.cfg.train.progress))


def callbacks_from_config(cfg: Config) -> list[Callback]:
    """The callbacks a config asks for (``train.monitor_every > 0``, ``train.eval_at_end``)."""
    callbacks: list[Callback] = []
    if cfg.train.monitor_every > 0:
        callbacks.append(KNNMonitorCallback())
    if cfg.train.eval_at_end:
        callbacks.append(EvalAtEndCallback())
    return callbacks
