"""Geometry diagnostics of frozen features (docs/spec.md §H.4).

* Covariance spectrum of the *train* features: a random subset of at most ``max_samples`` rows (drawn by
  ``torch.randperm`` on a CPU generator seeded ``seed``), mean-centred, float64; the top
  ``q = min(top_q, D, n - 1)`` eigenvalues ``lambda_i`` of the unbiased covariance ``Xc^T Xc / (n - 1)``
  by an exact ``torch.linalg.eigh`` (of the ``D x D`` covariance, or of the ``n x n`` Gram matrix when
  ``n < D`` -- same non-zero eigenvalues), sorted descending and clamped to ``>= 1e-12``.
* Effective rank ``exp(-sum_i p_i log p_i)`` with ``p_i = lambda_i / sum_j lambda_j`` and participation
  ratio ``(sum_i lambda_i)^2 / sum_i lambda_i^2``, both over that top-``q`` spectrum.
* Random-pair cosines of the *test* features, L2-normalised **without** centring: ``num_pairs`` pairs
  ``(i1, i2)`` of *distinct* rows from a CPU generator seeded ``seed``: ``i1`` uniform, then ``i2 = (i1 + s)
  mod N`` with ``s`` uniform in ``1 .. N-1`` (so ``i2`` is uniform over the other rows). Departure from spec
  H.4, which draws both with replacement: a row paired with itself adds a cosine of exactly 1 (about 0.5 %
  of pairs at N = 200, biasing the mean up); ``random_pair_cosines(..., distinct=False)`` gives that draw.
* L2 norms of the raw test features.
Summaries: mean, std (biased), p10, p50, p90 (linear interpolation, as ``numpy.percentile``), min, max.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class Summary:
    """Distribution summary of a 1-D sample."""

    mean: float
    std: float
    p10: float
    p50: float
    p90: float
    min: float
    max: float


@dataclass
class Spectrum:
    """Top-``q`` centred covariance spectrum (descending) and its effective rank / participation ratio."""

    n_used: int
    q_used: int
    eigenvalues: list[float]
    effective_rank: float
    participation_ratio: float


@dataclass
class Geometry:
    """Geometry of one readout; ``cosines`` and ``norms`` hold the raw samples (for histograms, not JSON)."""

    spectrum: Spectrum
    cosine: Summary
    norms: Summary
    cosines: Tensor = field(repr=False)
    norm_values: Tensor = field(repr=False)

    def to_dict(self) -> dict:
        return {
            "spectrum": vars(self.spectrum).copy(),
            "cosine": vars(self.cosine).copy(),
            "norms": vars(self.norms).copy(),
        }


def summarize(values: Tensor) -> Summary:
    """Summary of a 1-D sample (computed in float64, one host transfer)."""
    if values.numel() == 0:
        raise ValueError("cannot summarise an empty sample")
    v = values.detach().double().reshape(-1)
    qs = torch.quantile(v, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64, device=v.device))
    stats = torch.stack([v.mean(), v.std(correction=0), qs[0], qs[1], qs[2], v.min(), v.max()]).tolist()
    return Summary(*stats)


def effective_rank(eigenvalues: Tensor) -> float:
    """``exp(H(p))`` with ``p = lambda / sum(lambda)`` (entropy in nats; ``0 log 0 = 0``)."""
    lam = eigenvalues.double()
    p = lam / lam.sum()
    ent = -(p * torch.log(p.clamp_min(torch.finfo(torch.float64).tiny))).sum()
    return float(torch.exp(ent))


def participation_ratio(eigenvalues: Tensor) -> float:
    """``(sum lambda)^2 / sum lambda^2``."""
    lam = eigenvalues.double()
    return float(lam.sum() ** 2 / (lam**2).sum())


def covariance_spectrum(feats: Tensor, *, max_samples: int = 5000, top_q: int = 256, seed: int = 0) -> Spectrum:
    """Top-``q`` eigenvalues of the centred covariance of a seeded subset of ``feats [N, D]``."""
    n_all, dim = feats.shape
    if n_all < 2:
        raise ValueError(f"the covariance spectrum needs at least 2 feature rows, got {n_all}")
    if max_samples < 2 or top_q < 1:
        raise ValueError(f"max_samples must be >= 2 and top_q >= 1, got {max_samples} and {top_q}")
    if n_all > max_samples:
        idx = torch.randperm(n_all, generator=torch.Generator().manual_seed(seed))[:max_samples]
        x = feats[idx.to(feats.device)]
    else:
        x = feats
    n = x.shape[0]
    x = x.double()
    xc = x - x.mean(dim=0, keepdim=True)
    gram = xc.T @ xc if dim <= n else xc @ xc.T
    eig = torch.linalg.eigvalsh(gram / (n - 1))
    q = min(top_q, dim, n - 1)
    lam = eig.flip(0)[:q].clamp_min(1e-12)
    return Spectrum(
        n_used=n,
        q_used=q,
        eigenvalues=lam.tolist(),
        effective_rank=effective_rank(lam),
        participation_ratio=participation_ratio(lam),
    )


def random_pair_cosines(feats: Tensor, *, num_pairs: int = 20000, seed: int = 0, distinct: bool = True) -> Tensor:
    """Cosines of ``num_pairs`` random row pairs of ``feats [N, D]`` (no centring): ``[P]``.

    Args:
        feats: ``[N, D]`` features.
        num_pairs: pairs drawn.
        seed: seed of the CPU generator.
        distinct: pairs of two different rows (default; needs ``N >= 2``); ``False``: both rows drawn with
            replacement, a row possibly paired with itself (the draw of docs/spec.md §H.4).
    """
    n = feats.shape[0]
    least = 2 if distinct else 1
    if n < least or num_pairs < 1:
        raise ValueError(f"random-pair cosines need N >= {least} rows and num_pairs >= 1, got {n} and {num_pairs}")
    gen = torch.Generator().manual_seed(seed)
    i1 = torch.randint(0, n, (num_pairs,), generator=gen)
    if distinct:
        i2 = (i1 + torch.randint(1, n, (num_pairs,), generator=gen)) % n
    else:
        i2 = torch.randint(0, n, (num_pairs,), generator=gen)
    i1, i2 = i1.to(feats.device), i2.to(feats.device)
    z = F.normalize(feats.float(), dim=1)
    return (z[i1] * z[i2]).sum(dim=1)


def feature_geometry(
    train_feats: Tensor,
    test_feats: Tensor,
    *,
    max_samples: int = 5000,
    top_q: int = 256,
    num_pairs: int = 20000,
    seed: int = 0,
) -> Geometry:
    """Spectrum of the train features, cosine and norm statistics of the test features (one readout)."""
    if train_feats.ndim != 2 or test_feats.ndim != 2:
        raise ValueError("features must be [N, D]")
    cos = random_pair_cosines(test_feats, num_pairs=num_pairs, seed=seed)
    norms = test_feats.float().norm(dim=1)
    if not math.isfinite(float(norms.sum())):
        raise ValueError("features contain NaN or Inf; the encoder output is not finite")
    return Geometry(
        spectrum=covariance_spectrum(train_feats, max_samples=max_samples, top_q=top_q, seed=seed),
        cosine=summarize(cos),
        norms=summarize(norms),
        cosines=cos.cpu(),
        norm_values=norms.cpu(),
    )
