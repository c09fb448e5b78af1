"""SIGReg (docs/spec.md §E.2): quadrature weights, reference magnitudes, seeding and gradients."""

from __future__ import annotations

import math

import pytest
import torch
from tests.objectives._objectives_testutils import sigreg_at

from hamjepa.objectives.sigreg import SIGReg, epps_pulley_knots, expected_gaussian_statistic


def test_weights_for_nine_knots_match_spec_values() -> None:
    t, w = epps_pulley_knots(9, 3.0, "gaussian")
    torch.testing.assert_close(t, torch.linspace(0, 3, 9, dtype=torch.float64))
    listed = torch.tensor(
        [0.375, 0.69908, 0.56613, 0.39832, 0.24349, 0.12932, 0.05967, 0.02392, 0.00417], dtype=torch.float64
    )
    torch.testing.assert_close(w, listed, atol=6e-6, rtol=0)
    assert w.sum().item() == pytest.approx(2.4991, abs=1e-4)
    # trapezoid rule for the integral of exp(-t^2/2) over [-3, 3]
    assert w.sum().item() == pytest.approx(math.sqrt(2 * math.pi) * math.erf(3 / math.sqrt(2)), rel=1e-3)
    _, uniform = epps_pulley_knots(9, 3.0, "uniform")
    torch.testing.assert_close(uniform[1:-1], torch.full((7,), 0.75, dtype=torch.float64))
    assert uniform[0].item() == uniform[-1].item() == 0.375


def test_gaussian_data_gives_expected_statistic() -> None:
    t, w = epps_pulley_knots(9, 3.0)
    expected = float((w * (1 - torch.exp(-t.square()))).sum())
    assert expected == pytest.approx(expected_gaussian_statistic())
    assert expected == pytest.approx(1.052, abs=1e-3)  # docs/spec.md §E.2 reference magnitude
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 2048, 64, generator=g)
    stat = sigreg_at(SIGReg(num_slices=256), z, 0)
    # mean of 512 (nearly independent) slice statistics, each with std < 1: 3 sigma < 0.13
    assert stat.item() == pytest.approx(expected, abs=0.13)


def test_collapsed_data_gives_closed_form() -> None:
    b = 512
    t, w = epps_pulley_knots(9, 3.0)
    per_sample = float((w * (1 - torch.exp(-0.5 * t.square())).square()).sum())
    assert per_sample == pytest.approx(0.4015, abs=1e-4)  # docs/spec.md §E.2 reference magnitude
    stat = sigreg_at(SIGReg(), torch.zeros(2, b, 32), 5)
    assert stat.item() == pytest.approx(per_sample * b, rel=1e-5)


def test_gaussian_input_scores_lower_than_uniform_input() -> None:
    g = torch.Generator().manual_seed(1)
    sig = SIGReg(num_slices=128, n_points=17)
    gauss = sigreg_at(sig, torch.randn(512, 128, generator=g), 0)
    uniform = sigreg_at(sig, torch.rand(512, 128, generator=g), 0)
    assert gauss < uniform


def test_directions_are_unit_norm_and_seeded_by_step_and_seed() -> None:
    sig = SIGReg(num_slices=16, seed=0)
    a0 = sig.directions(10, 3, torch.device("cpu"))
    torch.testing.assert_close(a0.norm(dim=0), torch.ones(16))
    assert torch.equal(a0, SIGReg(num_slices=16, seed=0).directions(10, 3, torch.device("cpu")))
    assert not torch.allclose(a0, sig.directions(10, 4, torch.device("cpu")))
    assert not torch.allclose(a0, SIGReg(num_slices=16, seed=1).directions(10, 3, torch.device("cpu")))


def test_backward_gives_finite_gradients() -> None:
    z = (torch.randn(2, 64, 16) * 3 + 1).requires_grad_(True)
    sigreg_at(SIGReg(), z, 0).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="n_points"):
        SIGReg(n_points=8)
    with pytest.raises(ValueError, match="weight"):
        SIGReg(weight="laplace")
    with pytest.raises(ValueError, match="num_slices"):
        SIGReg(num_slices=0)
    with pytest.raises(ValueError, match=r"\[V, B, D\]"):
        sigreg_at(SIGReg(), torch.randn(4), 0)
