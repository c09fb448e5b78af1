"""Hamiltonian families on phase space ``(q, p)`` (docs/spec.md §C.1).

Every Hamiltonian is an ``nn.Module`` called as ``H(q, p)`` with ``q, p: [..., d]`` and returning the
per-sample energy ``[...]`` (a sum over the coordinates, not a mean). Separable ones
(``separable = True``) also provide ``grad_V(q)`` and ``grad_T(p)``, which the separable leapfrog uses
instead of autograd on ``H``.

Autograd conventions for ``grad_V``: with grad mode on, the returned force is part of the autograd graph,
so a loss on the integrated state back-propagates into the potential's parameters and into ``q``. The
separable family computes the residual's force either in closed form (``force="analytic"``, the default:
a hand-written back-propagation through the MLP with a closed-form backward, see
:func:`~hamjepa.dynamics.mlp.analytic_force`, so training runs no double backward) or by
``torch.autograd.grad(..., create_graph=True)`` (``force="autograd"``, the reference formulation; training
then runs a double backward). Both give the
same force (to round-off) and the same training gradients. Under ``torch.no_grad()`` either result
carries no graph (the autograd force enables grad locally on a detached copy).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from hamjepa.dynamics.mlp import analytic_force, build_mlp

__all__ = [
    "FORCES",
    "Hamiltonian",
    "LearnableHamiltonian",
    "QuadraticHamiltonian",
    "SeparableHamiltonian",
    "autograd_partials",
]


FORCES = ("analytic", "autograd")
"""How :class:`SeparableHamiltonian` evaluates the residual's force ``grad f(q)``: ``analytic`` (closed-form
back-propagation through the MLP; default) or ``autograd`` (``autograd.grad`` with ``create_graph=True``)."""


def check_force(owner: str, force: str) -> str:
    """Validate a force mode name (one of :data:`FORCES`)."""
    if force not in FORCES:
        raise ValueError(
            f"{owner}: unknown force={force!r}; valid: {', '.join(FORCES)} "
            "(analytic = closed-form MLP gradient, autograd = create_graph autograd)"
        )
    return force


def _check_scale(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite float, got {value!r}")
    return float(value)


def _check_dim(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _scalar_gradient(fn: nn.Module, x: Tensor) -> Tensor:
    """``d/dx sum(fn(x))`` for ``fn: [..., n] -> [..., 1]``; graph kept iff grad mode is on at the call."""
    if torch.is_grad_enabled():
        x_in = x if x.requires_grad else x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(fn(x_in).sum(), x_in, create_graph=True)
        return grad
    with torch.enable_grad():
        x_in = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(fn(x_in).sum(), x_in)
    return grad


def _partial_input(x: Tensor) -> Tensor:
    """A fresh autograd node carrying ``x`` (grad mode).

    Differentiating w.r.t. this alias gives the *partial* derivative: when ``p`` was computed from ``q``
    (as inside an integrator), ``d H(q, p) / d q`` would otherwise also follow the path through ``p``.
    The alias stays connected to ``x``, so with ``create_graph=True`` gradients still reach ``x``'s history.
    """
    return x.view_as(x) if x.requires_grad else x.detach().requires_grad_(True)


def autograd_partials(
    hamiltonian: Callable[[Tensor, Tensor], Tensor], q: Tensor, p: Tensor, *, wrt_q: bool = True, wrt_p: bool = True
) -> tuple[Tensor | None, Tensor | None]:
    """``(dH/dq, dH/dp)`` of ``sum H(q, p)`` by automatic differentiation.

    These are true partial derivatives even when ``p`` was computed from ``q`` (or vice versa).
    With grad mode on the partials keep their graph (``create_graph=True``); under ``torch.no_grad()`` they
    are computed with grad enabled locally on detached copies and carry no graph. A partial that was not
    requested is returned as ``None``; an unused input gets zeros.

    Shapes: ``q, p: [..., d]`` -> each partial ``[..., d]``.
    """
    if not (wrt_q or wrt_p):
        raise ValueError("autograd_partials: request at least one of wrt_q / wrt_p")
    grad_mode = torch.is_grad_enabled()
    with torch.enable_grad():
        if grad_mode:
            q_in = _partial_input(q) if wrt_q else q
            p_in = _partial_input(p) if wrt_p else p
        else:
            q_in = q.detach().requires_grad_(wrt_q)
            p_in = p.detach().requires_grad_(wrt_p)
        inputs = [t for t, wanted in ((q_in, wrt_q), (p_in, wrt_p)) if wanted]
        grads = torch.autograd.grad(
            hamiltonian(q_in, p_in).sum(), inputs, create_graph=grad_mode, materialize_grads=True
        )
    out = iter(grads)
    dq = next(out) if wrt_q else None
    dp = next(out) if wrt_p else None
    return dq, dp


class Hamiltonian(nn.Module):
    """Base class: ``forward(q [..., d], p [..., d]) -> energy [...]``.

    ``separable`` is True when ``H(q, p) = T(p) + V(q)``; such subclasses implement ``grad_V`` and ``grad_T``.
    """

    separable: bool = False

    def forward(self, q: Tensor, p: Tensor) -> Tensor:
        raise NotImplementedError

    def grad_V(self, q: Tensor) -> Tensor:
        """``dV/dq`` ``[..., d]`` (separable Hamiltonians only)."""
        raise NotImplementedError(f"{type(self).__name__} is not separable; use autograd_partials")

    def grad_T(self, p: Tensor) -> Tensor:
        """``dT/dp`` ``[..., d]`` (separable Hamiltonians only)."""
        raise NotImplementedError(f"{type(self).__name__} is not separable; use autograd_partials")


class QuadraticHamiltonian(Hamiltonian):
    """``H(q, p) = (|q|^2 + |p|^2) / 2`` — no parameters (docs/spec.md §C.1 item 1). Separable."""

    separable = True

    def forward(self, q: Tensor, p: Tensor) -> Tensor:
        return 0.5 * (q.square().sum(-1) + p.square().sum(-1))

    def grad_V(self, q: Tensor) -> Tensor:
        return q

    def grad_T(self, p: Tensor) -> Tensor:
        return p


class _ResidualScaled:
    """A validated, settable ``residual_scale`` (plain float, not in the state dict) for learned residuals.

    The value is also kept in the non-persistent 0-d buffer ``residual_scale_t`` (updated in place), which is
    what the forward computations multiply by: a compiled training step then reads it as a tensor and does
    not recompile when the warm-up changes the scale each epoch. ``_residual_on`` (``s != 0``) selects
    whether the residual is evaluated at all.
    """

    _residual_scale: float
    _residual_on: bool
    residual_scale_t: Tensor

    @property
    def residual_scale(self) -> float:
        """Scale ``s`` of the learned residual MLP; a plain Python float (the warm-up sets it each epoch)."""
        return self._residual_scale

    @residual_scale.setter
    def residual_scale(self, value: float) -> None:
        value = _check_scale("residual_scale", value)
        self._residual_scale = value
        self._residual_on = value != 0.0
        if "residual_scale_t" in self._buffers:  # type: ignore[attr-defined]
            with torch.no_grad():
                self.residual_scale_t.fill_(value)
        else:
            self.register_buffer(  # type: ignore[attr-defined]
                "residual_scale_t", torch.tensor(value, dtype=torch.float64), persistent=False
            )


class SeparableHamiltonian(_ResidualScaled, Hamiltonian):
    """HamJEPA's ``H(q, p) = |p|^2/2 + V(q)`` with ``V(q) = base_coeff |q|^2/2 + residual_scale f(q)``
    (docs/spec.md §C.1.3).

    ``f: R^d -> R`` is ``Linear(d, hidden) -> act -> [Linear(hidden, hidden) -> act] * (depth-1) ->
    Linear(hidden, 1)`` with PyTorch's default init (``d=1024, hidden=256, depth=2``: 328 449 parameters).
    Unit mass, no learnable kinetic metric.

    ``residual_scale`` is a plain float attribute (not in the state dict) so a warm-up can set it each epoch.
    When it is 0 the MLP is skipped entirely.

    ``force`` (one of :data:`FORCES`) selects how ``grad f`` is computed: ``"analytic"`` (default) in closed
    form, ``"autograd"`` by ``autograd.grad(create_graph=True)`` as in the reference code. Same values.
    """

    separable = True

    def __init__(
        self,
        dim: int,
        *,
        base_coeff: float = 0.1,
        residual_scale: float = 0.02,
        hidden_dim: int = 256,
        depth: int = 2,
        activation: str = "gelu",
        force: str = "analytic",
    ) -> None:
        super().__init__()
        self.dim = _check_dim("SeparableHamiltonian: dim (the size of q)", dim)
        self.base_coeff = _check_scale("SeparableHamiltonian: base_coeff", base_coeff)
        self.force = check_force("SeparableHamiltonian", force)
        self.residual_scale = residual_scale
        self.residual = build_mlp(dim, 1, hidden_dims=[hidden_dim] * depth, activation=activation)

    def potential(self, q: Tensor) -> Tensor:
        """``V(q)``: ``[..., d] -> [...]``."""
        energy = 0.5 * self.base_coeff * q.square().sum(-1)
        if self._residual_on:
            energy = energy + self.residual_scale_t * self.residual(q).squeeze(-1)
        return energy

    def kinetic(self, p: Tensor) -> Tensor:
        """``T(p) = |p|^2 / 2``: ``[..., d] -> [...]``."""
        return 0.5 * p.square().sum(-1)

    def forward(self, q: Tensor, p: Tensor) -> Tensor:
        return self.kinetic(p) + self.potential(q)

    def grad_V(self, q: Tensor) -> Tensor:
        """``base_coeff * q + residual_scale * grad f(q)``: ``[..., d] -> [..., d]``.

        The quadratic part is closed-form; the residual part is the closed-form MLP gradient
        (``force="analytic"``) or one autograd call (``force="autograd"``, ``create_graph=True`` in grad
        mode); it is skipped when ``residual_scale == 0``.
        """
        if not self._residual_on:
            return self.base_coeff * q
        if self.force == "analytic":
            grad_f = analytic_force(self.residual, q, beta=0.0, scale=1.0)
        else:
            grad_f = _scalar_gradient(self.residual, q)
        return self.base_coeff * q + self.residual_scale_t * grad_f

    def grad_T(self, p: Tensor) -> Tensor:
        return p

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, base_coeff={self.base_coeff}, residual_scale={self._residual_scale}, force={self.force}"
        )


class LearnableHamiltonian(_ResidualScaled, Hamiltonian):
    """Non-separable ``H(q, p) = (|q|^2 + |p|^2)/2 + residual_scale * g([q; p])`` (docs/spec.md §C.1 item 2).

    ``g: R^{2d} -> R`` is the same MLP shape as in :class:`SeparableHamiltonian` on the concatenated state.
    The base coefficient is fixed to 1 (the reference accepts and ignores ``base_coeff``). The explicit
    integrators are **not** symplectic for this family.
    """

    separable = False

    def __init__(
        self,
        dim: int,
        *,
        residual_scale: float = 0.02,
        hidden_dim: int = 256,
        depth: int = 2,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        self.dim = _check_dim("LearnableHamiltonian: dim (the size of q)", dim)
        self.residual_scale = residual_scale
        self.residual = build_mlp(2 * dim, 1, hidden_dims=[hidden_dim] * depth, activation=activation)

    def forward(self, q: Tensor, p: Tensor) -> Tensor:
        energy = 0.5 * (q.square().sum(-1) + p.square().sum(-1))
        if self._residual_on:
            energy = energy + self.residual_scale_t * self.residual(torch.cat((q, p), dim=-1)).squeeze(-1)
        return energy

    def extra_repr(self) -> str:
        return f"dim={self.dim}, residual_scale={self._residual_scale}"
