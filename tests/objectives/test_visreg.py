"""VISReg (beyond §2): every term by hand, lightly's VISRegLoss in float64, the directions and the wrapper."""

from __future__ import annotations

from statistics import NormalDist
from typing import ClassVar

import pytest
import torch
from tests.objectives._objectives_testutils import at_step

from hamjepa.objectives import VISRegObjective, get_objective_class
from hamjepa.objectives.base import StepContext
from hamjepa.objectives.visreg import normal_quantiles, visreg_terms

EPS = 1e-4
CPU = torch.device("cpu")


def test_registered_under_visreg() -> None:
    assert get_objective_class("visreg") is VISRegObjective


def test_normal_quantiles_are_phi_inverse_of_n_over_n_plus_1() -> None:
    q = normal_quantiles(7)
    assert q.dtype == torch.float64
    want = [NormalDist().inv_cdf(k / 8) for k in range(1, 8)]
    torch.testing.assert_close(q, torch.tensor(want, dtype=torch.float64), rtol=1e-14, atol=1e-15)


def test_every_term_on_a_hand_computed_case() -> None:
    # view 1 = [[1, 0], [-1, 2]]: means (0, 1), population stds (1, 1)
    # view 2 = [[3, 0], [3, 0]]:  means (3, 0), stds (0, 0)
    z = torch.tensor([[[1.0, 0.0], [-1.0, 2.0]], [[3.0, 0.0], [3.0, 0.0]]], dtype=torch.float64)
    directions = torch.eye(2, dtype=torch.float64)  # K = 2: the two axes
    terms = visreg_terms(z, directions)
    # center: view 1 (0 + 1) / 2, view 2 (9 + 0) / 2 -> mean 2.5
    assert terms["center"].item() == pytest.approx(2.5, abs=1e-15)
    # scale: view 1 0, view 2 ((1 - 0)^2 + (1 - 0)^2) / 2 = 1 -> mean 0.5
    assert terms["scale"].item() == pytest.approx(0.5, abs=1e-15)
    # shape: N = 2 targets -q1 = q2 = Phi^-1(2/3). View 1 on either axis: sorted (-1, 1) / (1 + eps);
    # view 2 standardises to 0: both projections 0. Mean over n, k, then views.
    q = NormalDist().inv_cdf(2 / 3)
    view1 = (1 / (1 + EPS) - q) ** 2
    view2 = q**2
    assert terms["shape"].item() == pytest.approx((view1 + view2) / 2, rel=1e-14)
    # pred: centres of the two global views (2, 0) and (1, 1); squared distances 1, 5, 1, 5 -> 12 / (V N D = 8)
    assert terms["pred"].item() == pytest.approx(1.5, abs=1e-15)
    # only the first view global: centres = view 1, so pred = |view 2 - view 1|^2 / 8 = (4 + 0 + 16 + 4) / 8
    assert visreg_terms(z, directions, num_global_views=1)["pred"].item() == pytest.approx(3.0, abs=1e-15)


def test_shape_gradient_holds_the_std_constant() -> None:
    """The std is stop-gradient: d shape / d z equals the gradient of the same sum with the std of a detached
    copy of z (and differs from it if the std were differentiated)."""
    g = torch.Generator().manual_seed(1)
    z = torch.randn(1, 9, 4, generator=g, dtype=torch.float64).requires_grad_()
    a = torch.randn(4, 5, generator=g, dtype=torch.float64)
    a = a / a.norm(dim=0)
    (grad,) = torch.autograd.grad(visreg_terms(z, a)["shape"], z)
    std = z.detach().std(1, correction=0, keepdim=True)
    zh = (z - z.mean(1, keepdim=True)) / (std + EPS)
    manual = ((zh @ a).sort(dim=1).values - normal_quantiles(9).reshape(1, 9, 1)).square().mean()
    (want,) = torch.autograd.grad(manual, z)
    torch.testing.assert_close(grad, want, rtol=1e-13, atol=1e-15)


class _RecordingNormal(torch.distributions.Normal):
    """lightly's Normal, recording the quantiles it returns (lightly computes them in float32)."""

    seen: ClassVar[list[torch.Tensor]] = []

    def icdf(self, value: torch.Tensor) -> torch.Tensor:
        out = super().icdf(value)
        _RecordingNormal.seen.append(out)
        return out


@pytest.mark.parametrize(("global_views", "local_views"), [(2, 0), (2, 2)])
def test_equals_lightly_visreg_loss_and_gradient_in_float64(
    monkeypatch: pytest.MonkeyPatch, global_views: int, local_views: int
) -> None:
    visreg_module = pytest.importorskip(
        "lightly.loss.visreg_loss", reason="lightly is the reference; install hamjepa[test-ref]"
    )
    monkeypatch.setattr(visreg_module, "Normal", _RecordingNormal)
    _RecordingNormal.seen.clear()
    v, n, d, k = global_views + local_views, 16, 6, 32
    g = torch.Generator().manual_seed(5)
    z = (torch.randn(v, n, d, generator=g, dtype=torch.float64) * torch.linspace(0.3, 1.3, d) + 0.2).requires_grad_()
    lam = 0.6
    reference = visreg_module.VISRegLoss(lambda_param=lam, num_slices=k, lambda_scale=0.5, lambda_shape=2.0)
    z_ref = z.detach().clone().requires_grad_()
    torch.manual_seed(11)  # lightly draws its slices from the global generator: draw the same ones below
    ref = reference.forward_components(global_proj=z_ref[:global_views], local_proj=z_ref[global_views:])
    ref.total.backward()
    torch.manual_seed(11)
    directions = torch.randn(d, k, dtype=torch.float64)
    directions = directions / directions.norm(dim=0)
    (lightly_quantiles,) = _RecordingNormal.seen
    # The one difference from ours: lightly's quantiles are float32 (ours float64, see the test above).
    torch.testing.assert_close(lightly_quantiles.double(), normal_quantiles(n), rtol=0, atol=1e-6)

    objective = VISRegObjective(lam=lam, num_slices=k, w_scale=0.5, w_shape=2.0, num_global_views=global_views)
    terms = visreg_terms(z, directions, num_global_views=global_views, quantiles=lightly_quantiles)
    total = objective.combine(terms)
    (grad,) = torch.autograd.grad(total, z)
    for name in ("pred", "center", "scale", "shape", "total"):
        value = total if name == "total" else terms[name]
        torch.testing.assert_close(value, getattr(ref, name), rtol=1e-12, atol=1e-12, msg=name)
    torch.testing.assert_close(grad, z_ref.grad, rtol=1e-12, atol=1e-12)
    assert grad.abs().max() > 1e-3


def test_forward_is_combine_of_the_terms_with_this_steps_directions() -> None:
    g = torch.Generator().manual_seed(2)
    z = torch.randn(2, 8, 6, generator=g, dtype=torch.float64)
    objective = VISRegObjective(lam=0.6, num_slices=16)
    out = at_step(objective, z, 7)
    terms = visreg_terms(z, objective.draw_directions(7, 6, CPU))
    torch.testing.assert_close(out.loss, objective.combine(terms), rtol=1e-14, atol=1e-14)
    assert set(out.terms) == {"pred", "center", "scale", "shape", "total"}
    ctx = objective.draw(7, tuple(z.shape), CPU)
    assert torch.equal(ctx.draws["directions"], objective.draw_directions(7, 6, CPU))
    torch.testing.assert_close(objective(z, ctx).loss, out.loss, rtol=0, atol=0)


def test_directions_are_unit_seeded_by_step_and_shared_by_both_modes_on_one_process() -> None:
    objective = VISRegObjective(num_slices=64, seed=3)
    a = objective.draw_directions(4, 10, CPU)
    assert a.shape == (10, 64) and a.dtype == torch.float32
    torch.testing.assert_close(a.norm(dim=0), torch.ones(64), rtol=1e-6, atol=1e-6)
    assert torch.equal(a, objective.draw_directions(4, 10, CPU))
    assert not torch.equal(a, objective.draw_directions(5, 10, CPU))
    assert not torch.equal(a, VISRegObjective(num_slices=64, seed=4).draw_directions(4, 10, CPU))
    assert torch.equal(a, VISRegObjective(num_slices=64, seed=3, ddp="per_device").draw_directions(4, 10, CPU))


def test_a_context_without_the_draws_says_what_to_do() -> None:
    with pytest.raises(ValueError, match=r"no draw 'directions'.*objective.draw\(step"):
        VISRegObjective(num_slices=4)(torch.randn(2, 4, 3), StepContext(0))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lam": 1.5}, "objective.lam"),
        ({"w_shape": -1.0}, "objective.w_shape"),
        ({"num_slices": 0}, "objective.num_slices"),
        ({"ddp": "local"}, "objective.ddp"),
        ({"num_global_views": 0}, "objective.num_global_views"),
    ],
)
def test_rejects_bad_settings_naming_the_key(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        VISRegObjective(**kwargs)
