"""Regularisers of docs/spec.md §D.3-D.6 against independent NumPy (float64) formulas and the docs/spec.md §M checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tests.objectives._objectives_testutils import (
    np_budget,
    np_logdet_stats,
    np_mean_penalty,
    np_projected_cov,
    np_variance_floor,
)

from hamjepa.objectives.floors import ProjectedLogDetFloor
from hamjepa.objectives.regularizers import MeanPenalty, ScaleBudget, VarianceFloor


def _anisotropic(n: int, d: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scales = torch.linspace(0.2, 2.0, d)
    return torch.randn(n, d, generator=g) * scales + 0.3 * torch.randn(d, generator=g)


def test_spec_m_rank_one_line_passes_std_floor_but_trips_logdet_floor() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(512, 1, generator=g)
    u = 0.3 * torch.ones(1, 128)
    x = a @ u  # rank-1 "line", per-dimension std ~ 0.3
    assert VarianceFloor(0.1)(x).loss < 1e-3
    out = ProjectedLogDetFloor(proj_dim=32, floor=-2.0)(x)
    assert out.loss > 1e-3
    # rank-1 collapse: logdet/k ~ (k-1)/k * log(eps) (Lemma A.12), far below the floor
    assert out.logdet < (31 / 32) * math.log(1e-4) + 0.5


def test_one_spike_spectrum_trips_pr_floor_and_eigmax_ceiling() -> None:
    g = torch.Generator().manual_seed(1)
    iso = torch.randn(512, 32, generator=g)
    spike = iso.clone()
    spike[:, 0] *= 100.0
    kwargs = dict(proj_dim=32, floor=-100.0)  # k = d: R is a rotation, spectrum preserved; logdet term off
    pr_mod = ProjectedLogDetFloor(pr_floor=0.12, **kwargs)
    assert pr_mod(iso).loss == 0.0
    spiked = pr_mod(spike)
    assert spiked.pr_norm < 0.05
    assert spiked.loss > 1e-3
    eig_mod = ProjectedLogDetFloor(eigmax_ceiling=0.35, **kwargs)
    assert eig_mod(iso).loss == 0.0
    assert eig_mod(spike).eigmax > 0.99
    assert eig_mod(spike).loss > 0.1


def test_participation_ratio_is_scale_invariant() -> None:
    x = _anisotropic(256, 24)
    prs = [ProjectedLogDetFloor(proj_dim=16, eps=1e-10)(c * x).pr_norm for c in (1.0, 0.01, 50.0)]
    torch.testing.assert_close(prs[1], prs[0], rtol=1e-4, atol=0)
    torch.testing.assert_close(prs[2], prs[0], rtol=1e-4, atol=0)


def test_values_match_numpy_float64() -> None:
    q = _anisotropic(96, 12, seed=2)
    p = 0.5 * _anisotropic(96, 12, seed=3)
    qn, pn = q.double().numpy(), p.double().numpy()

    bud = ScaleBudget(1.0, 0.7)(q, p)
    assert bud.loss.item() == pytest.approx(np_budget(qn, pn, 1.0, 0.7), rel=1e-5)
    assert bud.q2.item() == pytest.approx(np.mean(qn**2), rel=1e-5)

    vf = VarianceFloor(0.9)(q)
    ref_loss, ref_std = np_variance_floor(qn, 0.9)
    assert vf.loss.item() == pytest.approx(ref_loss, rel=1e-4)
    np.testing.assert_allclose(vf.std.numpy(), ref_std, rtol=1e-5)
    linear = VarianceFloor(0.9, hinge="linear")(q).loss.item()
    assert linear == pytest.approx(float(np.mean(np.maximum(0.9 - ref_std, 0.0))), rel=1e-4)

    mod = ProjectedLogDetFloor(proj_dim=8, floor=0.5, pr_floor=0.99, eigmax_ceiling=0.1, pr_weight=2.0)
    out = mod(q)
    cov = np_projected_cov(qn, mod.projection.double().numpy(), 1e-4)
    logdet, pr, eigmax = np_logdet_stats(cov)
    assert out.logdet.item() == pytest.approx(logdet, rel=1e-4, abs=1e-5)
    assert out.pr_norm.item() == pytest.approx(pr, rel=1e-4)
    assert out.eigmax.item() == pytest.approx(eigmax, rel=1e-4)
    ref = max(0.5 - logdet, 0) ** 2 + 2.0 * max(0.99 - pr, 0) ** 2 + max(eigmax - 0.1, 0) ** 2
    assert out.loss.item() == pytest.approx(ref, rel=1e-4)
    lin = ProjectedLogDetFloor(proj_dim=8, floor=0.5, pr_floor=0.99, eigmax_ceiling=0.1, hinge="linear")(q)
    assert lin.loss.item() == pytest.approx(max(0.5 - logdet, 0) + max(0.99 - pr, 0) + max(eigmax - 0.1, 0), rel=1e-4)

    z = torch.cat([q, p], 1)
    assert MeanPenalty()(z).loss.item() == pytest.approx(np_mean_penalty(z.double().numpy()), rel=1e-5)


def test_projection_is_orthonormal_refreshes_on_schedule_and_survives_resume() -> None:
    x = _anisotropic(64, 20)
    mod = ProjectedLogDetFloor(proj_dim=6, refresh_interval=4, seed=3)
    mod(x)
    r0 = mod.projection.clone()
    torch.testing.assert_close(r0.T @ r0, torch.eye(6), atol=1e-5, rtol=0)
    for _ in range(3):
        mod(x)
        assert torch.equal(mod.projection, r0)  # calls 1..3 reuse R
    mod(x)  # call 4 -> refresh
    assert not torch.allclose(mod.projection, r0)
    mod(x)  # call 5
    state = mod.state_dict()
    assert int(state["calls"]) == 6
    resumed = ProjectedLogDetFloor(proj_dim=6, refresh_interval=4, seed=3)
    resumed.load_state_dict(state)
    a, b = mod(x), resumed(x)  # both at call 6: same R (drawn at call 4), same loss
    assert torch.equal(mod.projection, resumed.projection)
    torch.testing.assert_close(a.loss, b.loss, rtol=0, atol=0)
    other_seed = ProjectedLogDetFloor(proj_dim=6, refresh_interval=4, seed=4)
    other_seed(x)
    assert not torch.allclose(other_seed.projection, r0)


def test_degenerate_batches_return_zero() -> None:
    one = torch.randn(1, 8)
    assert VarianceFloor(0.5)(one).loss == 0.0
    assert ProjectedLogDetFloor(proj_dim=4)(one).loss == 0.0


def test_gradients_are_finite() -> None:
    x = _anisotropic(64, 16).requires_grad_(True)
    loss = (
        VarianceFloor(1.0)(x).loss
        + ProjectedLogDetFloor(proj_dim=8, floor=1.0, pr_floor=0.9, eigmax_ceiling=0.05)(x).loss
        + MeanPenalty()(x).loss
        + ScaleBudget(2.0, 2.0)(x[:, :8], x[:, 8:]).loss
    )
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: ScaleBudget(0.0, 1.0), "target_q"),
        (lambda: VarianceFloor(-1.0), "gamma"),
        (lambda: VarianceFloor(0.2, hinge="cubic"), "hinge"),
        (lambda: ProjectedLogDetFloor(proj_dim=0), "proj_dim"),
        (lambda: ProjectedLogDetFloor(refresh_interval=0), "refresh_interval"),
        (lambda: ProjectedLogDetFloor(pr_floor=1.5), "pr_floor"),
        (lambda: ProjectedLogDetFloor(eigmax_ceiling=0.0), "eigmax_ceiling"),
        (lambda: ProjectedLogDetFloor(eps=0.0), "eps"),
    ],
)
def test_bad_arguments_raise(factory, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        factory()


def test_bad_input_shape_raises() -> None:
    with pytest.raises(ValueError, match=r"2-D tensor"):
        VarianceFloor(0.2)(torch.randn(2, 3, 4))
