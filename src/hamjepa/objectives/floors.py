"""The projected log-det floor of HamJEPA (docs/spec.md §D.5) and its sync-free spectrum.

:class:`ProjectedLogDetFloor` penalises a collapsing spectrum of a random projection of its input (log-det floor,
participation-ratio floor, top-eigenvalue ceiling), from all-reduced statistics (exact under DDP, docs/spec.md
§D.8). Its per-call host work (the call counter and the projection draw) is :meth:`ProjectedLogDetFloor.draw`,
so a training step can do it outside a compiled graph and pass the projection in.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn

from hamjepa.distributed import all_reduce_sum, get_world_size
from hamjepa.numerics import upcast
from hamjepa.objectives.regularizers import ColumnMoments, Hinge, apply_hinge, check_hinge, check_matrix
from hamjepa.seeding import mix_seed

SpectralMethod = Literal["sync_free", "exact"]
SPECTRAL_METHODS: tuple[str, ...] = ("sync_free", "exact")
"""How :class:`ProjectedLogDetFloor` gets its spectral statistics: ``sync_free`` (Cholesky log-det,
trace/Frobenius participation ratio, power-iterated top eigenvalue; no host synchronisation, the default)
or ``exact`` (``slogdet`` + ``eigvalsh``, the reference formulation; ``eigvalsh`` syncs on CUDA)."""


class LogDetFloorOutput(NamedTuple):
    """All 0-d. ``logdet`` = ``log|det C| / k``; ``pr_norm`` = participation ratio / k;
    ``eigmax`` = largest-eigenvalue fraction of ``C``; ``cholesky_info`` (``sync_free`` only, else None):
    the ``torch.linalg.cholesky_ex`` status of ``C`` as a device tensor (0 = factorised; ``i > 0`` = the
    leading minor of order ``i`` is not positive definite, and ``logdet`` is then not valid). Read it only
    at log points: converting it to a Python number synchronises with the device."""

    loss: Tensor
    logdet: Tensor
    pr_norm: Tensor
    eigmax: Tensor
    cholesky_info: Tensor | None = None


def _squared_power(cov: Tensor, squarings: int) -> Tensor:
    """``C^(2^squarings)`` scaled to unit trace (no autograd): repeated squaring, renormalised every 3 steps.

    Between renormalisations the top eigenvalue of the unit-trace matrix (``>= 1/k``) is raised to at most
    the 8th power, which stays far above the float32 underflow for any practical ``k``.
    """
    m = cov / torch.trace(cov)
    for i in range(squarings):
        m = m @ m
        if i % 3 == 2 or i == squarings - 1:
            m = m / torch.trace(m)
    return m


class _SyncFreeSpectrum(torch.autograd.Function):
    """``(log det C / k, PR(C) / k, lambda_max(C) / (tr C + 1e-12), v, cholesky info)`` without host syncs.

    * log-det from the Cholesky factor ``L`` of ``C``: ``2 sum log diag L``; gradient ``C^-1 / k``
      (``L^-T L^-1`` by a triangular solve). The status is returned, never checked.
    * ``PR = tr(C)^2 / (||C||_F^2 + 1e-12)`` (= ``(sum lambda)^2 / (sum lambda^2 + 1e-12)``, no eigenvalues).
    * ``lambda_max`` as the Rayleigh quotient ``v^T C v`` of ``v = normalise(C^(2^s) v0)`` (``s`` squarings
      = ``2^s`` power iterations from the warm start ``v0``); ``v`` is held fixed in the gradient,
      ``d lambda / dC = v v^T``, which is the exact eigenvalue gradient at convergence.
    """

    @staticmethod
    def forward(ctx: Any, cov: Tensor, v0: Tensor, squarings: int) -> tuple[Tensor, ...]:
        k = cov.shape[0]
        chol, info = torch.linalg.cholesky_ex(cov)
        logdet = torch.diagonal(chol).log().sum() * (2.0 / k)
        trace = torch.trace(cov)
        fro = cov.square().sum() + 1e-12
        pr_norm = trace.square() / fro / k
        v = _squared_power(cov, squarings) @ v0
        v = v / torch.linalg.vector_norm(v)
        lam = v @ (cov @ v)
        denom = trace + 1e-12
        eigmax = lam / denom
        ctx.set_materialize_grads(False)
        ctx.mark_non_differentiable(v, info)
        ctx.save_for_backward(cov, chol, v, trace, fro, lam, denom)
        return logdet, pr_norm, eigmax, v, info

    @staticmethod
    def backward(
        ctx: Any, g_logdet: Tensor | None, g_pr: Tensor | None, g_eigmax: Tensor | None, *_: Any
    ) -> tuple[Tensor | None, None, None]:
        cov, chol, v, trace, fro, lam, denom = ctx.saved_tensors
        k = cov.shape[0]
        grad: Tensor | None = None
        diag: Tensor | None = None  # coefficient of the identity
        eye = torch.eye(k, dtype=cov.dtype, device=cov.device)
        if g_logdet is not None:  # C^-1 = L^-T L^-1 (a triangular solve: no status check, unlike cholesky_inverse)
            chol_inv = torch.linalg.solve_triangular(chol, eye, upper=False)
            grad = (chol_inv.mT @ chol_inv) * (g_logdet / k)
        if g_pr is not None:  # d/dC tr^2 / fro / k = (2 tr I / fro - 2 tr^2 C / fro^2) / k
            scale = g_pr * (2.0 / k) * trace / fro
            term = cov * (-scale * trace / fro)
            grad = term if grad is None else grad + term
            diag = scale
        if g_eigmax is not None:  # d/dC lam / denom = v v^T / denom - lam / denom^2 I
            scale = g_eigmax / denom
            term = torch.outer(v * scale, v)
            grad = term if grad is None else grad + term
            shift = -scale * lam / denom
            diag = shift if diag is None else diag + shift
        if diag is not None:
            grad = eye * diag if grad is None else torch.addcmul(grad, eye, diag)
        return grad, None, None


class ProjectedLogDetFloor(nn.Module):
    """Random-projection log-det floor + participation-ratio floor + top-eigenvalue ceiling (docs/spec.md §D.5).

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

    ``method`` (one of :data:`SPECTRAL_METHODS`) chooses how step 4 is evaluated; both give the same values
    (to round-off; ``eigmax`` to the power iteration's accuracy, ~1e-4 relative or better):

    * ``"sync_free"`` (default): ``logdet`` from a Cholesky factor (``torch.linalg.cholesky_ex``; its
      status is returned as ``cholesky_info``, never checked on the host), ``PR_norm`` from the trace and
      the Frobenius norm, ``lambda_max`` as a Rayleigh quotient of ``C`` at a vector obtained by
      ``power_squarings`` repeated squarings of ``C`` (``2^power_squarings`` power iterations) applied to
      the previous call's vector (the buffer ``top_vector``, saved in the state dict and identical on
      every rank because it is computed from all-reduced statistics; it starts as the all-ones vector).
      Its gradient is ``v v^T``, exact at convergence. No host synchronisation, fixed work per call.
    * ``"exact"``: ``torch.linalg.slogdet`` and ``torch.linalg.eigvalsh`` as in the reference code.

    DDP note: ``k`` is computed from ``local n * world_size``, i.e. all ranks are assumed to hold
    equally many rows (a distributed sampler with ``drop_last``), which keeps the step free of host
    synchronisation; the covariance itself uses the exact all-reduced ``n``.
    With ``method="exact"`` on CUDA, ``torch.linalg.eigvalsh`` checks its solver status, which
    synchronises with the host once per call.
    """

    calls: Tensor
    top_vector: Tensor

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
        method: SpectralMethod = "sync_free",
        power_squarings: int = 9,
    ) -> None:
        super().__init__()
        if method not in SPECTRAL_METHODS:
            raise ValueError(
                f"method must be one of {SPECTRAL_METHODS} (sync_free = Cholesky + power iteration, "
                f"exact = slogdet + eigvalsh), got {method!r}"
            )
        if not (isinstance(power_squarings, int) and not isinstance(power_squarings, bool) and power_squarings >= 1):
            raise ValueError(f"power_squarings must be a positive int, got {power_squarings!r}")
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
        self.method = method
        self.power_squarings = power_squarings
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self.register_buffer("top_vector", torch.ones(proj_dim))
        self._calls = 0  # host mirror of ``calls`` (reading the buffer would sync with the device)
        self._projection: Tensor | None = None
        self._projection_key: tuple[Any, ...] | None = None
        self._hinge_key: tuple[Any, ...] | None = None
        self._hinge_table = torch.zeros(3, 3)
        self._ridge_key: tuple[Any, ...] | None = None
        self._ridge_matrix = torch.zeros(0, 0)

    @property
    def projection(self) -> Tensor | None:
        """The current projection ``R [d, k]`` (None before the first call)."""
        return self._projection

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        if prefix + "top_vector" not in state_dict:  # a checkpoint from before the power-iteration state
            state_dict[prefix + "top_vector"] = torch.ones_like(self.top_vector)
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

    def draw(self, d: int, n_local: int, device: torch.device) -> Tensor:
        """Count one call and return its projection ``R [d, k]`` (``k = 0`` when the global batch is too
        small); host work only (the counter, the draw on the CPU generator), for a following
        ``forward(x, projection=R)`` on ``n_local`` local rows of ``d`` features."""
        call = self._calls
        self._calls += 1
        self.calls.fill_(self._calls)
        k = min(self.proj_dim, d, n_local * get_world_size() - 1)
        if k < 1:
            return torch.zeros(d, 0, device=device)
        return self._get_projection(d, k, device, call)

    def forward(
        self, x: Tensor, moments: ColumnMoments | None = None, *, projection: Tensor | None = None
    ) -> LogDetFloorOutput:
        """Args: x ``[n, d]`` local rows (computed in fp32); ``moments``: its global column moments when
        the caller already has them (:func:`~hamjepa.objectives.regularizers.column_moments`; only ``sum``
        and ``n`` are used); ``projection``: this call's ``R`` from :meth:`draw` (a training step draws it
        outside its graph), or None to count this call and draw it here."""
        check_matrix(x, "x")
        x = upcast(x)
        n_local, d = x.shape
        proj = self.draw(d, n_local, x.device) if projection is None else projection
        if proj.ndim != 2 or proj.shape[0] != d:
            raise ValueError(f"ProjectedLogDetFloor: projection must be [d={d}, k], got {tuple(proj.shape)}")
        if proj.shape[1] < 1:
            zero = x.new_zeros(())
            status = x.new_zeros((), dtype=torch.int32) if self.method == "sync_free" else None
            return LogDetFloorOutput(zero, zero, zero, zero, status)
        k = proj.shape[1]

        if moments is None:
            col = all_reduce_sum(torch.cat([x.sum(0), x.new_full((1,), float(n_local))]))
            col_sum, n = col[:-1], col[-1].detach()
        else:
            col_sum, n = moments.sum, moments.n
        if proj.dtype != x.dtype:
            proj = proj.to(x.dtype)
        y = (x - col_sum / n) @ proj  # [n_local, k]
        stats = all_reduce_sum(torch.cat([y.sum(0), (y.T @ y).reshape(-1)]))
        ybar = stats[:k] / n
        cov = (stats[k:].reshape(k, k) - n * torch.outer(ybar, ybar)) / (n - 1)
        cov = 0.5 * (cov + cov.T) + self._ridge(k, x)

        info = None
        if self.method == "sync_free":
            v0 = self.top_vector if k == self.proj_dim else self.top_vector[:k]
            if v0.dtype != x.dtype:
                v0 = v0.to(x.dtype)
            logdet, pr_norm, eigmax, v, info = _SyncFreeSpectrum.apply(cov, v0, self.power_squarings)
            with torch.no_grad():  # the next step's warm start; a non-finite batch (e.g. one the AMP scaler
                warm = self.top_vector[:k]  # skips) keeps the previous vector instead of poisoning every later one
                warm.copy_(torch.where(torch.isfinite(v).all(), v.to(warm.dtype), warm))
        else:
            logdet = torch.linalg.slogdet(cov).logabsdet / k
            trace = torch.diagonal(cov).sum()
            pr_norm = trace.square() / (cov.square().sum() + 1e-12) / k
            eig = torch.linalg.eigvalsh(cov)
            eigmax = eig[-1] / (eig.sum() + 1e-12)

        sign, offset, weight = self._hinge_constants(x).unbind()
        excess = torch.stack([logdet, pr_norm, eigmax]) * sign + offset  # floor - logdet, pr_floor - PR, e - ceil
        loss = (apply_hinge(excess, self.hinge) * weight).sum()
        return LogDetFloorOutput(loss, logdet, pr_norm, eigmax, info)

    def _hinge_constants(self, x: Tensor) -> Tensor:
        """``[3, 3]`` rows (sign, offset, weight) of the three hinges; an unconfigured term has weight 0."""
        key = (x.device, x.dtype, self.floor, self.pr_floor, self.eigmax_ceiling, self.pr_weight, self.eigmax_weight)
        if self._hinge_key != key:  # rebuilt if a floor or weight is changed after construction
            pr_on, em_on = self.pr_floor is not None, self.eigmax_ceiling is not None
            rows = [
                [-1.0, -1.0, 1.0],
                [self.floor, self.pr_floor or 0.0, -(self.eigmax_ceiling or 0.0)],
                [1.0, self.pr_weight if pr_on else 0.0, self.eigmax_weight if em_on else 0.0],
            ]
            table = x.new_empty(3, 3)
            for i, row in enumerate(rows):  # filled on the device (once): no host-to-device copy
                for j, value in enumerate(row):
                    table[i, j] = value
            self._hinge_table = table
            self._hinge_key = key
        return self._hinge_table

    def _ridge(self, k: int, x: Tensor) -> Tensor:
        """``eps * I_k`` (cached per size, device and dtype)."""
        key = (k, x.device, x.dtype)
        if self._ridge_key != key:
            self._ridge_matrix = self.eps * torch.eye(k, device=x.device, dtype=x.dtype)
            self._ridge_key = key
        return self._ridge_matrix

    def extra_repr(self) -> str:
        return (
            f"proj_dim={self.proj_dim}, floor={self.floor}, eps={self.eps}, "
            f"refresh_interval={self.refresh_interval}, "
            f"pr_floor={self.pr_floor}, eigmax_ceiling={self.eigmax_ceiling}, hinge={self.hinge!r}, "
            f"seed={self.seed}, method={self.method!r}"
        )
