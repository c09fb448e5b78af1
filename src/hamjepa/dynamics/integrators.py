"""Time integrators for Hamiltonian systems (docs/spec.md §C.2).

All integrators share one call shape::

    q_N, p_N = integrator(hamiltonian, q, p, h, steps)

with ``q, p: [..., d]``, a signed step ``h`` (float or 0-d tensor; ``h < 0`` integrates backwards) and
``steps >= 1``. ``hamiltonian(q, p)`` must return per-sample energies ``[...]``. The partial derivatives
come from autograd on ``H``, except for Hamiltonians that declare ``separable = True``: their closed-form
``grad_V(q)`` (= dH/dq) and ``grad_T(p)`` (= dH/dp) are used instead (same values, far cheaper). Wrap such
a Hamiltonian in a plain function to force the autograd path.

* :func:`separable_leapfrog` — kick-drift-kick for ``H = T(p) + V(q)`` using the Hamiltonian's closed-form
  ``grad_V`` / ``grad_T`` (no autograd on ``H``). The force at ``q_{n+1}`` is reused for the next step's
  first half kick, so ``N`` steps cost ``N + 1`` force evaluations. Symplectic, ``det = 1`` and exactly
  time-reversible: ``Psi_{-h}^N`` inverts ``Psi_h^N``.
* :func:`leapfrog` — the general explicit leapfrog with autograd on ``H`` (coincides with the separable
  one when ``H`` is separable; not symplectic otherwise).
* :func:`symplectic_euler` — ``p' = p - h dH/dq(q, p)``, ``q' = q + h dH/dp(q, p')`` (symplectic for
  separable ``H``).
* :func:`explicit_euler` — ``(q', p') = (q, p) + h (dH/dp, -dH/dq)(q, p)``; not symplectic (a generic
  non-volume-preserving map for the diagnostics).

Precision: with ``upcast=True`` (default) autocast is disabled inside the integrator and float16/bfloat16
inputs are integrated in float32; float32 and float64 inputs keep their dtype. The result is returned in
that working dtype (callers cast back if they want). With ``upcast=False`` the inputs are used as given,
under whatever autocast is active.

Autograd: with grad mode on the result is differentiable w.r.t. ``q``, ``p`` and the Hamiltonian's
parameters (forces are built with ``create_graph=True``). Under ``torch.no_grad()`` the integrators still
work (grad is enabled locally only to evaluate forces) and return tensors without a graph.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from hamjepa.dynamics.hamiltonians import autograd_partials

__all__ = [
    "INTEGRATORS",
    "Integrator",
    "explicit_euler",
    "get_integrator",
    "integrator_for",
    "leapfrog",
    "separable_leapfrog",
    "symplectic_euler",
    "vector_field",
]

HamiltonianFn = Callable[[Tensor, Tensor], Tensor]
Integrator = Callable[..., tuple[Tensor, Tensor]]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _check_steps(steps: int) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")


def _check_state(q: Tensor, p: Tensor) -> None:
    if q.shape != p.shape:
        raise ValueError(f"q and p must have the same shape, got {tuple(q.shape)} and {tuple(p.shape)}")


@contextlib.contextmanager
def _working_precision(q: Tensor, p: Tensor, upcast: bool) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield ``(q, p)`` in the working dtype, with autocast disabled when ``upcast`` is set."""
    if not upcast:
        yield q, p
        return
    if q.dtype in _LOW_PRECISION:
        q = q.float()
    if p.dtype in _LOW_PRECISION:
        p = p.float()
    with torch.autocast(device_type=q.device.type, enabled=False):
        yield q, p


def _is_separable(hamiltonian: object) -> bool:
    return bool(getattr(hamiltonian, "separable", False))


def _dH_dq(hamiltonian: HamiltonianFn, q: Tensor, p: Tensor) -> Tensor:
    if _is_separable(hamiltonian):
        return hamiltonian.grad_V(q)  # type: ignore[attr-defined]
    dq, _ = autograd_partials(hamiltonian, q, p, wrt_p=False)
    assert dq is not None
    return dq


def _dH_dp(hamiltonian: HamiltonianFn, q: Tensor, p: Tensor) -> Tensor:
    if _is_separable(hamiltonian):
        return hamiltonian.grad_T(p)  # type: ignore[attr-defined]
    _, dp = autograd_partials(hamiltonian, q, p, wrt_q=False)
    assert dp is not None
    return dp


def separable_leapfrog(
    hamiltonian: torch.nn.Module, q: Tensor, p: Tensor, h: float | Tensor, steps: int, *, upcast: bool = True
) -> tuple[Tensor, Tensor]:
    """``steps`` kick-drift-kick steps of size ``h`` for a separable Hamiltonian (docs/spec.md §C.2, eq. 27).

    ``p_{n+1/2} = p_n - h/2 grad_V(q_n)``, ``q_{n+1} = q_n + h grad_T(p_{n+1/2})``,
    ``p_{n+1} = p_{n+1/2} - h/2 grad_V(q_{n+1})``.

    Args:
        hamiltonian: a separable Hamiltonian providing ``grad_V(q)`` and ``grad_T(p)``.
        q, p: ``[..., d]``.
        h: signed step.
        steps: number of steps ``N``.
        upcast: integrate low-precision inputs in float32 with autocast off.

    Returns:
        ``(q_N, p_N)``, each ``[..., d]``, in the working dtype.
    """
    if not _is_separable(hamiltonian):
        raise ValueError(
            f"separable_leapfrog needs a separable Hamiltonian (got {type(hamiltonian).__name__}); "
            "use leapfrog() for general Hamiltonians"
        )
    _check_steps(steps)
    _check_state(q, p)
    half = 0.5 * h
    with _working_precision(q, p, upcast) as (q, p):
        force = hamiltonian.grad_V(q)
        for _ in range(steps):
            p = p - half * force
            q = q + h * hamiltonian.grad_T(p)
            force = hamiltonian.grad_V(q)  # reused as the next step's first half kick
            p = p - half * force
    return q, p


def leapfrog(
    hamiltonian: HamiltonianFn, q: Tensor, p: Tensor, h: float | Tensor, steps: int, *, upcast: bool = True
) -> tuple[Tensor, Tensor]:
    """General explicit leapfrog with autograd on ``H`` (docs/spec.md §C.2).

    ``p_{1/2} = p - h/2 dH/dq(q, p)``, ``q' = q + h dH/dp(q, p_{1/2})``, ``p' = p_{1/2} - h/2 dH/dq(q', p_{1/2})``.
    Symplectic only when ``H`` is separable. A Hamiltonian that declares ``separable = True`` is handed to
    :func:`separable_leapfrog` (same map, closed-form forces). Shapes as in :func:`separable_leapfrog`.
    """
    if _is_separable(hamiltonian):
        return separable_leapfrog(hamiltonian, q, p, h, steps, upcast=upcast)  # type: ignore[arg-type]
    _check_steps(steps)
    _check_state(q, p)
    half = 0.5 * h
    with _working_precision(q, p, upcast) as (q, p):
        for _ in range(steps):
            p = p - half * _dH_dq(hamiltonian, q, p)
            q = q + h * _dH_dp(hamiltonian, q, p)
            p = p - half * _dH_dq(hamiltonian, q, p)
    return q, p


def symplectic_euler(
    hamiltonian: HamiltonianFn, q: Tensor, p: Tensor, h: float | Tensor, steps: int, *, upcast: bool = True
) -> tuple[Tensor, Tensor]:
    """Symplectic Euler: ``p' = p - h dH/dq(q, p)``, ``q' = q + h dH/dp(q, p')`` (docs/spec.md §C.2).

    First order; symplectic for separable ``H``. Its inverse is not ``Psi_{-h}``. Shapes as in
    :func:`separable_leapfrog`.
    """
    _check_steps(steps)
    _check_state(q, p)
    with _working_precision(q, p, upcast) as (q, p):
        for _ in range(steps):
            p = p - h * _dH_dq(hamiltonian, q, p)
            q = q + h * _dH_dp(hamiltonian, q, p)
    return q, p


def explicit_euler(
    hamiltonian: HamiltonianFn, q: Tensor, p: Tensor, h: float | Tensor, steps: int, *, upcast: bool = True
) -> tuple[Tensor, Tensor]:
    """Explicit (forward) Euler on ``x' = Omega grad H(x)``: not symplectic, energy drifts.

    ``q' = q + h dH/dp(q, p)``, ``p' = p - h dH/dq(q, p)`` (both partials at the old point, one autograd
    call per step). Shapes as in :func:`separable_leapfrog`.
    """
    _check_steps(steps)
    _check_state(q, p)
    with _working_precision(q, p, upcast) as (q, p):
        for _ in range(steps):
            if _is_separable(hamiltonian):
                dq, dp = _dH_dq(hamiltonian, q, p), _dH_dp(hamiltonian, q, p)
            else:
                dq, dp = autograd_partials(hamiltonian, q, p)
                assert dq is not None and dp is not None
            q, p = q + h * dp, p - h * dq
    return q, p


def vector_field(hamiltonian: HamiltonianFn, q: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
    """Hamilton's equations ``(dq/dt, dp/dt) = (dH/dp, -dH/dq)``, i.e. ``x' = Omega grad H(x)`` (docs/spec.md §C.2)."""
    _check_state(q, p)
    dq, dp = autograd_partials(hamiltonian, q, p)
    assert dq is not None and dp is not None
    return dp, -dq


INTEGRATORS: dict[str, Integrator] = {
    "leapfrog": leapfrog,
    "symplectic_euler": symplectic_euler,
    "euler": explicit_euler,
}
"""General (autograd) integrators by name. ``HamiltonianPredictor`` uses :func:`separable_leapfrog` for
``"leapfrog"`` when the Hamiltonian is separable."""


def get_integrator(name: str) -> Integrator:
    """Look up a general integrator by name (one of :data:`INTEGRATORS`)."""
    try:
        return INTEGRATORS[name]
    except KeyError:
        raise ValueError(f"unknown integrator={name!r}; valid: {', '.join(INTEGRATORS)}") from None


def integrator_for(name: str, hamiltonian: object) -> Integrator:
    """The function that integrates ``hamiltonian`` for the integrator ``name`` (one of :data:`INTEGRATORS`).

    ``"leapfrog"`` on a Hamiltonian that declares ``separable = True`` is :func:`separable_leapfrog` (the
    closed-form fast path); every other pair is ``INTEGRATORS[name]``. :class:`HamiltonianPredictor` and the
    toy diagnostics both pick their integrator here, so they run the same function objects.
    """
    integrate = get_integrator(name)
    if integrate is leapfrog and _is_separable(hamiltonian):
        return separable_leapfrog
    return integrate
