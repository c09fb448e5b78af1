"""Small float64 linear-algebra helpers for the theory checks (docs/spec.md §J.1 notation)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "gaussian_entropy",
    "participation_ratio",
    "random_spd",
    "spd_inv_sqrt",
    "spd_power",
    "spd_sqrt",
    "worst_case_variance",
]


def random_spd(dim: int, gen: torch.Generator, *, log10_range: tuple[float, float] = (-1.0, 1.0)) -> Tensor:
    """A random SPD ``[dim, dim]`` matrix ``Q diag(l) Q^T``: Haar-like ``Q`` (QR of a Gaussian), eigenvalues
    log-uniform in ``10 ** log10_range``."""
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    lo, hi = log10_range
    eig = 10.0 ** (lo + (hi - lo) * torch.rand(dim, generator=gen, dtype=torch.float64))
    return (q * eig) @ q.T


def spd_power(mat: Tensor, power: float) -> Tensor:
    """``mat ** power`` for a symmetric positive-definite ``mat [d, d]`` (eigendecomposition)."""
    eig, vec = torch.linalg.eigh(mat)
    return (vec * eig.pow(power)) @ vec.T


def spd_sqrt(mat: Tensor) -> Tensor:
    """Symmetric square root ``mat^{1/2}``."""
    return spd_power(mat, 0.5)


def spd_inv_sqrt(mat: Tensor) -> Tensor:
    """Symmetric inverse square root ``mat^{-1/2}``."""
    return spd_power(mat, -0.5)


def worst_case_variance(h: Tensor, sigma: Tensor) -> Tensor:
    """``V_H(Sigma) = sup_{w^T H w <= 1} w^T Sigma^{-1} w = lambda_max(H^{-1/2} Sigma^{-1} H^{-1/2})`` (Lemma 3.1)."""
    hi = spd_inv_sqrt(h)
    a = hi @ torch.linalg.inv(sigma) @ hi
    return torch.linalg.eigvalsh(0.5 * (a + a.T))[-1]


def gaussian_entropy(sigma: Tensor) -> Tensor:
    """Differential entropy of ``N(0, sigma)``: ``d/2 log(2 pi e) + 1/2 log det sigma``."""
    d = sigma.shape[0]
    return 0.5 * d * torch.log(torch.tensor(2.0 * torch.pi * torch.e, dtype=sigma.dtype)) + 0.5 * torch.logdet(sigma)


def participation_ratio(sigma: Tensor) -> Tensor:
    """``PR = (tr Sigma)^2 / tr(Sigma^2)`` (between 1 and ``d`` for PSD ``Sigma``)."""
    return torch.trace(sigma) ** 2 / (sigma * sigma).sum()
