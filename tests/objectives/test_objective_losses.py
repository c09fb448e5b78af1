"""HamJEPA / MLP-HJEPA / LeJEPA objectives: totals, matching modes, validation, warm-up, registry."""

from __future__ import annotations

import copy

import pytest
import torch
from tests.objectives._objectives_testutils import at_step, make_hamiltonian_predictor, make_mlp_predictor, sigreg_at

from hamjepa.objectives import (
    HamJEPAObjective,
    LeJEPAObjective,
    MLPHJEPAObjective,
    Objective,
    SIGReg,
    available_objectives,
    get_objective_class,
    register_objective,
)

D = 16  # q and p of width 8


def _z(v: int = 2, b: int = 24, d: int = D, seed: int = 0) -> torch.Tensor:
    return torch.randn(v, b, d, generator=torch.Generator().manual_seed(seed))


def _objective(**kwargs) -> HamJEPAObjective:
    torch.manual_seed(0)
    defaults = dict(predictor=make_hamiltonian_predictor(D), logdet_proj_dim=4)
    return HamJEPAObjective(**{**defaults, **kwargs})


def _mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).square().mean()


def test_total_is_weighted_sum_of_terms_and_terms_are_detached_scalars() -> None:
    obj = _objective()
    z = _z().requires_grad_(True)
    out = at_step(obj, z, 0)
    expected_keys = {
        "pred", "budget", "var", "logdet", "mean", "total", "q2", "p2", "q_std_min", "pr_q", "pr_p",
        "logdet_q", "logdet_p", "eigmax_q", "eigmax_p", "z_mean2", "cholesky_info_q", "cholesky_info_p",
    }  # fmt: skip
    assert set(out.terms) == expected_keys
    assert all(t.ndim == 0 and not t.requires_grad for t in out.terms.values())
    t = out.terms
    manual = t["pred"] + 0.2 * t["budget"] + 0.5 * t["var"] + 0.5 * t["logdet"] + 0.05 * t["mean"]
    torch.testing.assert_close(out.loss.detach(), manual)
    torch.testing.assert_close(t["total"], out.loss.detach())
    assert out.loss.ndim == 0 and out.loss.requires_grad
    flat = z.detach().reshape(-1, D)
    torch.testing.assert_close(t["q2"], flat[:, :8].square().mean())
    torch.testing.assert_close(t["z_mean2"], flat.mean(0).square().sum())
    out.loss.backward()
    assert torch.isfinite(z.grad).all()
    # (the potential's output bias gets no gradient: only grad V enters the integrator)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in obj.predictor.parameters())


@pytest.mark.parametrize("match", ["q", "qp", "p"])
@pytest.mark.parametrize("backward_direction", [-1, 1])
def test_prediction_loss_matches_manual_bidirectional_formula(match: str, backward_direction: int) -> None:
    obj = _objective(match=match, backward_direction=backward_direction, p_weight=0.3)
    z = _z()
    pred_ab = obj.predictor(z[0], direction=1)
    pred_ba = obj.predictor(z[1], direction=backward_direction)

    def m(pred: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        mq, mp = _mse(pred[:, :8], tgt[:, :8]), _mse(pred[:, 8:], tgt[:, 8:])
        return {"q": mq + 0.3 * mp, "qp": _mse(pred, tgt), "p": mp}[match]

    expected = 0.5 * (m(pred_ab, z[1]) + m(pred_ba, z[0]))
    torch.testing.assert_close(at_step(obj, z, 0).terms["pred"], expected.detach())


def test_unidirectional_detached_target_gets_no_prediction_gradient() -> None:
    obj = _objective(bidirectional=False)
    z = _z().requires_grad_(True)
    pred, _ = obj.prediction_loss(z)
    forward = obj.predictor(z[0], direction=1)
    expected = _mse(forward[:, :8], z[1, :, :8]) + 0.2 * _mse(forward[:, 8:], z[1, :, 8:])
    torch.testing.assert_close(pred.detach(), expected.detach())  # one direction, no 1/2 average
    pred.backward()
    assert torch.count_nonzero(z.grad[1]) == 0
    assert torch.count_nonzero(z.grad[0]) > 0
    z.grad = None
    undetached, _ = _objective(bidirectional=False, detach_target=False).prediction_loss(z)
    undetached.backward()
    assert torch.count_nonzero(z.grad[1]) > 0


def test_energy_term_matches_manual_formula() -> None:
    obj = _objective(energy_weight=0.1, bidirectional=False)
    z = _z()
    out = at_step(obj, z, 0)
    pred = obj.predictor(z[0], direction=1)
    energy = (obj.predictor.energy(pred) - obj.predictor.energy(z[0])).square().mean()
    torch.testing.assert_close(out.terms["energy"], energy.detach())
    m = _mse(pred[:, :8], z[1, :, :8]) + 0.2 * _mse(pred[:, 8:], z[1, :, 8:])
    torch.testing.assert_close(out.terms["pred"], (m + 0.1 * energy).detach())


def test_bidirectional_energy_term_matches_manual_formula_in_float64() -> None:
    """Both directions from one predictor call: per-direction energy errors, then the mean over directions."""
    obj = _objective(energy_weight=0.1).double()
    z = _z().double()
    out = at_step(obj, z, 0)
    pred, energies = [], []
    for src, dst, direction in ((z[0], z[1], 1), (z[1], z[0], obj.backward_direction)):
        y = obj.predictor(src, direction=direction)
        e = (obj.predictor.energy(y) - obj.predictor.energy(src)).square().mean()
        energies.append(e)
        pred.append(_mse(y[:, :8], dst[:, :8]) + 0.2 * _mse(y[:, 8:], dst[:, 8:]) + 0.1 * e)
    torch.testing.assert_close(out.terms["energy"], (sum(energies) / 2).detach(), rtol=1e-13, atol=0)
    torch.testing.assert_close(out.terms["pred"], (sum(pred) / 2).detach(), rtol=1e-13, atol=0)


def test_std_floor_p_off_and_larger_view_count() -> None:
    obj = _objective(std_floor_p=None, std_floor_q=5.0)  # huge floor: only the q floor is active
    z = _z(v=3)
    out = at_step(obj, z, 0)
    std_q = torch.sqrt(z.reshape(-1, D)[:, :8].var(0, unbiased=False) + 1e-4)
    torch.testing.assert_close(out.terms["var"], (5.0 - std_q).square().mean())


def test_residual_scale_warmup_ramps_linearly_then_holds() -> None:
    s, warmup = 0.02, 4
    obj = _objective(residual_scale_warmup_epochs=warmup)
    assert obj.predictor.residual_scale == pytest.approx(s)
    seen = []
    for epoch in range(1, warmup + 3):
        obj.on_epoch_start(epoch)
        seen.append(obj.predictor.residual_scale)
    assert seen == pytest.approx([s / 4, 2 * s / 4, 3 * s / 4, s, s, s])
    no_warmup = _objective(residual_scale_warmup_epochs=0)
    no_warmup.on_epoch_start(1)
    assert no_warmup.predictor.residual_scale == pytest.approx(s)
    with pytest.raises(ValueError, match="1-indexed"):
        obj.on_epoch_start(0)


def test_mlp_hjepa_runs_with_mlp_predictor_and_rejects_warmup() -> None:
    torch.manual_seed(0)
    obj = MLPHJEPAObjective(predictor=make_mlp_predictor(D), logdet_proj_dim=4)
    z = _z().requires_grad_(True)
    out = at_step(obj, z, 0)
    out.loss.backward()
    assert torch.isfinite(z.grad).all()
    obj.on_epoch_start(3)  # no-op, must not fail
    with pytest.raises(ValueError, match="residual_scale"):
        MLPHJEPAObjective(predictor=make_mlp_predictor(D), residual_scale_warmup_epochs=10)
    with pytest.raises(ValueError, match="residual_scale"):
        HamJEPAObjective(predictor=make_mlp_predictor(D))  # default warm-up 10 needs residual_scale


@pytest.mark.parametrize(
    ("z", "match"),
    [
        (torch.randn(2, 8, 15), "even"),
        (torch.randn(16, 16), r"\[V, B, D\].*\(16, 16\)"),
        (torch.randn(1, 8, 16), r"at least 2 views.*\(1, 8, 16\)"),
        (torch.randn(2, 2, 8, 16), r"4-D.*\(2, 2, 8, 16\)"),
    ],
)
def test_bad_embeddings_raise(z: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        at_step(_objective(), z, 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(match="pq"), "match must be one of"),
        (dict(backward_direction=0), "backward_direction"),
        (dict(hinge="cubic"), "hinge"),
        (dict(budget_weight=-1.0), "budget_weight"),
        (dict(std_floor_q=0.0), "std_floor_q"),
        (dict(residual_scale_warmup_epochs=-1), "residual_scale_warmup_epochs"),
    ],
)
def test_bad_hamjepa_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _objective(**kwargs)


def test_target_encoder_output_is_rejected() -> None:
    z = _z()
    with pytest.raises(ValueError, match="z_target"):
        at_step(_objective(), z, 0, z)
    with pytest.raises(ValueError, match="z_target"):
        at_step(LeJEPAObjective(), z, 0, z)


def test_lejepa_paper_code_and_upstream_combinations() -> None:
    z = _z(b=32)
    sig = sigreg_at(SIGReg(num_slices=64, n_points=9), z, 7)
    paper = at_step(LeJEPAObjective(lambda_reg=0.02), z, 7)
    inv_v2 = (z[0] - z[1]).square().mean() / 4  # mean (mu - z)^2 for V = Vg = 2
    torch.testing.assert_close(paper.terms["pred"], inv_v2)
    torch.testing.assert_close(paper.terms["sigreg"], sig)
    torch.testing.assert_close(paper.loss, 0.5 * inv_v2 + 0.02 * sig)
    # docs/spec.md §E.1: L_pred = (1/8) ||z0 - z1||^2 / (B D) for V = Vg = 2
    torch.testing.assert_close(0.5 * paper.terms["pred"], (z[0] - z[1]).square().sum() / (8 * 32 * D))
    upstream = at_step(LeJEPAObjective(lambda_reg=0.3, combination="upstream"), z, 7)
    torch.testing.assert_close(upstream.loss, 0.7 * inv_v2 + 0.3 * sig)


def test_lejepa_global_views_subset_and_validation() -> None:
    z = _z(v=4)
    out = at_step(LeJEPAObjective(num_global_views=2), z, 0)
    mu = z[:2].mean(0)
    torch.testing.assert_close(out.terms["pred"], (mu - z).square().mean())
    for kwargs, match in [
        (dict(lambda_reg=1.5), "lambda_reg"),
        (dict(combination="sum"), "combination"),
        (dict(num_global_views=0), "num_global_views"),
    ]:
        with pytest.raises(ValueError, match=match):
            LeJEPAObjective(**kwargs)
    with pytest.raises(ValueError, match="num_global_views"):
        at_step(LeJEPAObjective(num_global_views=5), z, 0)


def test_registry_lookup_suggestions_and_duplicates() -> None:
    assert {"hamjepa", "lejepa", "mlp_hjepa"} <= set(available_objectives())
    assert get_objective_class("hamjepa") is HamJEPAObjective
    assert get_objective_class("lejepa") is LeJEPAObjective
    assert get_objective_class("mlp_hjepa") is MLPHJEPAObjective
    with pytest.raises(ValueError, match=r"unknown objective 'hamjepaa'.*lejepa.*Did you mean 'hamjepa'"):
        get_objective_class("hamjepaa")
    with pytest.raises(ValueError, match="already registered"):

        @register_objective("hamjepa")
        class Other(Objective):
            pass

    assert get_objective_class("hamjepa") is HamJEPAObjective
    assert HamJEPAObjective.needs_target_encoder is False and LeJEPAObjective.needs_target_encoder is False


def test_state_dict_round_trip_resumes_identically() -> None:
    obj = _objective(logdet_refresh=4)
    z = _z()
    for _ in range(3):
        at_step(obj, z, 0)
    state = obj.state_dict()
    assert int(state["logdet_q.calls"]) == 3 and int(state["logdet_p.calls"]) == 3
    assert any(key.startswith("predictor.") for key in state)
    resumed = _objective(logdet_refresh=4)
    resumed.load_state_dict(state)
    torch.testing.assert_close(at_step(resumed, z, 0).loss, at_step(obj, z, 0).loss, rtol=0, atol=0)


def test_one_call_for_both_directions_equals_two_calls_in_float64() -> None:
    class TwoCalls(torch.nn.Module):  # hides per_row_direction: the objective then calls once per direction
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner
            self.residual_scale = inner.residual_scale

        def forward(self, z: torch.Tensor, direction: int) -> torch.Tensor:
            assert isinstance(direction, int)
            return self.inner(z, direction)

    z = _z().double().requires_grad_(True)
    one = _objective(energy_weight=0.0).double()
    two = HamJEPAObjective(predictor=TwoCalls(copy.deepcopy(one.predictor)), logdet_proj_dim=4).double()
    out_one, out_two = at_step(one, z, 0), at_step(two, z, 0)
    (g_one,) = torch.autograd.grad(out_one.loss, z)
    (g_two,) = torch.autograd.grad(out_two.loss, z)
    torch.testing.assert_close(out_one.terms["pred"], out_two.terms["pred"], rtol=1e-13, atol=0)
    torch.testing.assert_close(g_one, g_two, rtol=1e-12, atol=1e-15)
