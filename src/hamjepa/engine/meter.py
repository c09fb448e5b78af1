"""Loss terms accumulated on the device: per-epoch sums and the images/s window between log points."""

from __future__ import annotations

import time

import torch
from torch import Tensor


def _log_dtype(values: object) -> torch.dtype:
    """float64 when any logged value is float64 (a ``train.precision=fp64`` run logs exact values), else float32."""
    return torch.float64 if any(v.dtype == torch.float64 for v in values) else torch.float32  # type: ignore[attr-defined]


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
        dtype = _log_dtype(terms.values())
        stacked = torch.stack([terms[k].to(dtype) for k in self.names])
        self._sum = stacked if self._sum is None else self._sum + stacked
        self._steps += 1
        self._images += images
        return stacked

    def fetch(self, loss: Tensor, stacked: Tensor, *extra: Tensor) -> tuple[float, dict[str, float], list[float]]:
        """One sync: ``(loss, {term: value}, [extra values])``."""
        dtype = _log_dtype([loss, stacked])
        parts = [loss.to(dtype).reshape(1), stacked.to(dtype), *(e.to(dtype).reshape(1) for e in extra)]
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
