"""Latent predictors: the symplectic Hamiltonian rollout (docs/spec.md §C.3) and the MLP ablation (docs/spec.md §F).

Both map ``z [B, D]`` (any leading shape ``[..., D]``) to a prediction of the same shape and dtype, with
``direction=+1`` (forward, step ``+dt``) or ``direction=-1`` (backward, step ``-dt``).
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn

from hamjepa.dynamics.hamiltonians import (
    Hamiltonian,
    LearnableHamiltonian,
    QuadraticHamiltonian,
    SeparableHamiltonian,
    check_force,
)
from hamjepa.dynamics.integrators import INTEGRATORS, integrator_for
from hamjepa.dynamics.mlp import build_mlp, make_activation
from hamjepa.models.phase_space import split_qp

__all__ = ["HAMILTONIANS", "HamiltonianPredictor", "MLPPredictor"]

HAMILTONIANS = ("separable", "quadratic", "learnable")
"""Valid ``hamiltonian`` names for :class:`HamiltonianPredictor`."""

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _check_positive_int(owner: str, name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return value


def _check_dt(owner: str, dt: float) -> float:
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
        raise ValueError(
            f"{owner}: dt must be a finite positive float (the sign of the step comes from direction), got {dt!r}"
        )
    return float(dt)


def _check_direction(owner: str, direction: int | Tensor, z: Tensor) -> int | Tensor:
    """``+1``/``-1``, or a floating tensor ``[..., 1]`` of per-row signs matching ``z [..., D]``.

    The values of a sign tensor are not checked (that would synchronise with the device): they must be
    exactly ``+1`` or ``-1``.
    """
    if isinstance(direction, Tensor):
        if not direction.is_floating_point() or direction.shape != (*z.shape[:-1], 1):
            raise ValueError(
                f"{owner}: a per-row direction must be a floating tensor of shape {(*z.shape[:-1], 1)} holding "
                f"+1 / -1, got {direction.dtype} {tuple(direction.shape)}"
            )
        return direction
    if isinstance(direction, bool) or direction not in (1, -1):
        raise ValueError(
            f"{owner}: direction must be +1 (forward, step +dt) or -1 (backward, step -dt), got {direction!r}"
        )
    return int(direction)


def _check_input(owner: str, z: Tensor, dim: int) -> None:
    if z.ndim < 1 or z.shape[-1] != dim:
        raise ValueError(f"{owner}: expected z of shape [..., {dim}], got {tuple(z.shape)}")
    if not z.is_floating_point():
        raise ValueError(f"{owner}: z must be a floating-point tensor, got dtype {z.dtype}")


def _working_dtype(dtype: torch.dtype, upcast: bool) -> torch.dtype:
    return torch.float32 if (upcast and dtype in _LOW_PRECISION) else dtype


class HamiltonianPredictor(nn.Module):
    """Symplectic latent predictor ``z -> Psi_{h}^N(z)`` with ``h = direction * dt`` (docs/spec.md §C.3).

    ``z = [q; p]`` (``D = 2d``) is integrated for ``steps`` steps of a learned Hamiltonian. With the default
    separable Hamiltonian ``H = |p|^2/2 + base_coeff |q|^2/2 + residual_scale f(q)`` and the leapfrog, the
    map is symplectic (``J^T Omega J = Omega``, ``det J = 1``) and ``forward(forward(z, +1), -1) == z`` up to
    round-off (docs/spec.md §J.9, Cor. A.5).

    Args:
        dim: ``D``, the full phase-space width (must be even).
        hamiltonian: ``"separable"`` (HamJEPA), ``"quadratic"`` (``(|q|^2+|p|^2)/2``, no parameters) or
            ``"learnable"`` (non-separable; ``base_coeff`` is ignored, fixed to 1, as in the reference).
        integrator: ``"leapfrog"`` (separable fast path for separable Hamiltonians, autograd otherwise),
            ``"symplectic_euler"`` or ``"euler"`` (explicit Euler; non-symplectic, for diagnostics).
        dt: step size ``> 0``; stored as a float64 non-trainable buffer ``dt`` (in the state dict).
        steps: number of integrator steps ``N``.
        base_coeff: ``beta_0`` of the quadratic part of ``V`` (separable family).
        residual_scale: ``s``, the scale of the learned MLP residual; a settable plain float attribute (not
            in the state dict) so the engine's warm-up can change it. Ignored by ``"quadratic"``.
        hidden_dim, depth, activation: MLP width, number of hidden layers and activation
            (``gelu`` exact, ``relu``, ``silu``).
        force: how the separable potential's residual force ``grad f(q)`` is computed: ``"analytic"``
            (default; closed-form back-propagation through the MLP, so training needs no double backward)
            or ``"autograd"`` (``autograd.grad(create_graph=True)``, the reference formulation; same values
            to round-off). The quadratic family is always closed-form and the non-separable ``"learnable"``
            family always uses autograd on ``H``, whatever this says.
        integrate_fp32: cast float16/bfloat16 inputs to float32 and disable autocast while integrating
            (float32/float64 inputs keep their dtype); the output is cast back to the input dtype.
        learn_dt: must be False — a learnable step collapses (see the error message).

    Shapes: ``forward(z [..., D], direction) -> [..., D]`` in ``z``'s dtype; ``energy(z [..., D]) -> [...]``.
    """

    def __init__(
        self,
        dim: int,
        *,
        hamiltonian: str = "separable",
        integrator: str = "leapfrog",
        dt: float = 0.05,
        steps: int = 2,
        base_coeff: float = 0.1,
        residual_scale: float = 0.02,
        hidden_dim: int = 256,
        depth: int = 2,
        activation: str = "gelu",
        force: str = "analytic",
        integrate_fp32: bool = True,
        learn_dt: bool = False,
    ) -> None:
        super().__init__()
        owner = "HamiltonianPredictor"
        check_force(owner, force)
        _check_positive_int(owner, "dim", dim)
        if dim % 2 != 0:
            raise ValueError(
                f"{owner}: dim must be even to split z into q and p halves, got dim={dim}; use an even "
                "embedding width (split_qp encoder with an even token_dim)"
            )
        if learn_dt:
            raise ValueError(
                f"{owner}: learn_dt=True is not supported: a learnable step size collapses (dt-collapse) — "
                "the prediction loss is trivially reduced by shrinking dt towards 0 so that the predictor "
                "becomes the identity (docs/spec.md §C.3). Use a fixed dt (learn_dt=False)"
            )
        if hamiltonian not in HAMILTONIANS:
            raise ValueError(f"{owner}: unknown hamiltonian={hamiltonian!r}; valid: {', '.join(HAMILTONIANS)}")
        if integrator not in INTEGRATORS:
            raise ValueError(f"{owner}: unknown integrator={integrator!r}; valid: {', '.join(INTEGRATORS)}")
        if not isinstance(integrate_fp32, bool):
            raise ValueError(f"{owner}: integrate_fp32 must be a bool, got {integrate_fp32!r}")
        _check_positive_int(owner, "steps", steps)
        _check_positive_int(owner, "hidden_dim", hidden_dim)
        _check_positive_int(owner, "depth", depth)
        make_activation(activation)  # validated for every family, even the parameter-free quadratic one
        d = dim // 2
        self.dim = dim
        self.integrator_name = integrator
        self.hamiltonian_name = hamiltonian
        self.steps = steps
        self.integrate_fp32 = integrate_fp32
        self.register_buffer("dt", torch.tensor(_check_dt(owner, dt), dtype=torch.float64))

        self.hamiltonian: Hamiltonian
        if hamiltonian == "separable":
            self.hamiltonian = SeparableHamiltonian(
                d,
                base_coeff=base_coeff,
                residual_scale=residual_scale,
                hidden_dim=hidden_dim,
                depth=depth,
                activation=activation,
                force=force,
            )
        elif hamiltonian == "learnable":
            self.hamiltonian = LearnableHamiltonian(
                d, residual_scale=residual_scale, hidden_dim=hidden_dim, depth=depth, activation=activation
            )
            warnings.warn(
                "HamiltonianPredictor: the 'learnable' Hamiltonian is non-separable, so the explicit "
                f"{integrator!r} integrator is NOT symplectic for it (base_coeff is ignored, fixed to 1)",
                stacklevel=2,
            )
        else:
            self.hamiltonian = QuadraticHamiltonian()
        self.residual_scale = residual_scale

    @property
    def residual_scale(self) -> float:
        """Scale ``s`` of the learned residual (plain float; set it e.g. for the epoch warm-up)."""
        return self._residual_scale

    @residual_scale.setter
    def residual_scale(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"HamiltonianPredictor: residual_scale must be a finite float, got {value!r}")
        self._residual_scale = float(value)
        if hasattr(self.hamiltonian, "residual_scale"):
            self.hamiltonian.residual_scale = self._residual_scale

    per_row_direction = True
    """``forward`` accepts a ``[..., 1]`` tensor of per-row signs as ``direction`` (both directions, one call)."""

    def forward(self, z: Tensor, direction: int | Tensor = 1) -> Tensor:
        """Integrate ``z [..., D]`` for ``steps`` steps of ``direction * dt``; returns ``[..., D]`` in ``z.dtype``.

        ``direction``: ``+1``, ``-1``, or a floating tensor ``[..., 1]`` of per-row signs (``+1``/``-1``),
        which integrates each row with its own signed step (rows never interact).
        """
        _check_input("HamiltonianPredictor", z, self.dim)
        direction = _check_direction("HamiltonianPredictor", direction, z)
        q, p = split_qp(z)
        working = _working_dtype(z.dtype, self.integrate_fp32)
        if isinstance(direction, Tensor) and direction.dtype != working:
            direction = direction.to(working)
        h = self.dt.to(working) * direction
        integrate = integrator_for(self.integrator_name, self.hamiltonian)
        q, p = integrate(self.hamiltonian, q, p, h, self.steps, upcast=self.integrate_fp32)
        return torch.cat((q, p), dim=-1).to(z.dtype)

    def energy(self, z: Tensor) -> Tensor:
        """Per-sample energy ``H(q, p)``: ``[..., D] -> [...]`` in the working dtype (float32 for half inputs)."""
        _check_input("HamiltonianPredictor", z, self.dim)
        working = _working_dtype(z.dtype, self.integrate_fp32)
        q, p = split_qp(z.to(working))
        if self.integrate_fp32:
            with torch.autocast(device_type=z.device.type, enabled=False):
                return self.hamiltonian(q, p)
        return self.hamiltonian(q, p)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, hamiltonian={self.hamiltonian_name}, integrator={self.integrator_name}, "
            f"steps={self.steps}, residual_scale={self._residual_scale}, integrate_fp32={self.integrate_fp32}"
        )


class MLPPredictor(nn.Module):
    """Non-symplectic residual-MLP rollout, the MLP-HJEPA ablation (docs/spec.md §F).

    ``z_{n+1} = z_n + h g(z_n)`` for ``n = 0 .. steps-1`` with ``h = direction * dt`` and
    ``g = Linear(D, hidden) -> act -> [Linear(hidden, hidden) -> act] * (depth-1) -> Linear(hidden, D)``
    (PyTorch default init). This is the matched proposal of docs/spec.md §F, an inferred [I] design — the reference
    code has no MLP predictor. The backward direction reuses the same network with ``-h``, which is **not**
    an exact inverse: ``forward(forward(z, +1), -1) != z`` in general, and the map is neither symplectic nor
    volume-preserving.

    Low-precision (float16/bfloat16) inputs are integrated in float32 with autocast off (as the
    Hamiltonian predictor) and the output is cast back to the input dtype.

    Args:
        dim: ``D``.
        dt: step size ``> 0`` (float64 non-trainable buffer ``dt``).
        steps: rollout length ``N``.
        hidden_dim, depth, activation: shape of ``g`` (``gelu`` exact, ``relu``, ``silu``).

    Shapes: ``forward(z [..., D], direction) -> [..., D]``.
    """

    def __init__(
        self,
        dim: int,
        *,
        dt: float = 0.05,
        steps: int = 2,
        hidden_dim: int = 256,
        depth: int = 2,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        owner = "MLPPredictor"
        self.dim = _check_positive_int(owner, "dim", dim)
        self.steps = _check_positive_int(owner, "steps", steps)
        self.register_buffer("dt", torch.tensor(_check_dt(owner, dt), dtype=torch.float64))
        self.net = build_mlp(dim, dim, hidden_dims=[hidden_dim] * depth, activation=activation)

    per_row_direction = True
    """``forward`` accepts a ``[..., 1]`` tensor of per-row signs as ``direction`` (both directions, one call)."""

    def forward(self, z: Tensor, direction: int | Tensor = 1) -> Tensor:
        """Roll ``z [..., D]`` out for ``steps`` residual steps of ``direction * dt``; returns ``z.dtype``.

        ``direction``: ``+1``, ``-1``, or a floating tensor ``[..., 1]`` of per-row signs (``+1``/``-1``).
        """
        _check_input("MLPPredictor", z, self.dim)
        direction = _check_direction("MLPPredictor", direction, z)
        x = z.to(_working_dtype(z.dtype, True))
        if isinstance(direction, Tensor) and direction.dtype != x.dtype:
            direction = direction.to(x.dtype)
        h = self.dt.to(x.dtype) * direction
        with torch.autocast(device_type=z.device.type, enabled=False):
            for _ in range(self.steps):
                x = x + h * self.net(x)
        return x.to(z.dtype)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, steps={self.steps}"
