"""Geometry diagnostics against NumPy and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hamjepa.evaluation.geometry import (
    covariance_spectrum,
    effective_rank,
    feature_geometry,
    participation_ratio,
    random_pair_cosines,
)


def data_with_covariance(eigs: np.ndarray, n: int, seed: int) -> torch.Tensor:
    """[n, len(eigs)] samples whose unbiased sample covariance is exactly diag(eigs) (up to round-off)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, eigs.size))
    a -= a.mean(axis=0)
    q, _ = np.linalg.qr(a)  # orthonormal, centred columns
    return torch.from_numpy(q * np.sqrt(n - 1) * np.sqrt(eigs) + 5.0)  # + an offset that centring removes


def test_effective_rank_and_pr_of_diag_1_to_n_match_closed_forms() -> None:
    n = 12
    lam = np.arange(1, n + 1, dtype=np.float64)
    spec = covariance_spectrum(data_with_covariance(lam, 200, 0), top_q=256)
    s = n * (n + 1) / 2
    erank_closed = np.exp(np.log(s) - np.sum(lam * np.log(lam)) / s)
    pr_closed = 3 * n * (n + 1) / (2 * (2 * n + 1))
    assert spec.q_used == n and spec.n_used == 200
    np.testing.assert_allclose(spec.eigenvalues, lam[::-1], rtol=1e-10)
    assert spec.effective_rank == pytest.approx(erank_closed, rel=1e-10)
    assert spec.participation_ratio == pytest.approx(pr_closed, rel=1e-10)


def test_flat_and_single_spike_spectra() -> None:
    assert effective_rank(torch.ones(7)) == pytest.approx(7.0, rel=1e-12)
    assert participation_ratio(torch.ones(7)) == pytest.approx(7.0, rel=1e-12)
    spike = torch.tensor([1.0, 0.0, 0.0])
    assert effective_rank(spike) == pytest.approx(1.0, rel=1e-12)
    assert participation_ratio(spike) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize(("n", "dim", "top_q"), [(300, 10, 4), (15, 24, 256)])
def test_spectrum_matches_numpy_cov_on_the_seeded_subset(n: int, dim: int, top_q: int) -> None:
    x = torch.randn(n, dim, generator=torch.Generator().manual_seed(1)) * torch.linspace(0.2, 3, dim)
    spec = covariance_spectrum(x, max_samples=200, top_q=top_q, seed=0)
    sub = x if n <= 200 else x[torch.randperm(n, generator=torch.Generator().manual_seed(0))[:200]]
    ref = np.sort(np.linalg.eigvalsh(np.cov(sub.double().numpy(), rowvar=False)))[::-1]
    q = min(top_q, dim, sub.shape[0] - 1)
    assert (spec.n_used, spec.q_used) == (sub.shape[0], q)
    np.testing.assert_allclose(spec.eigenvalues, np.maximum(ref[:q], 1e-12), rtol=1e-9, atol=1e-12)
    p = ref[:q] / ref[:q].sum()
    assert spec.effective_rank == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-9)


def test_cosine_and_norm_statistics_match_numpy() -> None:
    g = torch.Generator().manual_seed(2)
    test = torch.randn(50, 6, generator=g) + 1.0  # a mean direction -> positive (uncentred) cosines
    train = torch.randn(40, 6, generator=g)
    geo = feature_geometry(train, test, num_pairs=3000, seed=0)
    pg = torch.Generator().manual_seed(0)
    i1 = torch.randint(0, 50, (3000,), generator=pg).numpy()
    i2 = (i1 + torch.randint(1, 50, (3000,), generator=pg).numpy()) % 50  # distinct rows
    z = test.double().numpy()
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    cos = np.sum(zn[i1] * zn[i2], axis=1)
    norms = np.linalg.norm(z, axis=1)
    for summary, ref in ((geo.cosine, cos), (geo.norms, norms)):
        expected = [ref.mean(), ref.std(), *np.percentile(ref, [10, 50, 90]), ref.min(), ref.max()]
        got = [summary.mean, summary.std, summary.p10, summary.p50, summary.p90, summary.min, summary.max]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert geo.cosine.mean > 0.2
    assert geo.cosines.shape == (3000,) and geo.norm_values.shape == (50,)
    assert set(geo.to_dict()) == {"spectrum", "cosine", "norms"}
    assert bool((random_pair_cosines(test, num_pairs=10).abs() <= 1 + 1e-6).all())
