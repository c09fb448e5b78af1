"""The six toy-system geometry diagnostics of spec section I, as pure array-returning functions.

All functions take a :class:`~hamjepa.diagnostics.toy_systems.ToySystem`, a step function from
:data:`~hamjepa.diagnostics.toy_systems.INTEGRATORS`, the step ``dt`` and the number of steps, and return
NumPy arrays (plotting and summarising live in :mod:`hamjepa.diagnostics.toy_report`). Precision and
angle wrapping follow docs/spec.md §I: energy drift, reversibility, energy-vs-time and covariance use float32 with
wrapping (for the periodic pendulum); Liouville area and the symplecticity defect use float64 without wrapping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from hamjepa.diagnostics.toy_systems import StepFn, ToySystem, apply_step, rollout, wrap_angle

__all__ = [
    "AreaResult",
    "CovarianceResult",
    "canonical_omega",
    "convex_hull_area",
    "covariance_stability",
    "energy_drift_grid",
    "energy_vs_time",
    "euler_pendulum_defect",
    "grid_area",
    "liouville_area",
    "phase_grid",
    "reversibility_grid",
    "step_jacobians",
    "symplecticity_defect",
    "uniform_states",
]

ENERGY_FLOOR = 1e-3  # denominator floor of the relative energy drift
ENERGY_MASK = 5e-3  # heatmap cells with H0 <= this are masked (relative drift meaningless near the minimum)
EPS64 = float(np.finfo(np.float64).eps)


def phase_grid(system: ToySystem, n: int, dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray, Tensor]:
    """An ``n x n`` grid over the system's box.

    Returns:
        ``(q_axis [n], p_axis [n], states [n*n, 2])`` with ``states[i * n + j] = (q_axis[j], p_axis[i])``
        (row index = p, column index = q, ready for ``imshow(origin="lower")``).
    """
    if n < 2:
        raise ValueError(f"grid size must be >= 2, got {n}")
    q_axis = np.linspace(*system.q_range, n)
    p_axis = np.linspace(*system.p_range, n)
    qq, pp = np.meshgrid(q_axis, p_axis)
    states = torch.from_numpy(np.stack([qq.ravel(), pp.ravel()], axis=1)).to(dtype)
    return q_axis, p_axis, states


def uniform_states(system: ToySystem, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform random states ``[n, 2]`` (float64) in the system's box."""
    q = rng.uniform(*system.q_range, size=n)
    p = rng.uniform(*system.p_range, size=n)
    return np.stack([q, p], axis=1)


def _relative_drift(e0: Tensor, e1: Tensor) -> Tensor:
    return (e1 - e0) / (e0 + ENERGY_FLOOR)


def energy_drift_grid(system: ToySystem, step: StepFn, dt: float, steps: int, grid: int) -> np.ndarray:
    """Relative energy drift ``(H_T - H_0) / (H_0 + 1e-3)`` on a ``grid x grid`` set of initial conditions.

    float32, angles wrapped. Cells with ``H_0 <= 5e-3`` are NaN; diverged trajectories give ``+inf``
    (their drift is not finite).

    Returns:
        ``drift [grid, grid]`` (rows = p, columns = q).
    """
    _, _, x0 = phase_grid(system, grid, torch.float32)
    x_t, _ = rollout(system, step, x0, dt, steps, wrap=True)
    e0, e1 = system.energy(x0), system.energy(x_t)
    drift = _relative_drift(e0, e1).numpy().astype(np.float64)
    drift[~np.isfinite(drift)] = np.inf
    drift[e0.numpy() <= ENERGY_MASK] = np.nan
    return drift.reshape(grid, grid)


def _phase_distance(system: ToySystem, a: Tensor, b: Tensor) -> Tensor:
    dq = a[:, 0] - b[:, 0]
    if system.periodic:
        dq = wrap_angle(dq)
    return torch.sqrt(dq * dq + (a[:, 1] - b[:, 1]) ** 2)


def reversibility_grid(system: ToySystem, step: StepFn, dt: float, steps: int, grid: int) -> np.ndarray:
    """Time-reversal error on a grid: roll ``T`` steps, flip ``p``, roll ``T`` more with the same ``+dt``,
    flip back, and measure the (angle-wrapped) distance to the start. float32, wrapped.

    Returns:
        ``error [grid, grid]`` (``inf`` where the trajectory diverged).
    """
    _, _, x0 = phase_grid(system, grid, torch.float32)
    flip = torch.tensor([1.0, -1.0], dtype=x0.dtype)
    x_t, _ = rollout(system, step, x0, dt, steps, wrap=True)
    x_back, _ = rollout(system, step, x_t * flip, dt, steps, wrap=True)
    err = _phase_distance(system, x_back * flip, x0).numpy().astype(np.float64)
    err[~np.isfinite(err)] = np.inf
    return err.reshape(grid, grid)


def grid_area(points: np.ndarray) -> float:
    """Area enclosed by a deformed grid ``points [n, n, 2]``: the absolute value of the summed signed areas of
    the triangles ``((i,j),(i+1,j),(i,j+1))`` and ``((i+1,j),(i+1,j+1),(i,j+1))`` over all cells."""

    def signed(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        u, v = b - a, c - a
        return 0.5 * (u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0])

    p00, p10 = points[:-1, :-1], points[1:, :-1]
    p01, p11 = points[:-1, 1:], points[1:, 1:]
    return float(abs(signed(p00, p10, p01).sum() + signed(p10, p11, p01).sum()))


def convex_hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of ``points [n, 2]`` (Andrew's monotone chain + shoelace)."""
    pts = np.unique(points[np.all(np.isfinite(points), axis=1)], axis=0)
    if len(pts) < 3:
        return 0.0
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]

    def half(seq: np.ndarray) -> list[np.ndarray]:
        chain: list[np.ndarray] = []
        for pt in seq:
            while len(chain) >= 2:
                o, a = chain[-2], chain[-1]
                if (a[0] - o[0]) * (pt[1] - o[1]) - (a[1] - o[1]) * (pt[0] - o[0]) > 0:
                    break
                chain.pop()
            chain.append(pt)
        return chain

    hull = np.array(half(pts)[:-1] + half(pts[::-1])[:-1])
    x, y = hull[:, 0], hull[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


@dataclass(frozen=True)
class AreaResult:
    """Liouville-area diagnostic.

    Attributes:
        ratio: ``A(t) / A(0)`` for ``t = 0..T``, ``[T + 1]``.
        blob_start: the blob grid at ``t = 0``, ``[n, n, 2]``.
        blob_end: the blob grid at ``t = T``, ``[n, n, 2]``.
        hull_ratio: convex-hull area ratio ``T`` vs ``0`` (qualitative only).
    """

    ratio: np.ndarray
    blob_start: np.ndarray
    blob_end: np.ndarray
    hull_ratio: float


def liouville_area(
    system: ToySystem,
    step: StepFn,
    dt: float,
    steps: int,
    *,
    blob: int = 41,
    centre: tuple[float, float] = (0.5, 0.0),
    half_width: float = 0.35,
) -> AreaResult:
    """Map a ``blob x blob`` square patch for ``T`` steps (float64, no wrapping) and track its area."""
    if blob < 2:
        raise ValueError(f"blob must be >= 2, got {blob}")
    qs = np.linspace(centre[0] - half_width, centre[0] + half_width, blob)
    ps = np.linspace(centre[1] - half_width, centre[1] + half_width, blob)
    qq, pp = np.meshgrid(qs, ps)
    x0 = torch.from_numpy(np.stack([qq, pp], axis=-1).reshape(-1, 2))
    _, traj = rollout(system, step, x0, dt, steps, wrap=False, record_every=1)
    assert traj is not None
    frames = traj.numpy().reshape(steps + 1, blob, blob, 2)
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging map (Euler on Duffing) overflows
        areas = np.array([grid_area(f) if np.isfinite(f).all() else np.nan for f in frames])
        hull0 = convex_hull_area(frames[0].reshape(-1, 2))
        hull_t = convex_hull_area(frames[-1].reshape(-1, 2)) if np.isfinite(frames[-1]).all() else np.nan
    return AreaResult(ratio=areas / areas[0], blob_start=frames[0], blob_end=frames[-1], hull_ratio=hull_t / hull0)


def energy_vs_time(system: ToySystem, step: StepFn, dt: float, steps: int, x0: np.ndarray) -> np.ndarray:
    """Relative drift ``r_t = (E_t - E_0) / max(E_0, 1e-3)`` of an ensemble ``x0 [N, 2]`` (float32, wrapped).

    Returns:
        ``[T + 1, N]``.
    """
    x = torch.from_numpy(x0).to(torch.float32)
    _, traj = rollout(system, step, x, dt, steps, wrap=True, record_every=1)
    assert traj is not None
    energies = system.energy(traj.reshape(-1, 2)).reshape(steps + 1, -1)
    e0 = energies[0]
    return ((energies - e0) / torch.clamp(e0, min=ENERGY_FLOOR)).numpy().astype(np.float64)


def step_jacobians(system: ToySystem, step: StepFn, dt: float, states: Tensor) -> Tensor:
    """Jacobians of one step at ``states [N, 2d]`` by autograd in the states' dtype.

    Returns:
        ``J [N, 2d, 2d]`` with ``J[n, i, j] = d step(x)_i / d x_j`` at ``x = states[n]``.
    """
    x = states.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        y = apply_step(step, system, x, dt)
        rows = [torch.autograd.grad(y[:, i].sum(), x, retain_graph=i + 1 < y.shape[1])[0] for i in range(y.shape[1])]
    return torch.stack(rows, dim=1)


def canonical_omega(dim: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """The canonical symplectic matrix ``[[0, I], [-I, 0]]`` of size ``dim = 2d``."""
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    d = dim // 2
    eye = torch.eye(d, dtype=dtype)
    zero = torch.zeros(d, d, dtype=dtype)
    return torch.cat([torch.cat([zero, eye], 1), torch.cat([-eye, zero], 1)], 0)


def symplecticity_defect(
    system: ToySystem, step: StepFn, dt: float, states: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``delta = ||J^T Omega J - Omega||_F`` and ``det J`` of one float64 step at ``states [N, 2d]``.

    Returns:
        ``(delta [N], det [N])``.
    """
    x = torch.from_numpy(np.asarray(states, dtype=np.float64))
    jac = step_jacobians(system, step, dt, x)
    omega = canonical_omega(x.shape[1])
    defect = torch.linalg.matrix_norm(jac.transpose(1, 2) @ omega @ jac - omega)
    return defect.numpy(), torch.linalg.det(jac).numpy()


@dataclass(frozen=True)
class CovarianceResult:
    """Ensemble covariance over time: ``times [K]`` (in units of t * dt), ``trace``, ``logdet``,
    ``lambda_min`` (each ``[K]``, of ``C + 1e-9 I`` except the trace)."""

    times: np.ndarray
    trace: np.ndarray
    logdet: np.ndarray
    lambda_min: np.ndarray


def covariance_stability(
    system: ToySystem, step: StepFn, dt: float, steps: int, x0: np.ndarray, *, stride: int = 2
) -> CovarianceResult:
    """Sample covariance (``N - 1``) of the ensemble ``x0 [N, 2]`` every ``stride`` steps (float32, wrapped)."""
    if x0.shape[0] < 2:
        raise ValueError(f"need at least 2 ensemble members, got {x0.shape[0]}")
    x = torch.from_numpy(x0).to(torch.float32)
    _, traj = rollout(system, step, x, dt, steps, wrap=True, record_every=stride)
    assert traj is not None
    centred = traj - traj.mean(dim=1, keepdim=True)
    cov = centred.transpose(1, 2) @ centred / (x.shape[0] - 1)
    ridge = cov.double() + 1e-9 * torch.eye(cov.shape[-1], dtype=torch.float64)
    finite = torch.isfinite(ridge).all(dim=-1).all(dim=-1)  # a diverged ensemble has no eigenvalues
    eig = torch.full(ridge.shape[:-1], float("nan"), dtype=torch.float64)
    eig[finite] = torch.linalg.eigvalsh(ridge[finite])
    times = np.minimum(np.arange(traj.shape[0]) * stride, steps) * dt
    return CovarianceResult(
        times=times,
        trace=torch.diagonal(cov, dim1=1, dim2=2).sum(-1).double().numpy(),
        logdet=torch.log(eig).sum(-1).numpy(),
        lambda_min=eig[:, 0].numpy(),
    )


def euler_pendulum_defect(q: np.ndarray, dt: float) -> np.ndarray:
    """Analytic explicit-Euler defect on the pendulum: ``sqrt(2) dt^2 |cos q|`` (2-D: ``J^T Omega J =
    det(J) Omega`` and ``det J = 1 + dt^2 cos q``)."""
    return math.sqrt(2.0) * dt * dt * np.abs(np.cos(q))
