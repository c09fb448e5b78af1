"""HamSIGReg's learnable spectrum as the reference code builds and trains it (docs/spec.md §E.4.1), float64: the radial
bins on grids with ties, the re-gauge under an active clip, the flat start and the H step's default loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.objectives._objectives_testutils import at_step, sigreg_at

from hamjepa.objectives import HamMetric, HamSIGRegObjective
from hamjepa.objectives.ham_metric import radial_bins


def _spec_bins(side: int, num_bins: int) -> np.ndarray:
    """Spec E.4.1 written out: float32 radii, float32 edges, the count of inner edges strictly below r."""
    k = np.arange(side)
    f = (np.where(k > side / 2, k - side, k).astype(np.float32) / np.float32(side)).astype(np.float32)
    r = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2, dtype=np.float32)
    edges = torch.linspace(float(r.min()), float(r.max()) + 1e-12, num_bins + 1, dtype=torch.float32).numpy()
    below = (r[..., None] > edges[1:-1]).sum(-1)
    return np.clip(below, 0, num_bins - 1)


@pytest.mark.parametrize(("side", "num_bins"), [(8, 16), (4, 4), (14, 16), (7, 5), (16, 8)])
def test_radial_bins_follow_the_reference(side: int, num_bins: int) -> None:
    np.testing.assert_array_equal(radial_bins(side, num_bins).numpy(), _spec_bins(side, num_bins))


def test_radial_ties_on_the_cifar_grid_go_to_the_lower_bin() -> None:
    """On the 8x8 grid the diagonal radii sqrt(2) k / 8 fall exactly on edges 4, 8 and 12 of 16 (12 frequencies)."""
    bins = radial_bins(8, 16)
    f = torch.fft.fftfreq(8, dtype=torch.float32)
    r = torch.sqrt(f[:, None].square() + f[None, :].square())
    edges = torch.linspace(float(r.min()), float(r.max()) + 1e-12, 17, dtype=torch.float32)
    ties = [(i, j, e) for i in range(8) for j in range(8) for e in range(1, 16) if r[i, j] == edges[e]]
    assert len(ties) == 12 and sorted({e for _, _, e in ties}) == [4, 8, 12]
    for i, j, e in ties:
        assert int(bins[i, j]) == e - 1, (i, j)  # the lower bin; an upper-bin rule gives e
    assert int(bins[0, 0]) == 0 and int(bins[4, 4]) == 15


def _learnable(side: int = 8, channels: int = 2, **kw) -> HamMetric:
    return HamMetric(side * side * channels, "learnable", token_channels=channels, **kw).double()


def _numpy_log_spectrum(metric: HamMetric, beta: float, alpha: float, gauge: str, clip: float) -> np.ndarray:
    side = metric.layout.side
    inc = np.log1p(np.exp(metric.raw_increments.numpy())) + 1e-12
    span = metric.span_max / (1.0 + np.exp(-float(metric.raw_span)))
    g = np.concatenate([[0.0], span * np.cumsum(inc / inc.sum())])
    lam0 = metric.base.numpy()  # checked against the formula in test_base_spectrum_is_the_mean_normalised_laplacian
    log_lam = np.log((1 - beta) + beta * lam0) + alpha * g[_spec_bins(side, metric.num_bins)]

    def gauged(x: np.ndarray) -> np.ndarray:
        return x - x.mean() if gauge == "logdet" else x - np.log(np.exp(x).mean())

    return gauged(np.clip(gauged(log_lam), -clip, clip))


def test_base_spectrum_is_the_mean_normalised_laplacian_built_in_float32() -> None:
    metric = _learnable(kappa=1.3)
    f = np.fft.fftfreq(8)
    lap = 1e-3 + 1.3 * (4 * np.sin(np.pi * f[:, None]) ** 2 + 4 * np.sin(np.pi * f[None, :]) ** 2)
    np.testing.assert_allclose(metric.base.numpy(), lap / lap.mean(), rtol=1e-6)
    assert torch.equal(metric.base, metric.base.float().double())  # float32 values


@pytest.mark.parametrize("gauge", ["logdet", "trace"])
def test_spectrum_is_gauged_again_after_an_active_clip(gauge: str) -> None:
    metric = _learnable(gauge=gauge, alpha=2.0)  # eps 1e-3: the DC eigenvalue sits far below exp(-3)
    with torch.no_grad():
        metric.raw_span.fill_(2.0)
        metric.raw_increments.copy_(torch.linspace(-2.0, 2.0, 15, dtype=torch.float64))
    log_lam = metric.log_spectrum()
    want = _numpy_log_spectrum(metric, 1.0, 2.0, gauge, 3.0)
    np.testing.assert_allclose(log_lam.numpy(), want, rtol=1e-12, atol=1e-12)
    unclipped = metric._gauged(torch.log(metric.base) + 2.0 * metric.profile()[metric.bins])
    assert float(unclipped.min()) < -3.5  # the clip is active ...
    if gauge == "logdet":  # ... and the final spectrum is exactly gauged all the same
        assert abs(float(log_lam.mean())) < 1e-14
    else:
        assert abs(float(log_lam.exp().mean()) - 1.0) < 1e-14
    assert float(log_lam.min()) != pytest.approx(-3.0)  # re-gauged: the clipped entries moved off the bound


def test_learnable_formula_at_random_raw_parameters_and_blend() -> None:
    metric = _learnable(side=4, channels=2, beta=0.6, alpha=2.0, num_bins=5)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in metric.raw_parameters():
            p.copy_(3.0 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    want = _numpy_log_spectrum(metric, 0.6, 2.0, "logdet", 3.0)
    np.testing.assert_allclose(metric.log_spectrum().numpy(), want, rtol=1e-12, atol=1e-12)


def test_the_profile_starts_flat_and_init_span_restores_the_old_start() -> None:
    flat = _learnable()
    assert float(flat.profile().max()) == pytest.approx(1e-6 * 0.1, rel=1e-9)  # span = 1e-6 span_max
    assert torch.equal(flat.raw_increments, torch.zeros(15, dtype=torch.float64))
    old = _learnable(init_span=0.05)
    assert float(old.raw_span) == 0.0 and float(old.profile().max()) == pytest.approx(0.05, rel=1e-12)
    with pytest.raises(ValueError, match="init_span"):
        _learnable(init_span=0.2)


def _objective(**kw) -> HamSIGRegObjective:
    base = {"metric": "learnable", "token_channels": 2, "num_slices": 8, "num_bins": 4, "init_span": 0.05}
    return HamSIGRegObjective(32, **{**base, **kw}).double()


def test_h_step_loss_defaults_to_sigreg_alone_with_fresh_directions() -> None:
    z = torch.randn(2, 16, 32, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 1.5
    obj = _objective(alpha=3.0)
    assert obj.spectral_weight == 0.0 and obj.h_lr is None  # the reference's defaults (h_lr None = optim.lr)
    raw = obj.metric.raw_parameters()
    penalty = obj.metric.spectral_penalty(alpha=3.0, beta=1.0, **obj.penalty_kwargs)
    assert float(penalty) > 0
    log_lam = obj.metric.log_spectrum(raw, alpha=3.0, beta=1.0)
    sig_h = sigreg_at(obj.h_sigreg, obj.metric.apply_sqrt(z, log_lam), 5)
    sig_encoder = sigreg_at(obj.sigreg, obj.metric.apply_sqrt(z, log_lam), 5)
    assert not torch.equal(obj.h_sigreg.directions(32, 5, z.device), obj.sigreg.directions(32, 5, z.device))
    assert float(sig_h) != float(sig_encoder)
    assert torch.equal(obj.auxiliary_loss(z, 5), obj.lambda_reg * sig_h)
    weighted = _objective(alpha=3.0, spectral_weight=1.0)
    torch.testing.assert_close(weighted.auxiliary_loss(z, 5), obj.lambda_reg * sig_h + penalty, rtol=1e-15, atol=0)
    # the weighted penalty is part of the logged total too (a constant for the encoder)
    out, out_w = at_step(obj, z, 5), at_step(weighted, z, 5)
    torch.testing.assert_close(out_w.loss, out.loss + penalty, rtol=1e-15, atol=0)
    assert float(out_w.loss - out.loss) == pytest.approx(float(penalty), rel=1e-6)
    assert _objective(alpha=0.0).auxiliary_loss(z, 5) is None  # no H update while alpha is 0
