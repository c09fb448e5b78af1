"""Anti-collapse regularisers of HamJEPA (spec D.3-D.6), exact under DDP (spec D.8).

Each module computes *sufficient statistics* of its local input, sums them over ranks with the
autograd-aware :func:`hamjepa.distributed.all_reduce_sum` and only then forms the penalty, so both the
penalty and its gradient are those of the global (concatenated) batch; see
:mod:`hamjepa.objectives.base` for the resulting DDP gradient convention.

Hinges: ``hinge="squared"`` gives ``relu(.)**2`` (what the reference code does and what produced the
paper's numbers, the default); ``hinge="linear"`` gives ``relu(.)`` (the "hinge" written in the paper's
text, eqs. 36/38) [D].
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn

from hamjepa.distributed import all_reduce_sum, get_world_size
from hamjepa.numerics import upcast
from hamjepa.seeding import mix_seed

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


def _check_matrix(x: Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a 2-D tensor [n, m] (samples, features), got {shape}")


class BudgetOutput(NamedTuple):
    """``loss`` 0-d; ``q2``, ``p2``: global mean second moments of q and p (0-d, attached to the graph)."""

    loss: Tensor
    q2: Tensor
    p2: Tensor


class ScaleBudget(nn.Module):
    """Fixed-units second-moment budget (spec D.3, paper eq. 33).

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
        _check_matrix(q, "q")
        _check_matrix(p, "p")
        q, p = upcast(q), upcast(p)
        local = torch.stack(
            [
                q.square().sum(),
                p.square().sum(),
                q.new_full((), float(q.numel())),
                q.new_full((), float(p.numel())),
            ]
        )
        s = all_reduce_sum(local)
        q2 = s[0] / s[2]
        p2 = s[1] / s[3]
        loss = (q2 - self.target_q).square() + (p2 - self.target_p).square()
        return BudgetOutput(loss, q2, p2)

    def extra_repr(self) -> str:
        return f"target_q={self.target_q}, target_p={self.target_p}"


class VarianceFloorOutput(NamedTuple):
    """``loss`` 0-d; ``std`` ``[m]``: per-column ``sqrt(var + eps)`` of the global batch."""

    loss: Tensor
    std: Tensor


class VarianceFloor(nn.Module):
    """Per-dimension standard-deviation floor (spec D.4).

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
        _check_matrix(x, "x")
        x = upcast(x)
        m = x.shape[1]
        local = torch.cat([x.sum(0), x.square().sum(0), x.new_full((1,), float(x.shape[0]))])
        s = all_reduce_sum(local)
        n = s[-1]
        n_safe = n.clamp_min(1.0)
        mean = s[:m] / n_safe
        var = (s[m : 2 * m] / n_safe - mean.square()).clamp_min(0.0)
        std = torch.sqrt(var + self.eps)
        loss = apply_hinge(self.gamma - std, self.hinge).mean()
        loss = torch.where(n >= 2, loss, torch.zeros_like(loss))
        return VarianceFloorOutput(loss, std)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, eps={self.eps}, hinge={self.hinge!r}"


class LogDetFloorOutput(NamedTuple):
    """All 0-d. ``logdet`` = ``log|det C| / k``; ``pr_norm`` = participation ratio / k;
    ``eigmax`` = largest-eigenvalue fraction of ``C``."""

    loss: Tensor
    logdet: Tensor
    pr_norm: Tensor
    eigmax: Tensor


class ProjectedLogDetFloor(nn.Module):
    """Random-projection log-det floor + participation-ratio floor + top-eigenvalue ceiling (spec D.5).

    For ``X [n, d]`` (global ``n`` rows over all ranks):

    1. ``k = min(proj_dim, d, n - 1)``.
    2. ``R [d, k]`` = Q factor of the reduced QR of a standard-Gaussian ``d x k`` matrix, drawn on the CPU
       (fp32) from a ``torch.Generator`` seeded with ``mix_seed(seed, t_r)``, where ``t_r = (t // r) * r``
       is the call counter ``t`` at the last scheduled refresh (``r = refresh_interval``). ``R`` is thus a
       pure function of ``(seed, t // r, d, k)``: every rank draws the same ``R`` without communication, and
       a run resumed from a checkpoint (the counter is a persistent buffer, ``R`` is not saved) redraws
       exactly the same ``R``. It is redrawn when ``t % r == 0`` or when ``d``, ``k`` or the device change.
       [D] the reference draws from the global RNG stream instead.
    3. ``Y = (X - mean_global(X)) R``; ``C = (Y^T Y - n ybar ybar^T) / (n - 1)`` from all-reduced
       ``n, sum y, Y^T Y``, symmetrised, ``+ eps I``.
    4. ``logdet = log|det C| / k``, ``PR_norm = tr(C)^2 / (||C||_F^2 + 1e-12) / k``,
       ``eigmax = lambda_max(C) / (sum lambda(C) + 1e-12)``.
    5. ``loss = hinge(floor - logdet) + pr_weight * hinge(pr_floor - PR_norm)
       + eigmax_weight * hinge(eigmax - eigmax_ceiling)``; the last two only when configured.
       ``hinge='squared'`` (default) = reference code, ``'linear'`` = paper text (eqs. 36/38) [D].

    Returns a zero loss (and zero statistics) when the global ``n < 2``.

    DDP note: ``k`` is computed from ``local n * world_size``, i.e. all ranks are assumed to hold
    equally many rows (a distributed sampler with ``drop_last``), which keeps the step free of host
    synchronisation; the covariance itself uses the exact all-reduced ``n``.
    On CUDA ``torch.linalg.eigvalsh`` checks its solver status, which synchronises with the host once
    per call.
    """

    calls: Tensor

    def __init__(
        self,
        proj_dim: int = 128,
        floor: float = -1.5,
        eps: float = 1e-4,
        refresh_interval: int = 16,
        pr_floor: float | None = None,
        eigmax_ceiling: float | None = None,
        pr_weight: float = 1.0,
        eigmax_weight: float = 1.0,
        hinge: Hinge = "squared",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not (isinstance(proj_dim, int) and proj_dim >= 1):
            raise ValueError(f"proj_dim must be a positive int, got {proj_dim!r}")
        if not (isinstance(refresh_interval, int) and refresh_interval >= 1):
            raise ValueError(f"refresh_interval must be a positive int, got {refresh_interval!r}")
        if not eps > 0:
            raise ValueError(f"eps (ridge added to the projected covariance) must be > 0, got {eps}")
        if pr_floor is not None and not 0 < pr_floor <= 1:
            raise ValueError(f"pr_floor is a normalised participation ratio in (0, 1], got {pr_floor}")
        if eigmax_ceiling is not None and not 0 < eigmax_ceiling <= 1:
            raise ValueError(f"eigmax_ceiling is an eigenvalue fraction in (0, 1], got {eigmax_ceiling}")
        if pr_weight < 0 or eigmax_weight < 0:
            raise ValueError(f"pr_weight and eigmax_weight must be >= 0, got {pr_weight}, {eigmax_weight}")
        if not (isinstance(seed, int) and seed >= 0):
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.proj_dim = proj_dim
        self.floor = float(floor)
        self.eps = float(eps)
        self.refresh_interval = refresh_interval
        self.pr_floor = None if pr_floor is None else float(pr_floor)
        self.eigmax_ceiling = None if eigmax_ceiling is None else float(eigmax_ceiling)
        self.pr_weight = float(pr_weight)
        self.eigmax_weight = float(eigmax_weight)
        self.hinge = check_hinge(hinge)
        self.seed = seed
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self._calls = 0  # host mirror of ``calls`` (reading the buffer would sync with the device)
        self._projection: Tensor | None = None
        self._projection_key: tuple[Any, ...] | None = None

    @property
    def projection(self) -> Tensor | None:
        """The current projection ``R [d, k]`` (None before the first call)."""
        return self._projection

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._calls = int(self.calls)
        self._projection = None
        self._projection_key = None

    def _get_projection(self, d: int, k: int, device: torch.device, call: int) -> Tensor:
        refresh_call = (call // self.refresh_interval) * self.refresh_interval
        key = (d, k, device, refresh_call)
        if self._projection is None or self._projection_key != key:
            gen = torch.Generator(device="cpu").manual_seed(mix_seed(self.seed, refresh_call))
            gauss = torch.randn(d, k, generator=gen, dtype=torch.float32)
            q, _ = torch.linalg.qr(gauss, mode="reduced")
            self._projection = q.to(device)
            self._projection_key = key
        return self._projection

    def forward(self, x: Tensor) -> LogDetFloorOutput:
        """Args: x ``[n, d]`` local rows (computed in fp32)."""
        _check_matrix(x, "x")
        x = upcast(x)
        n_local, d = x.shape
        call = self._calls
        self._calls += 1
        self.calls.fill_(self._calls)
        k = min(self.proj_dim, d, n_local * get_world_size() - 1)
        if k < 1:
            zero = x.new_zeros(())
            return LogDetFloorOutput(zero, zero, zero, zero)
        proj = self._get_projection(d, k, x.device, call)

        col = all_reduce_sum(torch.cat([x.sum(0), x.new_full((1,), float(n_local))]))
        n = col[-1]
        y = (x - col[:-1] / n) @ proj.to(x.dtype)  # [n_local, k]
        stats = all_reduce_sum(torch.cat([y.sum(0), (y.T @ y).reshape(-1)]))
        ybar = stats[:k] / n
        cov = (stats[k:].reshape(k, k) - n * torch.outer(ybar, ybar)) / (n - 1)
        cov = 0.5 * (cov + cov.T) + self.eps * torch.eye(k, device=x.device, dtype=x.dtype)

        logdet = torch.linalg.slogdet(cov).logabsdet / k
        trace = torch.diagonal(cov).sum()
        pr_norm = trace.square() / (cov.square().sum() + 1e-12) / k
        eig = torch.linalg.eigvalsh(cov)
        eigmax = eig[-1] / (eig.sum() + 1e-12)

        loss = apply_hinge(self.floor - logdet, self.hinge)
        if self.pr_floor is not None:
            loss = loss + self.pr_weight * apply_hinge(self.pr_floor - pr_norm, self.hinge)
        if self.eigmax_ceiling is not None:
            loss = loss + self.eigmax_weight * apply_hinge(eigmax - self.eigmax_ceiling, self.hinge)
        return LogDetFloorOutput(loss, logdet, pr_norm, eigmax)

    def extra_repr(self) -> str:
        return (
            f"proj_dim={self.proj_dim}, floor={self.floor}, eps={self.eps}, "
            f"refresh_interval={self.refresh_interval}, "
            f"pr_floor={self.pr_floor}, eigmax_ceiling={self.eigmax_ceiling}, hinge={self.hinge!r}, "
            f"seed={self.seed}"
        )


class MeanPenaltyOutput(NamedTuple):
    """``loss`` 0-d = mean of squared column means; ``mean`` ``[m]`` global column means."""

    loss: Tensor
    mean: Tensor


class MeanPenalty(nn.Module):
    """Mean penalty (spec D.6): ``L = (1/m) sum_j (mean_i Z_ij)**2`` over the global batch (fp32)."""

    def forward(self, z: Tensor) -> MeanPenaltyOutput:
        """Args: z ``[n, m]`` local rows (all coordinates, q and p)."""
        _check_matrix(z, "z")
        z = upcast(z)
        s = all_reduce_sum(torch.cat([z.sum(0), z.new_full((1,), float(z.shape[0]))]))
        mean = s[:-1] / s[-1].clamp_min(1.0)
        return MeanPenaltyOutput(mean.square().mean(), mean)
