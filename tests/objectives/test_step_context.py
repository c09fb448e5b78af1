"""The step context: ``objective.draw`` makes every host-side value of a step, ``forward(z, ctx)`` is a pure
function of its inputs, and the engine builds objectives with ``from_context``."""

from __future__ import annotations

import copy

import pytest
import torch
from tests.objectives._objectives_testutils import at_step, make_hamiltonian_predictor, make_mlp_predictor

from hamjepa.objectives import (
    BuildContext,
    HamJEPAObjective,
    HamSIGRegObjective,
    LeJEPAObjective,
    MLPHJEPAObjective,
    StepContext,
    VICRegObjective,
    VISRegObjective,
)
from hamjepa.objectives.bijepa import BiJEPAObjective


def _objectives() -> list[torch.nn.Module]:
    d = 16
    return [
        HamJEPAObjective(predictor=make_hamiltonian_predictor(d), logdet_proj_dim=6, logdet_refresh=2).double(),
        LeJEPAObjective(num_slices=8).double(),
        VISRegObjective(num_slices=8).double(),
    ]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["hamjepa", "lejepa", "visreg"])
def test_draw_then_forward_equals_the_eager_step(index: int) -> None:
    """A context made by ``draw`` and evaluated later (the compiled step's split) gives the eager numbers."""
    eager = _objectives()[index]
    twin = copy.deepcopy(eager)
    gen = torch.Generator().manual_seed(0)
    for step in range(5):  # crosses log-det projection refreshes (every 2 calls)
        z = torch.randn(2, 12, 16, generator=gen, dtype=torch.float64, requires_grad=True)
        want = at_step(eager, z, step)
        ctx = twin.draw(step, tuple(z.shape), z.device)
        assert ctx.step == step
        got = twin(z, ctx)
        assert got.loss.item() == want.loss.item()
        assert {k: v.item() for k, v in got.terms.items()} == {k: v.item() for k, v in want.terms.items()}
    assert eager.state_dict().keys() == twin.state_dict().keys()
    for k, v in eager.state_dict().items():
        assert torch.equal(v, twin.state_dict()[k]), k


def test_draws_are_named_tensors() -> None:
    ham, lejepa, visreg = _objectives()
    z_shape = (2, 12, 16)
    assert set(ham.draw(0, z_shape, torch.device("cpu")).draws) == {"logdet_projection_q", "logdet_projection_p"}
    assert set(lejepa.draw(0, z_shape, torch.device("cpu")).draws) == {"sigreg_directions"}
    assert set(visreg.draw(0, z_shape, torch.device("cpu")).draws) == {"directions"}
    assert VICRegObjective().draw(3, z_shape, torch.device("cpu")) == StepContext(3)


def test_forward_without_the_draws_is_refused_with_the_fix() -> None:
    for objective in _objectives():
        with pytest.raises(ValueError, match=r"objective\.draw\(step"):
            objective(torch.randn(2, 12, 16, dtype=torch.float64), StepContext(0))


def test_from_context_passes_dim_seed_predictor_and_token_layout() -> None:
    predictor = make_hamiltonian_predictor(16)
    ctx = BuildContext(dim=16, seed=7, token_channels=4, split_qp=True, predictor=predictor)
    ham = HamJEPAObjective.from_context(ctx, logdet_proj_dim=4)
    assert ham.predictor is predictor and ham.logdet_q.seed == 7 and ham.logdet_p.seed == 8
    assert HamJEPAObjective.from_context(ctx, seed=3).logdet_q.seed == 3  # the config wins
    mlp = MLPHJEPAObjective.from_context(BuildContext(dim=16, seed=7, predictor=make_mlp_predictor(16)))
    assert mlp.logdet_q.seed == 7 and mlp.logdet_p.seed == 8  # the run seed, as for HamJEPA
    assert LeJEPAObjective.from_context(ctx).sigreg.seed == 7
    assert VISRegObjective.from_context(ctx, seed=2).seed == 2
    ham_sig = HamSIGRegObjective.from_context(ctx, metric="grid")
    assert ham_sig.metric.dim == 16 and ham_sig.sigreg.seed == 7
    assert VICRegObjective.from_context(ctx, expander_widths=[8]).expander[0].in_features == 16
    bi = BiJEPAObjective.from_context(ctx)
    assert bi.embed_dim == 16
    assert BiJEPAObjective.from_context(ctx, embed_dim=6).embed_dim == 6


def test_predictors_and_predict() -> None:
    torch.manual_seed(0)
    predictor = make_hamiltonian_predictor(16)
    ham = HamJEPAObjective(predictor=predictor)
    assert ham.predictors() == {"predictor": predictor}
    z = torch.randn(3, 16)
    torch.testing.assert_close(ham.predict(z, -1), predictor(z, direction=-1))
    bi = BiJEPAObjective(6, alpha=0.5)
    assert list(bi.predictors()) == ["predictor_fwd", "predictor_bwd"]
    x = torch.randn(3, 6)
    torch.testing.assert_close(bi.predict(x, 1), bi.predictor_fwd(x))
    torch.testing.assert_close(bi.predict(x, -1), bi.predictor_bwd(x))
    assert list(BiJEPAObjective(6, alpha=1.0).predictors()) == ["predictor_fwd"]
    assert LeJEPAObjective().predictors() == {}
    with pytest.raises(NotImplementedError, match="LeJEPAObjective has no predictor"):
        LeJEPAObjective().predict(x)
