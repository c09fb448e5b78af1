"""Hooks into the training loop, so that the engine needs to know nothing about what runs beside it.

Whoever builds a :class:`~hamjepa.engine.trainer.Trainer` passes ``callbacks=[...]``; the CLI passes
:func:`hamjepa.evaluation.callbacks.callbacks_from_config` (the online kNN monitor and the evaluation at the
end of training). Subclass :class:`Callback` and override the hooks you need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hamjepa.engine.trainer import Trainer, TrainResult


class Callback:
    """Base of training callbacks; every hook is a no-op. Hooks run on every rank (check ``trainer.is_main``).

    Attributes:
        kind: the ``kind`` of the rows logged from :meth:`on_epoch_end` results.
    """

    kind: str = "callback"

    def on_train_start(self, trainer: Trainer) -> None:
        """Called once in :meth:`Trainer.fit`, after the run directory exists and before the first step."""

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> dict[str, Any] | None:
        """Called after each completed epoch (1-indexed); a returned dict is logged as a ``kind`` row."""
        return None

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        """Called once when :meth:`Trainer.fit` finishes normally (not after an error)."""
