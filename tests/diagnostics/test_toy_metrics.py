"""Toy-system maps and diagnostics against closed-form facts (docs/spec.md §I)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hamjepa.diagnostics.toy_metrics import (
    EPS64,
    convex_hull_area,
    covariance_stability,
    energy_drift_grid,
    euler_pendulum_defect,
    grid_area,
    liouville_area,
    reversibility_grid,
    symplecticity_defect,
    uniform_states,
)
from hamjepa.diagnostics.toy_systems import INTEGRATORS, apply_step, get_system, rollout

DT = 0.1


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_pendulum_defects_match_closed_form(rng: np.random.Generator) -> None:
    pendulum = get_system("pendulum")
    states = uniform_states(pendulum, 50, rng)
    euler, euler_det = symplecticity_defect(pendulum, INTEGRATORS["explicit_euler"], DT, states)
    np.testing.assert_allclose(euler, euler_pendulum_defect(states[:, 0], DT), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(euler_det, 1 + DT**2 * np.cos(states[:, 0]), rtol=1e-12)
    for name in ("leapfrog", "symplectic_euler"):
        defect, det = symplecticity_defect(pendulum, INTEGRATORS[name], DT, states)
        assert defect.max() < 10 * EPS64, name
        assert np.abs(det - 1).max() < 10 * EPS64, name


def test_harmonic_area_ratios() -> None:
    harmonic = get_system("harmonic")
    steps = 60
    euler = liouville_area(harmonic, INTEGRATORS["explicit_euler"], DT, steps, blob=11)
    expected = (1 + DT**2) ** np.arange(steps + 1)  # det of the Euler step is 1 + dt^2
    np.testing.assert_allclose(euler.ratio, expected, rtol=1e-12)
    leap = liouville_area(harmonic, INTEGRATORS["leapfrog"], DT, steps, blob=11)
    assert np.abs(leap.ratio - 1).max() < 1e-13
    assert leap.hull_ratio == pytest.approx(1.0, abs=1e-12)  # a linear area-preserving map keeps the hull area


def test_area_helpers_on_known_shapes() -> None:
    axis = np.linspace(0.0, 2.0, 5)
    qq, pp = np.meshgrid(axis, 0.5 * axis)
    points = np.stack([qq, pp], axis=-1)
    assert grid_area(points) == pytest.approx(2.0)
    assert convex_hull_area(points.reshape(-1, 2)) == pytest.approx(2.0)
    triangle = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.2, 0.2]])
    assert convex_hull_area(triangle) == pytest.approx(0.5)


def test_leapfrog_reversible_euler_not() -> None:
    pendulum = get_system("pendulum")
    leap = reversibility_grid(pendulum, INTEGRATORS["leapfrog"], DT, 40, 9)
    euler = reversibility_grid(pendulum, INTEGRATORS["explicit_euler"], DT, 40, 9)
    assert leap.shape == (9, 9)
    assert np.median(leap) < 1e-4  # float32 round-off only
    assert np.median(euler) > 1e-2


def test_energy_drift_grid_masks_minimum_and_ranks_integrators() -> None:
    pendulum = get_system("pendulum")
    leap = energy_drift_grid(pendulum, INTEGRATORS["leapfrog"], DT, 50, 11)
    euler = energy_drift_grid(pendulum, INTEGRATORS["explicit_euler"], DT, 50, 11)
    assert np.isnan(leap[5, 5]) and np.isnan(euler[5, 5])  # H0 = 0 at the grid centre
    assert np.nanmedian(np.abs(leap)) < 0.1 * np.nanmedian(np.abs(euler))
    assert np.nanmedian(euler) > 0  # explicit Euler typically gains energy


def test_covariance_logdet_follows_jacobian_determinant(rng: np.random.Generator) -> None:
    harmonic = get_system("harmonic")
    x0 = uniform_states(harmonic, 64, rng)
    steps = 40
    leap = covariance_stability(harmonic, INTEGRATORS["leapfrog"], DT, steps, x0)
    euler = covariance_stability(harmonic, INTEGRATORS["explicit_euler"], DT, steps, x0)
    # Linear maps: C_t = J^t C_0 J^tT, so log det C_t = log det C_0 + 2 t log det J (float32 rollouts).
    np.testing.assert_allclose(leap.logdet, leap.logdet[0], atol=1e-4)
    expected = euler.logdet[0] + 2 * (euler.times / DT) * math.log(1 + DT**2)
    np.testing.assert_allclose(euler.logdet, expected, atol=1e-4)
    assert euler.times[-1] == pytest.approx(steps * DT)


def test_rollout_and_step_shapes_and_validation() -> None:
    duffing = get_system("duffing")
    x0 = torch.zeros(3, 2, dtype=torch.float64)
    x0[:, 0] = torch.tensor([0.1, 0.2, 0.3])
    x_t, traj = rollout(duffing, INTEGRATORS["leapfrog"], x0, DT, 7, wrap=False, record_every=3)
    assert traj is not None and traj.shape == (4, 3, 2)  # t = 0, 3, 6, 7
    torch.testing.assert_close(traj[-1], x_t)
    back = x_t
    for _ in range(7):
        back = apply_step(INTEGRATORS["leapfrog"], duffing, back, -DT)
    torch.testing.assert_close(back, x0, atol=1e-13, rtol=0)
    with pytest.raises(ValueError, match="unknown toy system"):
        get_system("lorenz")
