"""Sliced-projection view of rollouts (paper App. D.4, Cramér–Wold): how the 1-D projections of a rolled-out
ensemble drift away from their distribution at ``t = 0``.

By Cramér–Wold a distribution on ``R^D`` is determined by its 1-D projections ``a^T x`` (``|a| = 1``), so
following many random projections of an ensemble under a map is a dimension-free picture of what the map does
to the distribution. For every recorded time ``t`` and direction ``a_m``:

* **projected variance ratio** ``log(Var(a_m^T x_t) / Var(a_m^T x_0))``: a symplectic map preserves phase-space
  volume, so the projected spreads can shear and rotate into each other but cannot all shrink or all grow;
  a generic one-step map (explicit Euler) inflates or collapses them. Reported per time as the median and the
  spread (standard deviation, min, max) over directions.
* **sliced Wasserstein-1** ``W1(a_m^T x_t, a_m^T x_0) / std(a_m^T x_0)``: the 1-D optimal-transport distance
  (equal sample sizes: the mean gap between sorted samples) in units of the initial projected spread,
  averaged over directions.

The functions work on any ensemble trajectory ``[K, N, D]`` (toy systems: ``D = 2``; learned predictors:
the embedding dimension). Everything is computed in float64; non-finite ensembles (a diverged Euler
rollout) give NaN entries, reported as ``None`` in summaries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["SlicedDrift", "random_unit_directions", "sliced_drift", "wasserstein1_1d"]


def random_unit_directions(dim: int, num: int, seed: int) -> Tensor:
    """``num`` unit vectors in ``R^dim`` (float64 ``[num, dim]``), normalised Gaussians from ``seed``."""
    if dim < 1 or num < 1:
        raise ValueError(f"need dim >= 1 and num >= 1 directions, got dim={dim}, num={num}")
    g = torch.randn(num, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return g / g.norm(dim=1, keepdim=True)


def wasserstein1_1d(a: Tensor, b: Tensor) -> Tensor:
    """W1 between the empirical distributions of the columns of ``a [N, M]`` and ``b [N, M]`` -> ``[M]``."""
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two [N, M] sample matrices of equal shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    return (a.sort(dim=0).values - b.sort(dim=0).values).abs().mean(dim=0)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class SlicedDrift:
    """Per-time, per-direction drift of the projected 1-D distributions.

    Attributes:
        times: ``[K]`` step index of every recorded frame (``times[0] = 0``).
        log_var_ratio: ``[K, M]`` ``log(Var(a_m^T x_t) / Var(a_m^T x_0))``.
        w1_rel: ``[K, M]`` ``W1(a_m^T x_t, a_m^T x_0) / std(a_m^T x_0)``.
        projections_first: ``[K, N]`` the ensemble projected on the first direction (for histograms).
    """

    times: np.ndarray
    log_var_ratio: np.ndarray
    w1_rel: np.ndarray
    projections_first: np.ndarray

    def curves(self) -> dict[str, list[float | None]]:
        """Per-time curves over directions: median / min / max / std of the log-variance ratio, mean W1."""
        with np.errstate(invalid="ignore"):
            lv = self.log_var_ratio
            out = {
                "log_var_ratio_median": np.median(lv, axis=1),
                "log_var_ratio_min": lv.min(axis=1),
                "log_var_ratio_max": lv.max(axis=1),
                "log_var_ratio_spread": lv.std(axis=1),
                "sliced_w1_rel": self.w1_rel.mean(axis=1),
            }
        return {k: [_finite(float(x)) for x in v] for k, v in out.items()}

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers: final-time statistics over directions and the worst excursion over time."""
        final_lv, final_w1 = self.log_var_ratio[-1], self.w1_rel[-1]
        with np.errstate(invalid="ignore"):
            worst = float(np.abs(self.log_var_ratio).max()) if np.isfinite(self.log_var_ratio).all() else math.nan
            return {
                "directions": int(self.log_var_ratio.shape[1]),
                "steps": int(self.times[-1]),
                "log_var_ratio_final": {
                    "median": _finite(float(np.median(final_lv))),
                    "min": _finite(float(final_lv.min())),
                    "max": _finite(float(final_lv.max())),
                    "spread": _finite(float(final_lv.std())),
                    "median_abs": _finite(float(np.median(np.abs(final_lv)))),
                },
                "max_abs_log_var_ratio_over_time": _finite(worst),
                "sliced_w1_rel_final": _finite(float(final_w1.mean())),
                "diverged": bool(not np.isfinite(self.log_var_ratio).all()),
            }


@torch.no_grad()
def sliced_drift(frames: Tensor, directions: Tensor, times: Tensor | np.ndarray | None = None) -> SlicedDrift:
    """Drift of the projected distributions of an ensemble trajectory.

    Args:
        frames: ``[K, N, D]`` ensemble states at ``K`` recorded times (frame 0 = the reference), ``N >= 2``.
        directions: ``[M, D]`` unit directions (e.g. :func:`random_unit_directions`).
        times: ``[K]`` step index of every frame (default ``0 .. K-1``).
    """
    if frames.ndim != 3 or frames.shape[1] < 2:
        raise ValueError(f"frames must be [K, N, D] with N >= 2 ensemble members, got {tuple(frames.shape)}")
    if directions.ndim != 2 or directions.shape[1] != frames.shape[2]:
        raise ValueError(f"directions must be [M, D={frames.shape[2]}], got {tuple(directions.shape)}")
    proj = frames.to(torch.float64) @ directions.to(device=frames.device, dtype=torch.float64).T  # [K, N, M]
    var = proj.var(dim=1)  # [K, M]
    ref = proj[0]
    w1 = torch.stack([wasserstein1_1d(p, ref) for p in proj]) / ref.std(dim=0)
    steps = np.arange(frames.shape[0]) if times is None else np.asarray(times)
    return SlicedDrift(
        times=steps,
        log_var_ratio=torch.log(var / var[0]).cpu().numpy(),
        w1_rel=w1.cpu().numpy(),
        projections_first=proj[:, :, 0].cpu().numpy(),
    )
