"""Small helpers shared by the objectives tests (predictor factories, NumPy reference formulas)."""

from __future__ import annotations

import numpy as np
from torch import Tensor, nn

from hamjepa.objectives.base import Objective, ObjectiveOutput
from hamjepa.objectives.sigreg import SIGReg


def make_hamiltonian_predictor(dim: int, *, hidden_dim: int = 8, residual_scale: float = 0.02) -> nn.Module:
    """A small real separable-leapfrog HamiltonianPredictor (paper settings except the MLP width)."""
    from hamjepa.dynamics.predictors import HamiltonianPredictor

    return HamiltonianPredictor(
        dim,
        hamiltonian="separable",
        integrator="leapfrog",
        dt=0.05,
        steps=2,
        base_coeff=0.1,
        residual_scale=residual_scale,
        hidden_dim=hidden_dim,
        depth=2,
        activation="gelu",
        integrate_fp32=True,
        learn_dt=False,
    )


def make_mlp_predictor(dim: int, *, hidden_dim: int = 8) -> nn.Module:
    from hamjepa.dynamics.predictors import MLPPredictor

    return MLPPredictor(dim, dt=0.05, steps=2, hidden_dim=hidden_dim, depth=2, activation="gelu")


# ----------------------------------------------------------------------------- NumPy (float64) references
def np_budget(q: np.ndarray, p: np.ndarray, sq: float, sp: float) -> float:
    return (np.mean(q**2) - sq) ** 2 + (np.mean(p**2) - sp) ** 2


def np_variance_floor(x: np.ndarray, gamma: float, eps: float = 1e-4) -> tuple[float, np.ndarray]:
    std = np.sqrt(np.var(x, axis=0) + eps)  # np.var is the biased variance
    return float(np.mean(np.maximum(gamma - std, 0.0) ** 2)), std


def np_projected_cov(x: np.ndarray, proj: np.ndarray, eps: float) -> np.ndarray:
    y = x @ proj
    return np.cov(y, rowvar=False, ddof=1) + eps * np.eye(proj.shape[1])


def np_logdet_stats(cov: np.ndarray) -> tuple[float, float, float]:
    """(logdet / k, PR / k, eigmax fraction) of a covariance matrix."""
    k = cov.shape[0]
    _, logabsdet = np.linalg.slogdet(cov)
    pr = np.trace(cov) ** 2 / (np.sum(cov**2) + 1e-12) / k
    eig = np.linalg.eigvalsh(cov)
    return float(logabsdet / k), float(pr), float(eig[-1] / (eig.sum() + 1e-12))


def np_mean_penalty(z: np.ndarray) -> float:
    return float(np.mean(np.mean(z, axis=0) ** 2))


def at_step(objective: Objective, z: Tensor, step: int = 0, z_target: Tensor | None = None) -> ObjectiveOutput:
    """What eager training runs for ``z [V, B, D]`` at ``step``: the objective's draws, then its forward."""
    return objective(z, objective.draw(step, tuple(z.shape), z.device), z_target)


def sigreg_at(sigreg: SIGReg, z: Tensor, step: int = 0) -> Tensor:
    """SIGReg of ``z [V, B, D]`` or ``[B, D]`` with the directions of ``step``."""
    return sigreg(z, sigreg.directions(z.shape[-1], step, z.device))
