"""``prepare_step`` + ``forward(z, step=None)`` (the compiled step's split) equals ``forward(z, step=step)``."""

from __future__ import annotations

import copy

import pytest
import torch
from tests.objectives._objectives_testutils import make_hamiltonian_predictor

from hamjepa.objectives.hamjepa import HamJEPAObjective
from hamjepa.objectives.lejepa import LeJEPAObjective


def _objectives() -> list[torch.nn.Module]:
    d = 16
    return [
        HamJEPAObjective(predictor=make_hamiltonian_predictor(d), logdet_proj_dim=6, logdet_refresh=2).double(),
        LeJEPAObjective(num_slices=8).double(),
    ]


@pytest.mark.parametrize("index", [0, 1], ids=["hamjepa", "lejepa"])
def test_prepared_forward_equals_forward_with_step_over_steps(index: int) -> None:
    eager = _objectives()[index]
    prepared = copy.deepcopy(eager)
    gen = torch.Generator().manual_seed(0)
    for step in range(5):  # crosses log-det projection refreshes (every 2 calls)
        z = torch.randn(2, 12, 16, generator=gen, dtype=torch.float64, requires_grad=True)
        want = eager(z, step=step)
        prepared.prepare_step(step, tuple(z.shape), z.device)
        got = prepared(z, step=None)
        assert got.loss.item() == want.loss.item()
        assert {k: v.item() for k, v in got.terms.items()} == {k: v.item() for k, v in want.terms.items()}
    assert eager.state_dict().keys() == prepared.state_dict().keys()
    for k, v in eager.state_dict().items():
        assert torch.equal(v, prepared.state_dict()[k]), k


def test_forward_without_prepare_step_is_refused() -> None:
    for objective in _objectives():
        with pytest.raises(ValueError, match="prepare"):
            objective(torch.randn(2, 12, 16, dtype=torch.float64), step=None)
