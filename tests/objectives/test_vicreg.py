"""VICReg (beyond §1): every term by hand, the V > 2 rules, lightly's VICRegLoss in float64, the expander."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from tests.objectives._objectives_testutils import at_step

from hamjepa.objectives import VICRegObjective, get_objective_class
from hamjepa.objectives.vicreg import vicreg_terms

EPS = 1e-4


def test_registered_under_vicreg() -> None:
    assert get_objective_class("vicreg") is VICRegObjective


def test_every_term_on_a_hand_computed_case() -> None:
    # Z1 = [[1, 0], [-1, 0]]: means 0, unbiased variances (2, 0), C = [[2, 0], [0, 0]].
    # Z2 = [[1, 1], [-1, -1]]: means 0, variances (2, 2), C = [[2, 2], [2, 2]].
    z = torch.tensor([[[1.0, 0.0], [-1.0, 0.0]], [[1.0, 1.0], [-1.0, -1.0]]], dtype=torch.float64)
    terms = vicreg_terms(z)
    # invariance: Z1 - Z2 = [[0, -1], [0, 1]] -> 2 / (N D = 4)
    assert terms["invariance"].item() == pytest.approx(0.5, abs=1e-15)
    # variance: view 1 (relu(1 - sqrt(2 + eps)) + relu(1 - sqrt(eps))) / 2 = 0.99 / 2, view 2: 0; mean of views
    assert terms["variance"].item() == pytest.approx((1 - math.sqrt(EPS)) / 2 / 2, abs=1e-15)
    # covariance: view 1 no off-diagonal, view 2 (2^2 + 2^2) / D = 4; (2 / V) * sum = 4
    assert terms["covariance"].item() == pytest.approx(4.0, abs=1e-15)
    out = at_step(VICRegObjective(), z, 0)
    assert out.loss.item() == pytest.approx(25 * 0.5 + 25 * 0.2475 + 4.0, abs=1e-12)
    assert set(out.terms) == {"invariance", "variance", "covariance", "total"}


def _numpy_vicreg(z: np.ndarray, gamma: float = 1.0) -> tuple[float, float, float]:
    """beyond §1 written out element by element: (invariance, variance, covariance) for V views."""
    v, n, d = z.shape
    pairs = list(itertools.combinations(range(v), 2))
    inv = sum(((z[a] - z[b]) ** 2).sum() / (n * d) for a, b in pairs) / len(pairs)
    var_terms, cov_terms = [], []
    for x in z:
        m = x.sum(0) / n
        c = np.array([[sum((x[k, i] - m[i]) * (x[k, j] - m[j]) for k in range(n)) / (n - 1) for j in range(d)]
                      for i in range(d)])  # fmt: skip
        var_terms.append(sum(max(0.0, gamma - math.sqrt(c[j, j] + EPS)) for j in range(d)) / d)
        cov_terms.append(sum(c[i, j] ** 2 for i in range(d) for j in range(d) if i != j) / d)
    return inv, sum(var_terms) / v, (2.0 / v) * sum(cov_terms)


@pytest.mark.parametrize("views", [2, 3, 4])
def test_terms_equal_the_formula_for_any_number_of_views(views: int) -> None:
    rng = np.random.default_rng(views)
    z = rng.normal(size=(views, 7, 5)) * np.linspace(0.3, 1.5, 5) + 0.2
    got = vicreg_terms(torch.from_numpy(z))
    want = _numpy_vicreg(z)
    for name, value in zip(("invariance", "variance", "covariance"), want, strict=True):
        assert got[name].item() == pytest.approx(value, rel=1e-12, abs=1e-14), name
    assert want[1] > 0.01, "some columns must sit below gamma for the variance term to be tested"


def test_equals_lightly_vicreg_loss_and_gradient_in_float64() -> None:
    loss_mod = pytest.importorskip("lightly.loss", reason="lightly is the reference; install hamjepa[test-ref]")
    g = torch.Generator().manual_seed(3)
    z = (torch.randn(2, 24, 12, generator=g, dtype=torch.float64) * torch.linspace(0.2, 1.4, 12)).requires_grad_()
    ours = at_step(VICRegObjective(), z, 0).loss
    (grad,) = torch.autograd.grad(ours, z)
    z_ref = z.detach().clone().requires_grad_()
    ref = loss_mod.VICRegLoss()(z_ref[0], z_ref[1])
    ref.backward()
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, z_ref.grad, rtol=1e-12, atol=1e-12)
    assert grad.abs().max() > 1e-3


def test_expander_feeds_the_terms_and_trains() -> None:
    loss_mod = pytest.importorskip("lightly.loss", reason="lightly is the reference; install hamjepa[test-ref]")
    torch.manual_seed(0)
    objective = VICRegObjective(expander_widths=[16, 16, 8], dim=6).double()
    linears = [m for m in objective.expander if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features, m.bias is not None) for m in linears] == [
        (6, 16, True),
        (16, 16, True),
        (16, 8, False),
    ]
    z = torch.randn(2, 10, 6, dtype=torch.float64)
    out = at_step(objective, z, 0)
    objective.train()
    expanded = objective.expander(z.reshape(20, 6)).reshape(2, 10, 8)
    torch.testing.assert_close(out.loss, loss_mod.VICRegLoss()(expanded[0], expanded[1]), rtol=1e-12, atol=1e-12)
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in objective.parameters())


def test_a_single_sample_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 samples"):
        at_step(VICRegObjective(), torch.randn(2, 1, 4), 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lam": -1.0}, "objective.lam"),
        ({"eps": 0.0}, "objective.gamma and objective.eps"),
        ({"expander_widths": [0]}, "objective.expander_widths"),
        ({"expander_widths": [8]}, "needs the input width dim"),
    ],
)
def test_rejects_bad_settings_naming_the_key(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        VICRegObjective(**kwargs)
