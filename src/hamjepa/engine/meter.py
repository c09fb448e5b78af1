"""Loss terms accumulated on the device: per-epoch sums and the images/s window between log points."""

from __future__ import annotations

import time

import torch
from torch import Tensor


class LossMeter:
    """Stacks each step's terms in a fixed order and keeps their per-epoch sum on the device (no sync).

    :meth:`fetch` reads the loss, the terms and extra device scalars in one host sync at a log point.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.start_epoch()

    def start_epoch(self) -> None:
        """Reset the epoch sums and the throughput window."""
        self._sum: Tensor | None = None
        self._steps = 0
        self.restart_window()

    def restart_window(self) -> None:
        """Start a new images/s window (after a log point)."""
        self._t0 = time.perf_counter()
        self._images = 0

    def add(self, terms: dict[str, Tensor], images: int) -> Tensor:
        """Add one step's terms (and the ``images`` it consumed on all ranks); returns them stacked ``[T]``."""
        if not self.names:
            self.names = list(terms)
        stacked = torch.stack([terms[k].float() for k in self.names])
        self._sum = stacked if self._sum is None else self._sum + stacked
        self._steps += 1
        self._images += images
        return stacked

    def fetch(self, loss: Tensor, stacked: Tensor, *extra: Tensor) -> tuple[float, dict[str, float], list[float]]:
        """One sync: ``(loss, {term: value}, [extra values])``."""
        parts = [loss.float().reshape(1), stacked, *(e.float().reshape(1) for e in extra)]
        values = torch.cat(parts).tolist()
        n = len(self.names)
        return values[0], dict(zip(self.names, values[1 : 1 + n], strict=True)), values[1 + n :]

    def images_per_s(self) -> float:
        """Images per second since the window started."""
        return self._images / max(time.perf_counter() - self._t0, 1e-9)

    def epoch_means(self) -> dict[str, float]:
        """``{'mean_<term>': value}`` over this epoch's steps (one sync)."""
        if self._sum is None or self._steps == 0:
            return {}
        return {f"mean_{k}": v for k, v in zip(self.names, (self._sum / self._steps).tolist(), strict=True)}
