"""The toy diagnostics and ``hamjepa theory`` run the latent predictor's own integrators (one table).

The float64 reference maps below are the toy diagnostics' former private copies, kept here verbatim as the
record that sharing the predictor's integrators changed no number.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from hamjepa.diagnostics.toy_metrics import step_jacobians, symplecticity_defect
from hamjepa.diagnostics.toy_systems import INTEGRATORS, SYSTEMS, ToySystem, apply_step, get_system, rollout
from hamjepa.dynamics import HamiltonianPredictor, explicit_euler, integrator_for, separable_leapfrog, symplectic_euler


def _old_explicit_euler(system: ToySystem, q: Tensor, p: Tensor, h: float) -> tuple[Tensor, Tensor]:
    return q + h * p, p - h * system.grad_potential(q)


def _old_symplectic_euler(system: ToySystem, q: Tensor, p: Tensor, h: float) -> tuple[Tensor, Tensor]:
    p_new = p - h * system.grad_potential(q)
    return q + h * p_new, p_new


def _old_leapfrog(system: ToySystem, q: Tensor, p: Tensor, h: float) -> tuple[Tensor, Tensor]:
    p_half = p - 0.5 * h * system.grad_potential(q)
    q_new = q + h * p_half
    return q_new, p_half - 0.5 * h * system.grad_potential(q_new)


OLD_MAPS = {"explicit_euler": _old_explicit_euler, "symplectic_euler": _old_symplectic_euler, "leapfrog": _old_leapfrog}


def _old_step_fn(name: str):
    def step(system: ToySystem, q: Tensor, p: Tensor, h: float, steps: int) -> tuple[Tensor, Tensor]:
        for _ in range(steps):
            q, p = OLD_MAPS[name](system, q, p, h)
        return q, p

    return step


def _states(system: ToySystem, n: int, dtype: torch.dtype) -> Tensor:
    generator = torch.Generator().manual_seed(7)
    q = torch.empty(n, 1, dtype=dtype).uniform_(*system.q_range, generator=generator)
    p = torch.empty(n, 1, dtype=dtype).uniform_(*system.p_range, generator=generator)
    return torch.cat([q, p], dim=-1)


def test_toy_table_holds_the_predictors_function_objects() -> None:
    assert INTEGRATORS["leapfrog"] is separable_leapfrog
    assert INTEGRATORS["symplectic_euler"] is symplectic_euler
    assert INTEGRATORS["explicit_euler"] is explicit_euler
    predictor = HamiltonianPredictor(4, hidden_dim=8)
    for toy_name, predictor_name in (("leapfrog", "leapfrog"), ("symplectic_euler", "symplectic_euler")):
        assert integrator_for(predictor_name, predictor.hamiltonian) is INTEGRATORS[toy_name]


def test_toy_rollout_calls_the_predictors_leapfrog(monkeypatch: pytest.MonkeyPatch) -> None:
    """A spy in the predictor's integrator module sees the toy diagnostic's calls."""
    import hamjepa.dynamics.integrators as integrators

    calls: list[int] = []
    original = integrators.separable_leapfrog

    def spy(*args, **kwargs):
        calls.append(args[4])
        return original(*args, **kwargs)

    monkeypatch.setattr(integrators, "separable_leapfrog", spy)
    step = integrators.integrator_for("leapfrog", get_system("pendulum"))
    assert step is spy  # resolved from the predictor's table at call time
    rollout(get_system("pendulum"), step, _states(get_system("pendulum"), 5, torch.float64), 0.1, 3, wrap=True)
    assert calls == [1, 1, 1]


@pytest.mark.parametrize("system_name", sorted(SYSTEMS))
@pytest.mark.parametrize("name", sorted(INTEGRATORS))
def test_shared_integrators_reproduce_the_old_toy_maps_in_float64(system_name: str, name: str) -> None:
    system = get_system(system_name)
    x0 = _states(system, 64, torch.float64)
    new_xt, new_traj = rollout(system, INTEGRATORS[name], x0, 0.1, 25, wrap=True, record_every=5)
    old_xt, old_traj = rollout(system, _old_step_fn(name), x0, 0.1, 25, wrap=True, record_every=5)
    assert torch.equal(new_xt, old_xt) and torch.equal(new_traj, old_traj)
    back_new = apply_step(INTEGRATORS[name], system, x0, -0.1)
    back_old = apply_step(_old_step_fn(name), system, x0, -0.1)
    assert torch.equal(back_new, back_old)
    jac_new = step_jacobians(system, INTEGRATORS[name], 0.1, x0[:8])
    jac_old = step_jacobians(system, _old_step_fn(name), 0.1, x0[:8])
    assert torch.equal(jac_new, jac_old)
    defect_new = symplecticity_defect(system, INTEGRATORS[name], 0.1, x0[:8].numpy())
    defect_old = symplecticity_defect(system, _old_step_fn(name), 0.1, x0[:8].numpy())
    for a, b in zip(defect_new, defect_old, strict=True):
        assert (a == b).all()
    x32 = x0.float()  # the sliced-drift figures roll out in float32: same operations, same bits
    assert torch.equal(
        rollout(system, INTEGRATORS[name], x32, 0.1, 25, wrap=True)[0],
        rollout(system, _old_step_fn(name), x32, 0.1, 25, wrap=True)[0],
    )


def test_predictor_and_toy_leapfrog_agree_on_the_harmonic_oscillator() -> None:
    """The quadratic predictor (H = (|q|^2 + |p|^2)/2) and the toy harmonic oscillator are the same system."""
    predictor = HamiltonianPredictor(2, hamiltonian="quadratic", dt=0.1, steps=6).double()
    x0 = _states(get_system("harmonic"), 32, torch.float64)
    expected, _ = rollout(get_system("harmonic"), INTEGRATORS["leapfrog"], x0, 0.1, 6, wrap=False)
    torch.testing.assert_close(predictor(x0, direction=1), expected, rtol=0, atol=1e-14)
    assert math.isclose(float(predictor.dt), 0.1)
