"""Toy separable Hamiltonian systems and one-step integrator maps (spec section I).

Every system has the separable form ``H(q, p) = T(p) + V(q)`` with unit mass, ``T(p) = |p|^2 / 2``,
and a potential ``V`` with an analytic gradient, so the maps below need no autograd to run (autograd is
still possible through them, which the symplecticity diagnostic uses to get Jacobians).

States are tensors ``x: [N, 2d]`` with ``q = x[:, :d]`` and ``p = x[:, d:]``. A :class:`ToySystem` is a
separable Hamiltonian in the sense of :mod:`hamjepa.dynamics.integrators` (``grad_V``, ``grad_T``), so the
maps are the latent predictor's own integrators, ``step(system, q, p, h, steps) -> (q_N, p_N)`` on the
halves (cheap in a long rollout); :func:`apply_step` applies one step to a stacked state ``[N, 2d]``.

Maps (``h`` is the signed step; :data:`INTEGRATORS`):

* explicit Euler ``x' = x + h * Omega grad H(x)`` (the "SIGReg proxy": a generic non-symplectic map);
* symplectic Euler ``p' = p - h grad V(q)``, ``q' = q + h p'`` (symplectic, first order, not symmetric);
* leapfrog / velocity Verlet ``p_half = p - h/2 grad V(q)``, ``q' = q + h p_half``,
  ``p' = p_half - h/2 grad V(q')`` (symplectic, symmetric, second order; the HamJEPA map).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from hamjepa.dynamics.integrators import Integrator, integrator_for

__all__ = [
    "INTEGRATORS",
    "INTEGRATOR_LABELS",
    "SYSTEMS",
    "StepFn",
    "ToySystem",
    "apply_step",
    "get_system",
    "rollout",
    "wrap_angle",
]


@dataclass(frozen=True)
class ToySystem:
    """A separable Hamiltonian ``H(q, p) = |p|^2 / 2 + V(q)`` on ``R^d x R^d``.

    Attributes:
        name: short identifier used in file names and ``summary.json``.
        title: human-readable formula for figure titles.
        potential: ``V(q)``, ``[N, d] -> [N]`` (summed over coordinates).
        grad_potential: ``grad V(q)``, ``[N, d] -> [N, d]``.
        q_range: box for ``q`` used for grids and random initial conditions.
        p_range: box for ``p``.
        periodic: whether ``q`` is an angle that is wrapped to ``[-pi, pi)``.
    """

    name: str
    title: str
    potential: Callable[[Tensor], Tensor]
    grad_potential: Callable[[Tensor], Tensor]
    q_range: tuple[float, float]
    p_range: tuple[float, float]
    periodic: bool = False

    def energy(self, x: Tensor) -> Tensor:
        """``H(x)`` for states ``x: [N, 2d]`` -> ``[N]``."""
        q, p = _split(x)
        return 0.5 * (p * p).sum(-1) + self.potential(q)

    def vector_field(self, x: Tensor) -> Tensor:
        """``Omega grad H(x) = (p, -grad V(q))`` for ``x: [N, 2d]`` -> ``[N, 2d]``."""
        q, p = _split(x)
        return torch.cat([p, -self.grad_potential(q)], dim=-1)

    # The separable-Hamiltonian interface of hamjepa.dynamics.integrators (so the predictor's integrators run
    # on toy systems): per-sample energy H(q, p) and the closed-form partials dH/dq = grad V, dH/dp = p.
    separable: ClassVar[bool] = True

    def __call__(self, q: Tensor, p: Tensor) -> Tensor:
        """``H(q, p)`` for ``q, p: [N, d]`` -> ``[N]``."""
        return 0.5 * (p * p).sum(-1) + self.potential(q)

    def grad_V(self, q: Tensor) -> Tensor:
        """``dH/dq = grad V(q)``: ``[N, d] -> [N, d]``."""
        return self.grad_potential(q)

    def grad_T(self, p: Tensor) -> Tensor:
        """``dH/dp = p`` (unit mass): ``[N, d] -> [N, d]``."""
        return p


def _split(x: Tensor) -> tuple[Tensor, Tensor]:
    if x.shape[-1] % 2 != 0:
        raise ValueError(f"state last dimension must be even (q and p halves), got shape {tuple(x.shape)}")
    d = x.shape[-1] // 2
    return x[..., :d], x[..., d:]


def wrap_angle(q: Tensor) -> Tensor:
    """Wrap angles to ``[-pi, pi)``."""
    return torch.remainder(q + math.pi, 2.0 * math.pi) - math.pi


def _pendulum_v(q: Tensor) -> Tensor:
    return (1.0 - torch.cos(q)).sum(-1)


def _pendulum_dv(q: Tensor) -> Tensor:
    return torch.sin(q)


def _harmonic_v(q: Tensor) -> Tensor:
    return 0.5 * (q * q).sum(-1)


def _harmonic_dv(q: Tensor) -> Tensor:
    return q


def _duffing_v(q: Tensor) -> Tensor:
    q2 = q * q
    return (0.5 * q2 + 0.25 * q2 * q2).sum(-1)


def _duffing_dv(q: Tensor) -> Tensor:
    return q + q * q * q


SYSTEMS: dict[str, ToySystem] = {
    "pendulum": ToySystem(
        name="pendulum",
        title="pendulum  H = p²/2 + (1 − cos q)",
        potential=_pendulum_v,
        grad_potential=_pendulum_dv,
        q_range=(-math.pi, math.pi),
        p_range=(-2.5, 2.5),
        periodic=True,
    ),
    "harmonic": ToySystem(
        name="harmonic",
        title="harmonic oscillator (ω = 1)  H = p²/2 + q²/2",
        potential=_harmonic_v,
        grad_potential=_harmonic_dv,
        q_range=(-2.5, 2.5),
        p_range=(-2.5, 2.5),
    ),
    # The box is smaller than the pendulum's: explicit Euler on the quartic well diverges
    # (to inf in float32) from high-energy initial conditions within 250 steps.
    "duffing": ToySystem(
        name="duffing",
        title="Duffing  H = p²/2 + q²/2 + q⁴/4",
        potential=_duffing_v,
        grad_potential=_duffing_dv,
        q_range=(-1.5, 1.5),
        p_range=(-1.5, 1.5),
    ),
}


def get_system(name: str) -> ToySystem:
    """Look up a toy system by name (``pendulum``, ``harmonic`` or ``duffing``)."""
    if name not in SYSTEMS:
        raise ValueError(f"unknown toy system {name!r}; choose one of {sorted(SYSTEMS)}")
    return SYSTEMS[name]


StepFn = Integrator
"""A toy step map: one of the predictor's integrators, ``step(system, q, p, h, steps) -> (q_N, p_N)``."""


def apply_step(step: StepFn, system: ToySystem, x: Tensor, h: float) -> Tensor:
    """Apply one step of ``step`` to stacked states ``x: [N, 2d]`` -> ``[N, 2d]``."""
    q, p = _split(x)
    q_new, p_new = step(system, q, p, h, 1)
    return torch.cat([q_new, p_new], dim=-1)


_PREDICTOR_NAMES = {"explicit_euler": "euler", "symplectic_euler": "symplectic_euler", "leapfrog": "leapfrog"}

INTEGRATORS: dict[str, StepFn] = {
    name: integrator_for(predictor_name, SYSTEMS["harmonic"]) for name, predictor_name in _PREDICTOR_NAMES.items()
}
"""The toy diagnostics' integrators by name: the very functions :class:`~hamjepa.dynamics.HamiltonianPredictor`
runs for a separable Hamiltonian (:func:`~hamjepa.dynamics.integrator_for`), not copies."""


INTEGRATOR_LABELS: dict[str, str] = {
    "explicit_euler": "explicit Euler (SIGReg proxy)",
    "symplectic_euler": "symplectic Euler",
    "leapfrog": "leapfrog (HamJEPA)",
}


@torch.no_grad()
def rollout(
    system: ToySystem,
    step: StepFn,
    x0: Tensor,
    h: float,
    steps: int,
    *,
    wrap: bool,
    record_every: int = 0,
) -> tuple[Tensor, Tensor | None]:
    """Iterate ``step`` ``steps`` times from ``x0: [N, 2d]`` (no autograd; every step is detached).

    Args:
        wrap: wrap ``q`` to ``[-pi, pi)`` after every step (only for periodic systems; ignored otherwise).
        record_every: if > 0, also return the states at ``t = 0, r, 2r, ...`` (and always ``t = steps``)
            stacked as ``[K, N, 2d]``; 0 records nothing.

    Returns:
        ``(x_T [N, 2d], trajectory [K, N, 2d] or None)``.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if record_every < 0:
        raise ValueError(f"record_every must be >= 0, got {record_every}")
    do_wrap = wrap and system.periodic
    q, p = _split(x0)
    frames: list[Tensor] = [x0] if record_every else []
    for t in range(1, steps + 1):
        q, p = step(system, q, p, h, 1)
        if do_wrap:
            q = wrap_angle(q)
        if record_every and (t % record_every == 0 or t == steps):
            frames.append(torch.cat([q, p], dim=-1))
    return torch.cat([q, p], dim=-1), (torch.stack(frames) if record_every else None)
