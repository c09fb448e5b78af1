"""The closed-form force of the separable Hamiltonian equals the autograd force (issue 11, part 1)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch.profiler import ProfilerActivity, profile

from hamjepa.dynamics import HamiltonianPredictor, SeparableHamiltonian, analytic_force

D = 8


def _relative_error(got: Tensor, expected: Tensor) -> float:
    got, expected = got.detach(), expected.detach()
    return float((got - expected).abs().max() / expected.abs().max().clamp_min(1e-300))


def _pair(activation: str, depth: int, dim: int = 5) -> tuple[SeparableHamiltonian, SeparableHamiltonian]:
    """Two float64 Hamiltonians with identical weights, one per force mode."""
    torch.manual_seed(3)
    kwargs = {"base_coeff": 0.3, "residual_scale": 0.7, "hidden_dim": 12, "depth": depth, "activation": activation}
    analytic = SeparableHamiltonian(dim, force="analytic", **kwargs).double()
    autograd = SeparableHamiltonian(dim, force="autograd", **kwargs).double()
    autograd.load_state_dict(analytic.state_dict())
    return analytic, autograd


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("activation", ["gelu", "relu", "silu"])
def test_analytic_force_equals_autograd_force(activation: str, depth: int) -> None:
    analytic, autograd = _pair(activation, depth)
    q = 2.0 * torch.randn(2, 7, 5, dtype=torch.float64)  # any leading shape
    with torch.no_grad():
        fast = analytic.grad_V(q)
    slow = autograd.grad_V(q).detach()
    assert fast.shape == q.shape and fast.grad_fn is None
    assert _relative_error(fast, slow) < 1e-12
    # The residual part alone (the quadratic part must not mask an error in grad f).
    with torch.no_grad():
        grad_f = analytic_force(analytic.residual, q, beta=0.0, scale=1.0)
    q_in = q.clone().requires_grad_(True)
    (reference,) = torch.autograd.grad(autograd.residual(q_in).sum(), q_in)
    assert _relative_error(grad_f, reference) < 1e-12
    assert grad_f.abs().max() > 1e-3


def test_relu_slope_at_zero_follows_autograd_convention() -> None:
    analytic, autograd = _pair("relu", 2)
    with torch.no_grad():
        for linear in analytic.residual[0::2]:
            linear.bias[::2] = 0.0  # half of the units sit exactly at the kink for q = 0
    autograd.load_state_dict(analytic.state_dict())
    q = torch.zeros(3, 5, dtype=torch.float64)
    assert (analytic.residual[0](q) == 0).any()
    with torch.no_grad():
        fast = analytic.grad_V(q)
    torch.testing.assert_close(fast, autograd.grad_V(q), rtol=0, atol=1e-15)


@pytest.mark.parametrize("activation", ["gelu", "relu", "silu"])
def test_training_gradients_agree_between_force_modes(activation: str) -> None:
    torch.manual_seed(1)
    kwargs = {"dt": 0.3, "hidden_dim": 16, "residual_scale": 0.5, "activation": activation}
    fast = HamiltonianPredictor(D, force="analytic", **kwargs).double()
    slow = HamiltonianPredictor(D, force="autograd", **kwargs).double()
    slow.load_state_dict(fast.state_dict())
    z = torch.randn(6, D, dtype=torch.float64)
    target = torch.randn(6, D, dtype=torch.float64)
    grads = []
    for pred in (fast, slow):
        z_in = z.clone().requires_grad_(True)
        loss = (pred(z_in, 1) - target).square().mean() + (pred(z_in, -1) - target).square().mean()
        grads.append(
            [
                g if g is None else g.detach()
                for g in torch.autograd.grad(loss, [z_in, *pred.parameters()], allow_unused=True)
            ]
        )
    for name, got, expected in zip((n for n, _ in fast.named_parameters()), grads[0][1:], grads[1][1:], strict=True):
        if expected is None:  # the output bias of f exerts no force
            assert got is None and name.endswith(f"residual.{len(fast.hamiltonian.residual) - 1}.bias")
            continue
        if got is None:  # relu: a bias only moves the (piecewise constant) slopes; autograd says zeros
            assert activation == "relu" and name.endswith("bias") and not expected.any()
            continue
        assert _relative_error(got, expected) < 1e-12, name
        assert got.abs().max() > 0, name
    assert _relative_error(grads[0][0], grads[1][0]) < 1e-12


def test_analytic_predictor_keeps_exact_inverse_and_symplectic_jacobian_like_autograd() -> None:
    torch.manual_seed(0)
    fast = HamiltonianPredictor(D, dt=0.3, hidden_dim=16, residual_scale=0.5).double()
    slow = HamiltonianPredictor(D, dt=0.3, hidden_dim=16, residual_scale=0.5, force="autograd").double()
    slow.load_state_dict(fast.state_dict())
    z = torch.randn(5, D, dtype=torch.float64)
    assert _relative_error(fast(z, 1), slow(z, 1)) < 1e-12
    assert (fast(fast(z, 1), -1) - z).abs().max() < 1e-12
    jac = torch.autograd.functional.jacobian(lambda x: fast(x[None], 1)[0], z[0])
    omega = torch.zeros(D, D, dtype=torch.float64)
    omega[: D // 2, D // 2 :], omega[D // 2 :, : D // 2] = torch.eye(D // 2), -torch.eye(D // 2)
    assert (jac.T @ omega @ jac - omega).abs().max() < 1e-12


def _forward_op_names(pred: HamiltonianPredictor, z: Tensor) -> set[str]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        pred(z, 1)
    return {event.key for event in prof.key_averages()}


def test_analytic_forward_runs_no_backward_kernels() -> None:
    torch.manual_seed(0)
    fast = HamiltonianPredictor(D, hidden_dim=16)
    slow = HamiltonianPredictor(D, hidden_dim=16, force="autograd")
    z = torch.randn(4, D, requires_grad=True)
    assert "aten::gelu_backward" in _forward_op_names(slow, z)  # the autograd force differentiates f
    fast_ops = _forward_op_names(fast, z)
    assert not any("backward" in name for name in fast_ops), sorted(fast_ops)


def test_unknown_force_and_activation_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown force='numeric'"):
        HamiltonianPredictor(D, force="numeric")
    ham = SeparableHamiltonian(3, hidden_dim=4)
    ham.residual[1] = nn.Tanh()
    with pytest.raises(ValueError, match="no closed-form derivative"):
        ham.grad_V(torch.randn(2, 3))
    ham.residual[1] = nn.GELU(approximate="tanh")
    with pytest.raises(ValueError, match="no closed-form derivative"):
        ham.grad_V(torch.randn(2, 3))


@pytest.mark.parametrize("activation", ["gelu", "relu", "silu"])
def test_forward_mode_jvp_matches_the_autograd_force(activation: str) -> None:
    import torch.autograd.forward_ad as fwAD

    torch.manual_seed(2)
    kwargs = {"dt": 0.3, "hidden_dim": 16, "residual_scale": 0.5, "activation": activation}
    fast = HamiltonianPredictor(D, **kwargs).double()
    slow = HamiltonianPredictor(D, force="autograd", **kwargs).double()
    slow.load_state_dict(fast.state_dict())
    z, tangent = torch.randn(4, D, dtype=torch.float64), torch.randn(4, D, dtype=torch.float64)
    results = []
    for pred in (fast, slow):
        with torch.enable_grad(), fwAD.dual_level():
            out = pred(fwAD.make_dual(z.clone().requires_grad_(True), tangent), -1)
            results.append(fwAD.unpack_dual(out).tangent.detach())
    assert _relative_error(results[0], results[1]) < 1e-12
