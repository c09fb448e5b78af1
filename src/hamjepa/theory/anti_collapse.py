"""Appendix A anti-collapse lemmas (A.9 - A.14): constructions and bounds on random SPD matrices."""

from __future__ import annotations

import math

import numpy as np
import torch

from hamjepa.theory.context import CheckRow, TheoryContext, rel_error, row
from hamjepa.theory.linalg import (
    participation_ratio,
)


def check_anti_collapse(ctx: TheoryContext) -> list[CheckRow]:
    """Lemmas A.9 - A.14 (constructions and bounds on random SPD matrices)."""
    d, c = ctx.dim, ctx.budget
    rows: list[CheckRow] = []
    e1 = torch.zeros(d, dtype=torch.float64)
    e1[0] = 1.0
    rank1 = c * torch.outer(e1, e1)
    rows.append(
        row(
            "Lemma A.9",
            "Σ = c e₁e₁ᵀ meets tr Σ ≤ c with rank 1 (reports rank)",
            1.0,
            float(torch.linalg.matrix_rank(rank1)),
            "rank 1 and tr = c",
            int(torch.linalg.matrix_rank(rank1)) == 1 and float(torch.trace(rank1)) <= c,
        )
    )
    tau = -1.0
    prs, logdets = [], []
    for eps in 10.0 ** -np.arange(1, 7, dtype=np.float64):
        eig = torch.full((d,), float(eps), dtype=torch.float64)
        eig[0] = math.exp(d * tau) * eps ** -(d - 1)
        prs.append(float(participation_ratio(torch.diag(eig))))
        logdets.append(float(torch.log(eig).sum() / d))
    ok_a10 = max(abs(v - tau) for v in logdets) < 1e-10 and bool(np.all(np.diff(prs) <= 0)) and prs[-1] < 1 + 1e-6
    rows.append(
        row(
            "Lemma A.10",
            "one spike: (1/d)log det = τ for all ε, PR ↓ 1 (PR at ε=1e-6)",
            1.0,
            prs[-1],
            "log det exact, PR non-increasing, PR−1 < 1e-6",
            ok_a10,
        )
    )
    sigma = ctx.spd()
    pr_dev = max(
        rel_error(float(participation_ratio(a * sigma)), float(participation_ratio(sigma))) for a in (1e-3, 7.0, 1e4)
    )
    rows.append(
        row("Lemma A.11", "PR(αΣ) = PR(Σ), α ∈ {1e-3, 7, 1e4} (max rel. dev.)", 0.0, pr_dev, "< 1e-12", pr_dev < 1e-12)
    )
    # A.12: rank-r Σ in R^{n x n}, projection R with k > r orthonormal columns.
    n_amb, r, k, ridge = 12, 3, 6, 1e-4
    f = ctx.randn(n_amb, r)
    sigma_low = f @ f.T
    proj, _ = torch.linalg.qr(ctx.randn(n_amb, k))
    sigma_r = proj.T @ sigma_low @ proj
    mu = torch.linalg.eigvalsh(sigma_r)
    nonzero = mu[mu > 1e-10 * float(mu.max())]
    ridge_direct = float(torch.logdet(sigma_r + ridge * torch.eye(k, dtype=torch.float64)) / k)
    ridge_formula = float(((k - nonzero.numel()) * math.log(ridge) + torch.log(nonzero + ridge).sum()) / k)
    rows.append(
        row(
            "Lemma A.12",
            f"rank Σ_R = {nonzero.numel()} < k={k}; ridge log-det formula",
            ridge_formula,
            ridge_direct,
            "rank ≤ 3 and rel err < 1e-8",
            nonzero.numel() <= r and rel_error(ridge_direct, ridge_formula) < 1e-8,
        )
    )
    # A.13 / A.14 on random SPD matrices, with the constraints set to be tight for each matrix.
    margin13, margin14_max, margin14_min = math.inf, math.inf, math.inf
    for _ in range(500):
        s = ctx.spd(k, log10_range=(-1.5, 1.5))
        eig = torch.linalg.eigvalsh(s)
        tr, tau_s = float(eig.sum()), float(torch.log(eig).mean())
        lmin, lmax = float(eig[0]), float(eig[-1])
        rho = float(participation_ratio(s)) / k
        bound13 = math.exp(k * tau_s) * ((k - 1) / (tr - lmin)) ** (k - 1)
        margin13 = min(margin13, lmin / bound13 - 1, bound13 / (math.exp(k * tau_s) * ((k - 1) / tr) ** (k - 1)) - 1)
        margin14_max = min(margin14_max, tr / math.sqrt(rho * k) / lmax - 1)
        margin14_min = min(margin14_min, lmin / (math.exp(k * tau_s) * lmax ** -(k - 1)) - 1)
    rows.append(
        row(
            "Lemma A.13",
            "λ_min ≥ e^{kτ}((k−1)/(T−λ_min))^{k−1} ≥ e^{kτ}((k−1)/T)^{k−1}, 500 Σ (min relative margin)",
            None,
            margin13,
            "≥ −1e-12",
            margin13 >= -1e-12,
        )
    )
    rows.append(
        row(
            "Lemma A.14",
            "λ_max ≤ T/√(ρk), 500 Σ (min relative margin)",
            None,
            margin14_max,
            "≥ −1e-12",
            margin14_max >= -1e-12,
        )
    )
    rows.append(
        row(
            "Lemma A.14",
            "λ_min ≥ e^{kτ} λ_max^{−(k−1)}, 500 Σ (min relative margin)",
            None,
            margin14_min,
            "≥ −1e-12",
            margin14_min >= -1e-12,
        )
    )
    return rows
