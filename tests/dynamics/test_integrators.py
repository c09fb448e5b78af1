"""Integrators (docs/spec.md §C.2): long-run energy behaviour, autograd vs closed-form paths, precision, no-grad."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from hamjepa.dynamics import (
    LearnableHamiltonian,
    QuadraticHamiltonian,
    SeparableHamiltonian,
    explicit_euler,
    get_integrator,
    hamiltonians,
    leapfrog,
    separable_leapfrog,
    symplectic_euler,
    vector_field,
)


class Pendulum:
    """``H(q, p) = p^2/2 + (1 - cos q)`` per coordinate, summed; declares its closed-form partials."""

    separable = True

    def __call__(self, q: Tensor, p: Tensor) -> Tensor:
        return (0.5 * p.square() + 1.0 - torch.cos(q)).sum(-1)

    def grad_V(self, q: Tensor) -> Tensor:
        return torch.sin(q)

    def grad_T(self, p: Tensor) -> Tensor:
        return p


def _autograd_only(hamiltonian: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    """Hide ``separable`` so the integrators differentiate ``H`` with autograd."""
    return lambda q, p: hamiltonian(q, p)


def _pendulum_energy_errors(integrator: Callable, total_steps: int = 10_000, every: int = 10) -> Tensor:
    """Energy error ``H(x_n) - H(x_0)`` every ``every`` steps, for a few initial angles; ``[T, 4]``."""
    ham = Pendulum()
    q = torch.tensor([[0.5], [1.0], [1.5], [2.5]], dtype=torch.float64)
    p = torch.zeros_like(q)
    energies = [ham(q, p)]
    with torch.no_grad():
        for _ in range(total_steps // every):
            q, p = integrator(ham, q, p, 0.1, every)
            energies.append(ham(q, p))
    energy = torch.stack(energies)
    return energy - energy[0]


def test_pendulum_leapfrog_energy_error_is_small_and_does_not_grow() -> None:
    err = _pendulum_energy_errors(leapfrog).abs()
    first, second = err[: len(err) // 2].amax(0), err[len(err) // 2 :].amax(0)
    assert (err.amax(0) < 1e-2).all()  # O(h^2) with h = 0.1 (shadow Hamiltonian, docs/spec.md §J.9)
    assert (second <= 1.1 * first).all()  # bounded oscillation, no secular drift


def test_pendulum_symplectic_euler_oscillates_boundedly() -> None:
    err = _pendulum_energy_errors(symplectic_euler)
    first, second = err[: len(err) // 2].abs().amax(0), err[len(err) // 2 :].abs().amax(0)
    assert (err.abs().amax(0) < 0.2).all()  # O(h), larger than leapfrog but bounded
    assert (second <= 1.1 * first).all()
    assert (err.amin(0) < 0).all() and (err.amax(0) > 0).all()  # it oscillates around H(x_0)


def test_pendulum_explicit_euler_energy_drifts_upwards() -> None:
    err = _pendulum_energy_errors(explicit_euler)
    quarter = len(err) // 4
    assert (err[-1] > 1.0).all()  # far beyond any initial energy (the largest is 1 - cos 2.5 ~ 1.8)
    checkpoints = err[[quarter, 2 * quarter, 3 * quarter, -1]]
    assert (checkpoints[1:] > checkpoints[:-1]).all()  # grows quarter after quarter


@pytest.mark.parametrize("integrator", [leapfrog, symplectic_euler, explicit_euler])
def test_autograd_path_equals_closed_form_path(integrator: Callable) -> None:
    torch.manual_seed(0)
    ham = SeparableHamiltonian(3, base_coeff=0.2, residual_scale=0.5, hidden_dim=8).double()
    q = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    p = torch.randn(4, 3, dtype=torch.float64)
    fast = integrator(ham, q, p, 0.2, 3)
    slow = integrator(_autograd_only(ham), q, p, 0.2, 3)
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # Partials, not total derivatives: after step 1, p depends on q, which must not leak into dH/dq.
    # Gradients through both paths agree as well.
    inputs = [q, *(t for t in ham.parameters() if t is not ham.residual[-1].bias)]
    grads_fast = torch.autograd.grad(fast[0].sum() + fast[1].square().sum(), inputs)
    grads_slow = torch.autograd.grad(slow[0].sum() + slow[1].square().sum(), inputs)
    for a, b in zip(grads_fast, grads_slow, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_separable_leapfrog_matches_the_textbook_kick_drift_kick() -> None:
    """Force reuse across steps must not change the map (docs/spec.md §C.2: mathematically identical)."""
    torch.manual_seed(1)
    ham = SeparableHamiltonian(3, base_coeff=0.2, residual_scale=0.5, hidden_dim=8).double()
    q0, p0 = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    h, steps = -0.15, 4
    q, p = q0, p0
    for _ in range(steps):
        p = p - h / 2 * ham.grad_V(q)
        q = q + h * p
        p = p - h / 2 * ham.grad_V(q)
    got = separable_leapfrog(ham, q0, p0, h, steps)
    torch.testing.assert_close(got[0], q, rtol=0, atol=1e-13)
    torch.testing.assert_close(got[1], p, rtol=0, atol=1e-13)


def test_separable_leapfrog_evaluates_the_force_steps_plus_one_times(monkeypatch: pytest.MonkeyPatch) -> None:
    ham = SeparableHamiltonian(3, residual_scale=0.5, hidden_dim=8)
    calls = []
    real_force = hamiltonians.analytic_force
    monkeypatch.setattr(hamiltonians, "analytic_force", lambda *a, **k: calls.append(1) or real_force(*a, **k))
    separable_leapfrog(ham, torch.randn(2, 3), torch.randn(2, 3), 0.1, 5)
    assert len(calls) == 6


def test_symplectic_euler_is_symplectic_and_explicit_euler_is_not_for_separable_h() -> None:
    torch.manual_seed(2)
    ham = SeparableHamiltonian(2, base_coeff=0.5, residual_scale=0.5, hidden_dim=8).double()
    omega = torch.zeros(4, 4, dtype=torch.float64)
    omega[:2, 2:], omega[2:, :2] = torch.eye(2), -torch.eye(2)
    x0 = torch.randn(4, dtype=torch.float64)

    def jac(integrator: Callable) -> Tensor:
        def step(x: Tensor) -> Tensor:
            q, p = integrator(ham, x[:2], x[2:], 0.3, 2)
            return torch.cat((q, p))

        return torch.autograd.functional.jacobian(step, x0)

    j_se, j_ee = jac(symplectic_euler), jac(explicit_euler)
    assert (j_se.T @ omega @ j_se - omega).abs().max() < 1e-12
    assert abs(torch.linalg.det(j_se) - 1) < 1e-12
    assert (j_ee.T @ omega @ j_ee - omega).abs().max() > 1e-3
    assert abs(torch.linalg.det(j_ee) - 1) > 1e-3


def test_no_grad_matches_grad_mode_and_returns_no_graph() -> None:
    torch.manual_seed(3)
    ham = LearnableHamiltonian(3, residual_scale=0.5, hidden_dim=8)
    q, p = torch.randn(2, 3, requires_grad=True), torch.randn(2, 3)
    with_graph = leapfrog(ham, q, p, 0.1, 2)
    with torch.no_grad():
        without = leapfrog(ham, q, p, 0.1, 2)
    assert with_graph[0].requires_grad and without[0].grad_fn is None and without[1].grad_fn is None
    torch.testing.assert_close(without[0], with_graph[0].detach())
    torch.testing.assert_close(without[1], with_graph[1].detach())


@pytest.mark.parametrize("integrator", [leapfrog, symplectic_euler, explicit_euler])
def test_low_precision_inputs_integrate_in_float32_under_autocast(integrator: Callable) -> None:
    torch.manual_seed(4)
    ham = SeparableHamiltonian(4, residual_scale=0.5, hidden_dim=8)
    q, p = torch.randn(3, 4), torch.randn(3, 4)
    reference = integrator(ham, q, p, 0.05, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = integrator(ham, q.bfloat16(), p.bfloat16(), 0.05, 2)
    assert out[0].dtype == torch.float32 and out[1].dtype == torch.float32
    # Only the bf16 rounding of the inputs separates the two (relative 2^-8).
    torch.testing.assert_close(out[0], reference[0], rtol=0, atol=3e-2)
    # float32 inside autocast: autocast is switched off, so the result is bitwise the fp32 one.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fp32 = integrator(ham, q, p, 0.05, 2)
    assert torch.equal(fp32[0], reference[0]) and torch.equal(fp32[1], reference[1])


def test_vector_field_of_quadratic_hamiltonian() -> None:
    q, p = torch.randn(2, 3), torch.randn(2, 3)
    dq_dt, dp_dt = vector_field(QuadraticHamiltonian(), q, p)
    torch.testing.assert_close(dq_dt, p)
    torch.testing.assert_close(dp_dt, -q)


def test_integrator_argument_errors() -> None:
    ham = QuadraticHamiltonian()
    q = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="valid: leapfrog, symplectic_euler, euler"):
        get_integrator("rk4")
    with pytest.raises(ValueError, match="steps"):
        leapfrog(ham, q, q, 0.1, 0)
    with pytest.raises(ValueError, match="same shape"):
        symplectic_euler(ham, q, torch.zeros(2, 4), 0.1, 1)
    with pytest.raises(ValueError, match="separable"):
        separable_leapfrog(LearnableHamiltonian(3, hidden_dim=4), q, q, 0.1, 1)
    assert get_integrator("euler") is explicit_euler
