"""The device-side NaN guard: remember the first non-finite step without a host sync per step.

Each step records ``loss`` into two device tensors (the first bad step and its loss terms); the loop reads
:attr:`NonFiniteGuard.bad_step` together with the values it logs anyway (one sync), and before every
checkpoint, so a poisoned state is never saved.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from hamjepa.errors import HamjepaError


class NonFiniteLossError(HamjepaError):
    """The loss became NaN or infinite; the message names the step, the loss terms and what was saved."""


class NonFiniteGuard:
    """First non-finite step (1-indexed, ``-1`` = none yet) and its loss terms, kept on ``device``."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        """Forget any recorded step (start of :meth:`Trainer.fit`)."""
        self.bad_step: Tensor = torch.full((), -1, dtype=torch.long, device=self.device)
        self.bad_terms: Tensor | None = None
        self.term_names: list[str] = []

    def record(self, step: int, loss: Tensor, terms: Tensor, names: list[str]) -> None:
        """Remember ``step`` and ``terms`` (stacked as ``names``) if ``loss`` is the first non-finite one."""
        if self.bad_terms is None:
            self.term_names = list(names)
            self.bad_terms = torch.zeros(len(names), device=self.device)
        is_bad = ~torch.isfinite(loss) & (self.bad_step < 0)
        self.bad_step = torch.where(is_bad, torch.full_like(self.bad_step, step), self.bad_step)
        self.bad_terms = torch.where(is_bad, terms, self.bad_terms)

    def raise_if_bad(
        self,
        *,
        steps_per_epoch: int,
        saved: str,
        log: Callable[[dict[str, Any]], None],
        bad_step: int | None = None,
    ) -> None:
        """Raise :class:`NonFiniteLossError` if a step was non-finite (one sync unless ``bad_step`` is given).

        Args:
            steps_per_epoch: to name the epoch of the bad step.
            saved: what the run directory holds, as a phrase completing the message (see :func:`saved_note`).
            log: receives an ``{"kind": "error", ...}`` row before the error is raised.
            bad_step: the already fetched value of :attr:`bad_step`, to save a sync.
        """
        bad = int(self.bad_step) if bad_step is None else bad_step
        if bad < 0:
            return
        assert self.bad_terms is not None
        named = dict(zip(self.term_names, self.bad_terms.tolist(), strict=True))
        epoch = (bad - 1) // steps_per_epoch + 1
        log({"kind": "error", "step": bad, "epoch": epoch, "terms": named})
        raise NonFiniteLossError(
            f"train: non-finite loss at step {bad} (epoch {epoch}); terms: "
            + ", ".join(f"{k}={v:.4g}" for k, v in named.items())
            + f". {saved}; lower optim.lr or check the data."
        )


def saved_note(checkpoint: Path, saved_at: tuple[int, int] | None) -> str:
    """The sentence naming the last good checkpoint (``saved_at`` = its (epoch, step)) or saying none exists."""
    if saved_at is None:
        return f"No checkpoint was saved before this step ({checkpoint} does not exist)"
    epoch, step = saved_at
    return f"The last good checkpoint is {checkpoint} (epoch {epoch}, step {step})"
