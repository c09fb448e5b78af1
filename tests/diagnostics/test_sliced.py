"""Sliced-projection view of rollouts (App. D.4): exact values on linear maps, the symplectic-vs-Euler ordering
on the pendulum, and the learned-predictor rollout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hamjepa.diagnostics.learned_predictor import diagnose_predictor
from hamjepa.diagnostics.sliced import random_unit_directions, sliced_drift, wasserstein1_1d
from hamjepa.diagnostics.toy_metrics import uniform_states
from hamjepa.diagnostics.toy_report import ToySettings, sliced_ensemble
from hamjepa.diagnostics.toy_systems import get_system
from hamjepa.dynamics import HamiltonianPredictor


def _w1_by_cdf(a: np.ndarray, b: np.ndarray) -> float:
    """W1 = integral of |F_a - F_b| over the merged support (an independent formula)."""
    x = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(np.sort(a), x[:-1], side="right") / a.size
    fb = np.searchsorted(np.sort(b), x[:-1], side="right") / b.size
    return float(np.sum(np.abs(fa - fb) * np.diff(x)))


def test_wasserstein1_matches_the_cdf_formula() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((40, 3)), rng.exponential(size=(40, 3))
    got = wasserstein1_1d(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(got, [_w1_by_cdf(a[:, m], b[:, m]) for m in range(3)], rtol=1e-12)
    assert float(wasserstein1_1d(torch.from_numpy(a), torch.from_numpy(a + 0.5))[0]) == pytest.approx(0.5)


def test_directions_are_unit_and_seeded() -> None:
    d = random_unit_directions(5, 7, seed=3)
    assert d.shape == (7, 5)
    torch.testing.assert_close(d.norm(dim=1), torch.ones(7, dtype=torch.float64))
    assert torch.equal(d, random_unit_directions(5, 7, seed=3))
    assert not torch.equal(d, random_unit_directions(5, 7, seed=4))


def test_exact_values_for_a_uniform_scaling() -> None:
    x0 = torch.randn(50, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    frames = torch.stack([x0 * 1.1**t for t in range(4)])
    dirs = random_unit_directions(4, 6, seed=0)
    res = sliced_drift(frames, dirs)
    np.testing.assert_allclose(res.log_var_ratio, np.outer(2 * np.arange(4) * math.log(1.1), np.ones(6)), atol=1e-12)
    y = (x0 @ dirs.T).numpy()
    expected_w1 = np.abs(y).mean(0) / y.std(0, ddof=1)  # W1(c y, y) = (c - 1) mean|y| for c > 1
    np.testing.assert_allclose(res.w1_rel[1], 0.1 * expected_w1, rtol=1e-10)
    assert res.summary()["log_var_ratio_final"]["spread"] == pytest.approx(0.0, abs=1e-12)
    assert res.w1_rel[0].max() == 0.0


def test_nonfinite_rollouts_are_reported_as_diverged() -> None:
    frames = torch.randn(3, 10, 2, dtype=torch.float64)
    frames[2, 0, 0] = float("inf")
    summary = sliced_drift(frames, random_unit_directions(2, 4, 0)).summary()
    assert summary["diverged"] and summary["max_abs_log_var_ratio_over_time"] is None


def test_leapfrog_keeps_projected_spread_euler_does_not_on_the_pendulum() -> None:
    """Spec-I pendulum ensemble (256 uniform states, dt 0.1, 250 steps): Euler's projected variances drift
    several times further from t = 0 than leapfrog's, in every summary statistic."""
    system, settings = get_system("pendulum"), ToySettings()
    ensemble = uniform_states(system, settings.ensemble, np.random.default_rng(0))
    dirs = random_unit_directions(2, 64, seed=0)
    res = {
        name: sliced_ensemble(system, name, settings, ensemble, dirs).summary()
        for name in ("explicit_euler", "leapfrog")
    }
    euler, leap = res["explicit_euler"], res["leapfrog"]
    assert euler["log_var_ratio_final"]["median_abs"] > 3 * leap["log_var_ratio_final"]["median_abs"]
    assert euler["log_var_ratio_final"]["max"] > 3 * leap["log_var_ratio_final"]["max"]
    assert euler["log_var_ratio_final"]["median"] > 0.2  # Euler inflates the ensemble
    assert euler["sliced_w1_rel_final"] > 1.5 * leap["sliced_w1_rel_final"]


def test_learned_predictor_rollout_reports_the_sliced_view() -> None:
    torch.manual_seed(0)
    predictor = HamiltonianPredictor(8, dt=0.1, steps=2, residual_scale=0.5, hidden_dim=16, depth=2)
    states = torch.randn(16, 8, generator=torch.Generator().manual_seed(1))
    res = diagnose_predictor(
        predictor, states, probes=2, dense_samples=0, rollout_steps=20, rollout_samples=16, sliced_directions=5
    )
    sliced = res["rollout"]["sliced"]
    assert sliced["directions"] == 5 and sliced["steps"] == 20 and not sliced["diverged"]
    assert len(sliced["curves"]["sliced_w1_rel"]) == 21 and sliced["curves"]["sliced_w1_rel"][0] == 0.0
    assert sliced["sliced_w1_rel_final"] > 0
    # the same numbers from the states rolled out by hand
    x, frames = states.double(), [states.double()]
    with torch.no_grad():
        model = predictor.double()
        for _ in range(20):
            x = model(x, 1)
            frames.append(x)
    ref = sliced_drift(torch.stack(frames), random_unit_directions(8, 5, seed=0)).summary()
    assert sliced["sliced_w1_rel_final"] == pytest.approx(ref["sliced_w1_rel_final"], rel=1e-9)
