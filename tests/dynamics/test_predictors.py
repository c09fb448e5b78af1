"""HamiltonianPredictor and MLPPredictor (docs/spec.md §C.3, C.5, F, J.9, M)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from hamjepa.dynamics import HamiltonianPredictor, MLPPredictor

D = 8  # small phase space for exact float64 Jacobians: q, p in R^4


def _omega(dim: int) -> Tensor:
    d = dim // 2
    omega = torch.zeros(dim, dim, dtype=torch.float64)
    omega[:d, d:], omega[d:, :d] = torch.eye(d), -torch.eye(d)
    return omega


def _jacobian(module: torch.nn.Module, z: Tensor, direction: int = 1) -> Tensor:
    return torch.autograd.functional.jacobian(lambda x: module(x[None], direction)[0], z)


def _ham_predictor(**kwargs) -> HamiltonianPredictor:
    torch.manual_seed(0)
    kwargs = {"dt": 0.3, "hidden_dim": 16, "residual_scale": 0.5, **kwargs}
    return HamiltonianPredictor(D, **kwargs).double()


def _closed_form_two_step(h: float, beta: float, steps: int) -> Tensor:
    """Spec C.5: per-coordinate one-step leapfrog matrix for V = beta |q|^2 / 2, raised to ``steps``."""
    a = 1 - h * h * beta / 2
    one = torch.tensor([[a, h], [-h * beta * (1 - h * h * beta / 4), a]], dtype=torch.float64)
    return torch.linalg.matrix_power(one, steps)


def _shear_jacobian(h: float, beta: float, steps: int) -> Tensor:
    m = _closed_form_two_step(h, beta, steps)
    eye = torch.eye(D // 2, dtype=torch.float64)
    return torch.cat((torch.cat((m[0, 0] * eye, m[0, 1] * eye), 1), torch.cat((m[1, 0] * eye, m[1, 1] * eye), 1)))


# ------------------------------------------------------------------ geometry of the Hamiltonian predictor


@pytest.mark.parametrize("direction", [1, -1])
def test_hamiltonian_predictor_is_symplectic_with_unit_determinant(direction: int) -> None:
    pred = _ham_predictor()
    z = torch.randn(D, dtype=torch.float64)
    jac = _jacobian(pred, z, direction)
    omega = _omega(D)
    assert (jac.T @ omega @ jac - omega).abs().max() < 1e-10
    assert abs(torch.linalg.det(jac) - 1) < 1e-10
    # The MLP residual really shapes the map: the Jacobian is far from the s = 0 linear shear.
    assert (jac - _shear_jacobian(0.3 * direction, 0.1, 2)).abs().max() > 1e-3


def test_backward_prediction_inverts_forward_prediction() -> None:
    pred = _ham_predictor()
    z = torch.randn(5, D, dtype=torch.float64)
    forward = pred(z, 1)
    assert (forward - z).abs().max() > 1e-2  # a genuine move, not the identity
    assert (pred(forward, -1) - z).abs().max() < 1e-10
    assert (pred(pred(z, -1), 1) - z).abs().max() < 1e-10


def test_mlp_predictor_is_neither_symplectic_nor_reversible() -> None:
    torch.manual_seed(0)
    mlp = MLPPredictor(D, dt=0.3, hidden_dim=16).double()
    z = torch.randn(D, dtype=torch.float64)
    jac = _jacobian(mlp, z)
    omega = _omega(D)
    assert (jac.T @ omega @ jac - omega).abs().max() > 1e-3
    assert abs(torch.linalg.det(jac) - 1) > 1e-3
    batch = torch.randn(5, D, dtype=torch.float64)
    assert (mlp(mlp(batch, 1), -1) - batch).abs().max() > 1e-4


@pytest.mark.parametrize("direction", [1, -1])
def test_zero_residual_two_step_map_is_the_closed_form_shear(direction: int) -> None:
    pred = HamiltonianPredictor(D, dt=0.05, steps=2, base_coeff=0.1, residual_scale=0.0).double()
    m = _closed_form_two_step(0.05 * direction, 0.1, 2)
    z = torch.randn(6, D, dtype=torch.float64)
    q, p = z[:, : D // 2], z[:, D // 2 :]
    expected = torch.cat((m[0, 0] * q + m[0, 1] * p, m[1, 0] * q + m[1, 1] * p), dim=1)
    torch.testing.assert_close(pred(z, direction), expected, rtol=0, atol=1e-14)
    assert abs(torch.linalg.det(m) - 1) < 1e-14
    if direction == 1:  # the spec's rounded numbers: q' ~ q + 0.1 p, p' ~ p - 0.01 q
        torch.testing.assert_close(
            m, torch.tensor([[0.9995, 0.09999], [-0.0100, 0.9995]], dtype=torch.float64), rtol=0, atol=1e-4
        )


def test_quadratic_and_learnable_families() -> None:
    z = torch.randn(3, D, dtype=torch.float64)
    quad = HamiltonianPredictor(D, hamiltonian="quadratic", dt=0.1, steps=3).double()
    m = _closed_form_two_step(0.1, 1.0, 3)  # beta = 1 for the quadratic family
    q, p = z[:, : D // 2], z[:, D // 2 :]
    expected = torch.cat((m[0, 0] * q + m[0, 1] * p, m[1, 0] * q + m[1, 1] * p), dim=1)
    torch.testing.assert_close(quad(z), expected, rtol=0, atol=1e-14)
    with pytest.warns(UserWarning, match="NOT symplectic"):
        learn = HamiltonianPredictor(D, hamiltonian="learnable", dt=0.1, steps=3, residual_scale=0.0)
    torch.testing.assert_close(learn.double()(z), expected, rtol=0, atol=1e-14)  # s = 0: same quadratic H


@pytest.mark.parametrize("integrator", ["symplectic_euler", "euler"])
def test_other_integrators_run_through_the_predictor(integrator: str) -> None:
    pred = _ham_predictor(integrator=integrator)
    z = torch.randn(2, D, dtype=torch.float64)
    jac = _jacobian(pred, z[0])
    det_defect = abs(torch.linalg.det(jac) - 1)
    if integrator == "symplectic_euler":
        assert det_defect < 1e-10
    else:
        assert det_defect > 1e-3
    assert pred(z).shape == z.shape


# ------------------------------------------------------------------ precision, autograd, state


def test_autocast_bf16_returns_input_dtype_and_matches_fp32() -> None:
    torch.manual_seed(1)
    pred = HamiltonianPredictor(D, hidden_dim=16, residual_scale=0.5)
    z = torch.randn(4, D)
    reference = pred(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_bf16 = pred(z.bfloat16())
        out_fp32 = pred(z)
    assert out_bf16.dtype == torch.bfloat16 and out_fp32.dtype == torch.float32
    torch.testing.assert_close(out_bf16.float(), reference, rtol=0, atol=5e-2)  # bf16 in/out rounding
    assert torch.equal(out_fp32, reference)  # integration runs in fp32 with autocast off
    assert pred.energy(z.bfloat16()).dtype == torch.float32

    mlp = MLPPredictor(D, hidden_dim=16)
    mlp_reference = mlp(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert mlp(z.bfloat16()).dtype == torch.bfloat16
        assert torch.equal(mlp(z), mlp_reference)  # fp32 rollout, autocast switched off inside


def test_gradients_reach_potential_mlp_and_z_through_grad_V() -> None:
    pred = _ham_predictor()
    z = torch.randn(3, D, dtype=torch.float64, requires_grad=True)
    target = torch.randn(3, D, dtype=torch.float64)
    (pred(z, 1) - target).square().mean().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    residual = pred.hamiltonian.residual
    for param in residual.parameters():
        if param is not residual[-1].bias:  # a constant shift of f exerts no force
            assert param.grad is not None and param.grad.abs().sum() > 0
    # Second-order terms are right: compare with finite differences (uses Hessian-vector products).
    z_small = torch.randn(2, D, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: pred(x, -1), (z_small,))


def test_no_grad_forward_matches_grad_mode() -> None:
    pred = _ham_predictor()
    z = torch.randn(3, D, dtype=torch.float64)
    with_graph = pred(z)
    with torch.no_grad():
        without = pred(z)
    assert without.grad_fn is None
    torch.testing.assert_close(without, with_graph.detach(), rtol=0, atol=1e-15)


def test_residual_scale_is_settable_and_dt_is_a_buffer() -> None:
    pred = _ham_predictor()
    z = torch.randn(2, D, dtype=torch.float64)
    before = pred(z)
    pred.residual_scale = 0.0
    assert pred.hamiltonian.residual_scale == 0.0 and isinstance(pred.residual_scale, float)
    expected = HamiltonianPredictor(D, dt=0.3, residual_scale=0.0).double()(z)
    torch.testing.assert_close(pred(z), expected, rtol=0, atol=1e-14)
    assert (pred(z) - before).abs().max() > 1e-4
    state = pred.state_dict()
    assert "dt" in state and not any("residual_scale" in k for k in state)
    assert "dt" not in dict(pred.named_parameters())
    assert float(state["dt"]) == 0.3


def test_energy_is_per_sample() -> None:
    pred = _ham_predictor(residual_scale=0.0, base_coeff=0.2)
    z = torch.randn(5, D, dtype=torch.float64)
    q, p = z[:, : D // 2], z[:, D // 2 :]
    torch.testing.assert_close(pred.energy(z), 0.5 * (p**2).sum(1) + 0.1 * (q**2).sum(1))


def test_mlp_predictor_is_the_residual_euler_rollout() -> None:
    torch.manual_seed(2)
    mlp = MLPPredictor(D, dt=0.05, steps=2, hidden_dim=16, activation="silu").double()
    z = torch.randn(3, D, dtype=torch.float64)
    expected = z
    for _ in range(2):
        expected = expected - 0.05 * mlp.net(expected)
    torch.testing.assert_close(mlp(z, -1), expected, rtol=0, atol=1e-14)
    assert isinstance(mlp.net[1], torch.nn.SiLU) and mlp.net[-1].out_features == D


# ------------------------------------------------------------------ argument validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dim": 7}, "dim must be even"),
        ({"learn_dt": True}, "dt-collapse"),
        ({"hamiltonian": "mass"}, "valid: separable, quadratic, learnable"),
        ({"integrator": "rk4"}, "valid: leapfrog, symplectic_euler, euler"),
        ({"activation": "tanh"}, "valid: gelu, relu, silu"),
        ({"activation": "tanh", "hamiltonian": "quadratic"}, "valid: gelu, relu, silu"),
        ({"hidden_dim": 0}, "hidden_dim"),
        ({"dt": 0.0}, "dt must be a finite positive"),
        ({"steps": 0}, "steps"),
    ],
)
def test_hamiltonian_predictor_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    kwargs = {"dim": D, **kwargs}
    dim = kwargs.pop("dim")
    with pytest.raises(ValueError, match=match):
        HamiltonianPredictor(dim, **kwargs)


@pytest.mark.parametrize("direction", [0, 2, -2, True, 0.5])
def test_bad_direction_is_rejected(direction: object) -> None:
    z = torch.randn(2, D)
    for module in (HamiltonianPredictor(D, hidden_dim=4), MLPPredictor(D, hidden_dim=4)):
        with pytest.raises(ValueError, match="direction must be"):
            module(z, direction)  # type: ignore[arg-type]


def test_wrong_width_and_mlp_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"\[\.\.\., 8\]"):
        HamiltonianPredictor(D, hidden_dim=4)(torch.randn(2, 6))
    with pytest.raises(ValueError, match=r"\[\.\.\., 8\]"):
        MLPPredictor(D, hidden_dim=4)(torch.randn(2, 6))
    with pytest.raises(ValueError, match="valid: gelu, relu, silu"):
        MLPPredictor(D, activation="elu")
    with pytest.raises(ValueError, match="dt"):
        MLPPredictor(D, dt=-0.1)


@pytest.mark.parametrize("kind", ["hamiltonian", "mlp"])
def test_per_row_directions_equal_separate_calls(kind: str) -> None:
    torch.manual_seed(0)
    pred = _ham_predictor() if kind == "hamiltonian" else MLPPredictor(D, dt=0.3, hidden_dim=16).double()
    z = torch.randn(6, D, dtype=torch.float64)
    signs = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0, -1.0], dtype=torch.float64)[:, None]
    expected = torch.cat([pred(z[:3], 1), pred(z[3:], -1)])
    torch.testing.assert_close(pred(z, signs), expected, rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="per-row direction"):
        pred(z, signs[:3])
