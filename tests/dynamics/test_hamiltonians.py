"""Hamiltonian families (spec C.1): energies, closed-form + autograd forces, residual scale, activations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hamjepa.dynamics import (
    LearnableHamiltonian,
    QuadraticHamiltonian,
    SeparableHamiltonian,
    autograd_partials,
    build_mlp,
    hamiltonians,
)


def _separable(dim: int = 4, **kwargs) -> SeparableHamiltonian:
    torch.manual_seed(0)
    kwargs = {"base_coeff": 0.3, "residual_scale": 0.5, "hidden_dim": 16, **kwargs}
    return SeparableHamiltonian(dim, **kwargs).double()


def test_paper_sized_potential_mlp_parameter_count() -> None:
    ham = SeparableHamiltonian(1024, hidden_dim=256, depth=2)
    assert sum(p.numel() for p in ham.parameters()) == 328_449  # spec C.1.3
    assert [type(m) for m in ham.residual] == [nn.Linear, nn.GELU, nn.Linear, nn.GELU, nn.Linear]
    assert ham.residual[1].approximate == "none"  # exact (erf) GELU


def test_separable_energy_is_per_sample_sum() -> None:
    ham = _separable()
    q, p = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    expected = 0.5 * (p**2).sum(-1) + 0.5 * 0.3 * (q**2).sum(-1) + 0.5 * ham.residual(q)[:, 0]
    energy = ham(q, p)
    assert energy.shape == (5,)
    torch.testing.assert_close(energy, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("activation", ["gelu", "relu", "silu"])
def test_grad_V_matches_autograd_of_potential(activation: str) -> None:
    ham = _separable(activation=activation)
    q = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    (reference,) = torch.autograd.grad(ham.potential(q).sum(), q)
    force = ham.grad_V(q)
    torch.testing.assert_close(force, reference, rtol=0, atol=1e-12)
    assert force.requires_grad  # built with create_graph=True
    with torch.no_grad():
        force_ng = ham.grad_V(q)
    assert force_ng.grad_fn is None
    torch.testing.assert_close(force_ng, reference, rtol=0, atol=1e-12)
    torch.testing.assert_close(ham.grad_T(q), q)


def test_grad_V_supports_double_backward_into_mlp_and_q() -> None:
    ham = _separable()
    q = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    ham.grad_V(q).square().sum().backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    last_bias = ham.residual[-1].bias  # a constant shift of f: no force, no gradient
    for param in ham.residual.parameters():
        if param is not last_bias:
            assert param.grad is not None and param.grad.abs().sum() > 0


@pytest.mark.parametrize("force", ["analytic", "autograd"])
def test_zero_residual_scale_skips_the_mlp(force: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ham = _separable(residual_scale=0.0, force=force)
    calls = []
    ham.residual.register_forward_hook(lambda *_: calls.append("mlp"))  # the autograd force evaluates f
    real_force = hamiltonians.analytic_force
    monkeypatch.setattr(hamiltonians, "analytic_force", lambda *a, **k: calls.append("analytic") or real_force(*a, **k))
    q = torch.randn(3, 4, dtype=torch.float64)
    assert torch.equal(ham.grad_V(q), 0.3 * q)
    torch.testing.assert_close(ham.potential(q), 0.15 * (q**2).sum(-1))
    assert calls == []
    ham.residual_scale = 0.25
    ham.grad_V(q)
    assert calls == (["analytic"] if force == "analytic" else ["mlp"])


def test_residual_scale_is_a_plain_float_outside_the_state_dict() -> None:
    ham = _separable()
    ham.residual_scale = 1
    assert isinstance(ham.residual_scale, float) and ham.residual_scale == 1.0
    assert not any("residual_scale" in key for key in ham.state_dict())
    for bad in (float("nan"), "0.1", None):
        with pytest.raises(ValueError, match="residual_scale"):
            ham.residual_scale = bad  # type: ignore[assignment]


def test_quadratic_and_learnable_energies() -> None:
    q, p = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    quad = QuadraticHamiltonian()
    torch.testing.assert_close(quad(q, p), 0.5 * (q**2 + p**2).sum(-1))
    assert list(quad.parameters()) == []
    torch.manual_seed(0)
    learn = LearnableHamiltonian(3, residual_scale=0.7, hidden_dim=8).double()
    assert learn.residual[0].in_features == 6  # g acts on [q; p]
    expected = 0.5 * (q**2 + p**2).sum(-1) + 0.7 * learn.residual(torch.cat((q, p), -1))[:, 0]
    torch.testing.assert_close(learn(q, p), expected, rtol=0, atol=1e-12)
    assert not learn.separable and quad.separable


def test_autograd_partials_in_grad_and_no_grad_mode() -> None:
    quad = QuadraticHamiltonian()
    q, p = torch.randn(2, 3), torch.randn(2, 3)
    dq, dp = autograd_partials(quad, q, p)
    torch.testing.assert_close(dq, q)
    torch.testing.assert_close(dp, p)
    with torch.no_grad():
        dq, dp = autograd_partials(quad, q, p, wrt_p=False)
    assert dp is None and dq is not None and dq.grad_fn is None
    with pytest.raises(ValueError, match="at least one"):
        autograd_partials(quad, q, p, wrt_q=False, wrt_p=False)


def test_bad_activation_and_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="valid: gelu, relu, silu"):
        SeparableHamiltonian(4, activation="tanh")
    with pytest.raises(ValueError, match="hidden_dim"):
        build_mlp(4, 1, hidden_dims=[0], activation="gelu")
    with pytest.raises(ValueError, match="dim"):
        SeparableHamiltonian(0)


@pytest.mark.parametrize("force", ["analytic", "autograd"])
def test_residual_scale_set_after_construction_scales_potential_and_force_in_float64(force: str) -> None:
    """The forward reads the scale from its 0-d buffer: setting it (as the warm-up does each epoch, also from
    0) must give exactly ``V = b|q|^2/2 + s f(q)`` and ``grad V = b q + s grad f(q)`` with the new ``s``."""
    torch.manual_seed(0)
    h = SeparableHamiltonian(6, base_coeff=0.1, residual_scale=0.0, hidden_dim=8, force=force).double()
    q = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    f = h.residual(q).squeeze(-1)
    (grad_f,) = torch.autograd.grad(f.sum(), q)
    for s in (0.37, 0.11):
        h.residual_scale = s
        assert h.residual_scale_t.dtype == torch.float64 and float(h.residual_scale_t) == s
        torch.testing.assert_close(h.potential(q), 0.05 * q.square().sum(-1) + s * f, rtol=1e-14, atol=0)
        torch.testing.assert_close(h.grad_V(q), 0.1 * q + s * grad_f, rtol=1e-12, atol=1e-15)
