"""Anti-collapse regularisers of HamJEPA (docs/spec.md §D.3, §D.4, §D.6), exact under DDP (docs/spec.md §D.8).

The log-det floor of §D.5 (with its sync-free spectrum) is in :mod:`hamjepa.objectives.floors`.

Each module computes *sufficient statistics* of its local input, sums them over ranks with the
autograd-aware :func:`hamjepa.distributed.all_reduce_sum` and only then forms the penalty, so both the
penalty and its gradient are those of the global (concatenated) batch; see
:mod:`hamjepa.objectives.base` for the resulting DDP gradient convention.

Hinges: ``hinge="squared"`` gives ``relu(.)**2`` (what the reference code does and what produced the
paper's numbers, the default); ``hinge="linear"`` gives ``relu(.)`` (the "hinge" written in the paper's
text, eqs. 36/38) [D].
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from hamjepa.distributed import all_reduce_sum
from hamjepa.numerics import upcast

Hinge = Literal["squared", "linear"]
HINGES: tuple[str, ...] = ("squared", "linear")


def check_hinge(hinge: str) -> str:
    """Validate a hinge form name (``'squared'`` or ``'linear'``)."""
    if hinge not in HINGES:
        raise ValueError(
            f"hinge must be one of {HINGES} ('squared' = reference code, 'linear' = paper text), got {hinge!r}"
        )
    return hinge


def apply_hinge(excess: Tensor, hinge: str) -> Tensor:
    """``relu(excess)**2`` for ``'squared'``, ``relu(excess)`` for ``'linear'`` (elementwise)."""
    r = torch.relu(excess)
    return r.square() if hinge == "squared" else r


def check_matrix(x: Tensor, name: str) -> None:
    """Raise a ValueError naming ``name`` unless ``x`` is a 2-D tensor ``[n, m]``."""
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a 2-D tensor [n, m] (samples, features), got {shape}")


class ColumnMoments(NamedTuple):
    """Global (all-reduced) column statistics of a matrix ``X [n, m]``: ``sum [m]``, ``sum_sq [m]``
    (sum of squares) and the row count ``n`` (0-d). One all-reduce serves every regulariser that needs them."""

    sum: Tensor
    sum_sq: Tensor
    n: Tensor

    def columns(self, start: int, stop: int) -> ColumnMoments:
        """The moments of the columns ``start:stop`` (e.g. the q or p half)."""
        return ColumnMoments(self.sum[start:stop], self.sum_sq[start:stop], self.n)


def column_moments(x: Tensor) -> ColumnMoments:
    """:class:`ColumnMoments` of the local rows ``x [n, m]`` summed over ranks (autograd-aware)."""
    check_matrix(x, "x")
    m = x.shape[1]
    s = all_reduce_sum(torch.cat([x.sum(0), x.square().sum(0), x.new_full((1,), float(x.shape[0]))]))
    return ColumnMoments(s[:m], s[m : 2 * m], s[-1].detach())  # a count: no gradient to carry


class BudgetOutput(NamedTuple):
    """``loss`` 0-d; ``q2``, ``p2``: global mean second moments of q and p (0-d, attached to the graph)."""

    loss: Tensor
    q2: Tensor
    p2: Tensor


class ScaleBudget(nn.Module):
    """Fixed-units second-moment budget (docs/spec.md §D.3, paper eq. 33).

    ``L = (mean(Q**2) - target_q)**2 + (mean(P**2) - target_p)**2`` with raw (uncentred) second moments
    over all samples and coordinates of the global batch.
    """

    def __init__(self, target_q: float = 1.0, target_p: float = 1.0) -> None:
        super().__init__()
        for name, value in (("target_q", target_q), ("target_p", target_p)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0 (a per-coordinate second moment), got {value}")
        self.target_q = float(target_q)
        self.target_p = float(target_p)

    def forward(self, q: Tensor, p: Tensor) -> BudgetOutput:
        """Args: q ``[n, d_q]``, p ``[n, d_p]`` (any float dtype; computed in fp32)."""
        check_matrix(q, "q")
        check_matrix(p, "p")
        return self.from_moments(column_moments(upcast(q)), column_moments(upcast(p)))

    def from_moments(self, q: ColumnMoments, p: ColumnMoments) -> BudgetOutput:
        """The budget from the global column moments of Q and P (see :func:`column_moments`)."""
        q2 = q.sum_sq.sum() / (q.n * q.sum_sq.shape[0])
        p2 = p.sum_sq.sum() / (p.n * p.sum_sq.shape[0])
        loss = (q2 - self.target_q).square() + (p2 - self.target_p).square()
        return BudgetOutput(loss, q2, p2)

    def extra_repr(self) -> str:
        return f"target_q={self.target_q}, target_p={self.target_p}"


class VarianceFloorOutput(NamedTuple):
    """``loss`` 0-d; ``std`` ``[m]``: per-column ``sqrt(var + eps)`` of the global batch."""

    loss: Tensor
    std: Tensor


class VarianceFloor(nn.Module):
    """Per-dimension standard-deviation floor (docs/spec.md §D.4).

    For ``X [n, m]``: biased column variances ``var_j = mean_i X_ij**2 - mean_j**2`` (clamped >= 0),
    ``std_j = sqrt(var_j + eps)`` and ``L = mean_j hinge(gamma - std_j)`` (squared hinge by default, as in
    the reference code). Returns 0 when the global ``n < 2``.
    """

    def __init__(self, gamma: float, eps: float = 1e-4, hinge: Hinge = "squared") -> None:
        super().__init__()
        if not gamma >= 0:
            raise ValueError(f"gamma (std floor) must be >= 0, got {gamma}")
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.gamma = float(gamma)
        self.eps = float(eps)
        self.hinge = check_hinge(hinge)

    def forward(self, x: Tensor) -> VarianceFloorOutput:
        """Args: x ``[n, m]`` (local rows; computed in fp32)."""
        check_matrix(x, "x")
        return self.from_moments(column_moments(upcast(x)))

    def from_moments(self, moments: ColumnMoments) -> VarianceFloorOutput:
        """The floor from the global column moments of ``X`` (see :func:`column_moments`)."""
        n = moments.n
        n_safe = n.clamp_min(1.0)
        mean = moments.sum / n_safe
        var = (moments.sum_sq / n_safe - mean.square()).clamp_min(0.0)
        std = torch.sqrt(var + self.eps)
        loss = apply_hinge(self.gamma - std, self.hinge).mean()
        loss = torch.where(n >= 2, loss, torch.zeros_like(loss))
        return VarianceFloorOutput(loss, std)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, eps={self.eps}, hinge={self.hinge!r}"


class MeanPenaltyOutput(NamedTuple):
    """``loss`` 0-d = mean of squared column means; ``mean`` ``[m]`` global column means."""

    loss: Tensor
    mean: Tensor


class MeanPenalty(nn.Module):
    """Mean penalty (docs/spec.md §D.6): ``L = (1/m) sum_j (mean_i Z_ij)**2`` over the global batch (fp32)."""

    def forward(self, z: Tensor) -> MeanPenaltyOutput:
        """Args: z ``[n, m]`` local rows (all coordinates, q and p)."""
        check_matrix(z, "z")
        return self.from_moments(column_moments(upcast(z)))

    def from_moments(self, moments: ColumnMoments) -> MeanPenaltyOutput:
        """The penalty from the global column moments of ``Z`` (see :func:`column_moments`)."""
        mean = moments.sum / moments.n.clamp_min(1.0)
        return MeanPenaltyOutput(mean.square().mean(), mean)
