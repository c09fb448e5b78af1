"""SIGReg: sliced Epps-Pulley test of embeddings against N(0, 1).

Spec E.2 (and LeJEPA, bijepa_lejepa.md part 2).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from hamjepa.distributed import all_reduce_sum
from hamjepa.numerics import upcast
from hamjepa.seeding import mix_seed

SIGRegWeight = Literal["gaussian", "uniform"]


def epps_pulley_knots(n_points: int, t_max: float, weight: str = "gaussian") -> tuple[Tensor, Tensor]:
    """Quadrature knots and weights of the folded trapezoid rule (docs/spec.md §E.2 step 3).

    Returns:
        ``t [n_points]`` = linspace(0, t_max, n_points) and ``W [n_points]`` = ``w_j * exp(-t_j^2 / 2)``
        (``weight='gaussian'``) or ``w_j`` (``'uniform'``), with ``w_j = 2 * delta`` at interior knots and
        ``delta`` at both ends, ``delta = t_max / (n_points - 1)`` (float64).
    """
    if not (isinstance(n_points, int) and n_points >= 3 and n_points % 2 == 1):
        raise ValueError(f"n_points must be an odd int >= 3, got {n_points!r}")
    if not t_max > 0:
        raise ValueError(f"t_max must be > 0, got {t_max}")
    if weight not in ("gaussian", "uniform"):
        raise ValueError(f"weight must be 'gaussian' or 'uniform', got {weight!r}")
    t = torch.linspace(0.0, float(t_max), n_points, dtype=torch.float64)
    delta = float(t_max) / (n_points - 1)
    w = torch.full((n_points,), 2.0 * delta, dtype=torch.float64)
    w[0] = w[-1] = delta
    if weight == "gaussian":
        w = w * torch.exp(-0.5 * t.square())
    return t, w


class SIGReg(nn.Module):
    """Sliced Epps-Pulley statistic, averaged over views and slices (docs/spec.md §E.2).

    For ``z [V, B, D]`` (or ``[B, D]`` = one view): directions ``A [D, M]`` (unit-norm Gaussian columns)
    are drawn by :meth:`directions` from a ``torch.Generator`` seeded with ``mix_seed(seed, step)``, so all
    ranks share ``A`` without communication and a new ``A`` is drawn every step (the caller draws them before
    the step and passes them to ``forward``). ``y = z A``; for knots
    ``t_j``: ``c_j = mean_b cos(t_j y)``, ``s_j = mean_b sin(t_j y)`` with the cos/sin **sums** and the
    sample count ``B`` all-reduced over ranks; ``T_{v,m} = B sum_j W_j [(c_j - exp(-t_j^2/2))^2 + s_j^2]``
    and the result is ``mean_{v,m} T_{v,m}`` (0-d, fp32).

    [D] ``A`` is drawn in fp32 and the projection runs in fp32; the paper's code drew ``A`` in bf16 and
    projected in bf16. Expected value for exact N(0, 1) projections: ``sum_j W_j (1 - exp(-t_j^2))``.
    """

    knots: Tensor
    weights: Tensor

    def __init__(
        self,
        num_slices: int = 64,
        n_points: int = 9,
        t_max: float = 3.0,
        weight: SIGRegWeight = "gaussian",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not (isinstance(num_slices, int) and num_slices >= 1):
            raise ValueError(f"num_slices must be a positive int, got {num_slices!r}")
        if not (isinstance(seed, int) and seed >= 0):
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        t, w = epps_pulley_knots(n_points, t_max, weight)
        self.num_slices = num_slices
        self.n_points = n_points
        self.t_max = float(t_max)
        self.weight = weight
        self.seed = seed
        self.register_buffer("knots", t.float(), persistent=False)
        self.register_buffer("weights", w.float(), persistent=False)
        self.register_buffer("target_cf", torch.exp(-0.5 * t.square()).float(), persistent=False)

    def directions(self, dim: int, step: int, device: torch.device) -> Tensor:
        """Unit-norm slicing directions ``A [dim, num_slices]`` (fp32) for training step ``step``."""
        if not (isinstance(step, int) and step >= 0):
            raise ValueError(f"step must be a non-negative int, got {step!r}")
        gen = torch.Generator(device=device).manual_seed(mix_seed(self.seed, step))
        a = torch.randn(dim, self.num_slices, generator=gen, device=device, dtype=torch.float32)
        return a / a.norm(dim=0, keepdim=True)

    def forward(self, z: Tensor, directions: Tensor) -> Tensor:
        """Args: z ``[V, B, D]`` or ``[B, D]``; directions: ``A [D, num_slices]``, this step's
        :meth:`directions` (drawn on the host before the step). Returns 0-d."""
        if not isinstance(z, torch.Tensor) or z.ndim not in (2, 3):
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"SIGReg input must be [V, B, D] or [B, D], got {shape}")
        if z.ndim == 2:
            z = z.unsqueeze(0)
        v, b, d = z.shape
        a = directions
        if a.ndim != 2 or tuple(a.shape) != (d, self.num_slices):
            raise ValueError(
                f"SIGReg: directions must be [D={d}, num_slices={self.num_slices}] (SIGReg.directions(D, step, "
                f"device)), got {tuple(a.shape)}"
            )
        y = upcast(z) @ a.to(upcast(z).dtype)  # [V, B, M]
        ty = y.unsqueeze(-1) * self.knots  # [V, B, M, J]
        local = torch.cat(
            [torch.cos(ty).sum(1).reshape(-1), torch.sin(ty).sum(1).reshape(-1), y.new_full((1,), float(b))]
        )
        s = all_reduce_sum(local)
        n = s[-1]
        size = v * self.num_slices * self.n_points
        cos_mean = s[:size].reshape(v, self.num_slices, self.n_points) / n
        sin_mean = s[size : 2 * size].reshape(v, self.num_slices, self.n_points) / n
        err = (cos_mean - self.target_cf).square() + sin_mean.square()
        stat = n * (err * self.weights).sum(-1)  # [V, M]
        return stat.mean()

    def extra_repr(self) -> str:
        return (
            f"num_slices={self.num_slices}, n_points={self.n_points}, t_max={self.t_max}, "
            f"weight={self.weight!r}, seed={self.seed}"
        )


def expected_gaussian_statistic(n_points: int = 9, t_max: float = 3.0, weight: str = "gaussian") -> float:
    """``E[T]`` for exact N(0, 1) projections: ``sum_j W_j (1 - exp(-t_j^2))`` (independent of B)."""
    t, w = epps_pulley_knots(n_points, t_max, weight)
    return float((w * (1.0 - torch.exp(-t.square()))).sum())


__all__ = ["SIGReg", "epps_pulley_knots", "expected_gaussian_statistic"]
