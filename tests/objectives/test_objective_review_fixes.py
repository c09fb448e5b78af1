"""Regression tests from the independent spec review: low-precision inputs and host-sync-free steps."""

from __future__ import annotations

import pytest
import torch
from tests.objectives._objectives_testutils import at_step, make_hamiltonian_predictor

from hamjepa.objectives.bijepa import BiJEPAObjective
from hamjepa.objectives.hamjepa import HamJEPAObjective
from hamjepa.objectives.lejepa import LeJEPAObjective


def test_bijepa_accepts_bf16_embeddings_like_the_other_objectives() -> None:
    """The engine hands the objective bf16 encoder outputs (autocast, docs/spec.md §G.1); the loss is fp32."""
    torch.manual_seed(0)
    obj = BiJEPAObjective(6, hidden_dim=8)
    z = torch.randn(2, 5, 6)
    zt = torch.randn(2, 5, 6)
    ref = at_step(obj, z.bfloat16().float(), 0, zt.bfloat16().float())
    out = at_step(obj, z.bfloat16(), 0, zt.bfloat16())
    assert out.loss.dtype == torch.float32
    torch.testing.assert_close(out.loss, ref.loss)


def _forbid_host_to_device_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail on ``new_tensor`` / ``torch.tensor``: on CUDA each is a blocking host->device copy (a sync)."""

    def _forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("host->device tensor construction in the training step (use new_full/new_zeros)")

    monkeypatch.setattr(torch.Tensor, "new_tensor", _forbidden)
    monkeypatch.setattr(torch, "tensor", _forbidden)


@pytest.mark.parametrize("name", ["hamjepa", "lejepa"])
def test_objective_step_builds_no_tensors_from_host_values(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    z = torch.randn(2, 16, 8, requires_grad=True)
    if name == "hamjepa":
        obj = HamJEPAObjective(predictor=make_hamiltonian_predictor(8), logdet_proj_dim=4)
    else:
        obj = LeJEPAObjective(num_slices=4)
    _forbid_host_to_device_tensors(monkeypatch)
    out = at_step(obj, z, 3)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_bijepa_keeps_float64_embeddings_in_float64() -> None:
    """``train.precision=fp64`` builds fp64 predictors; casting z to fp32 made the matmul dtypes clash."""
    torch.manual_seed(0)
    obj = BiJEPAObjective(6, hidden_dim=8).double()
    z = torch.randn(2, 5, 6, dtype=torch.float64)
    zt = torch.randn(2, 5, 6, dtype=torch.float64)
    out = at_step(obj, z, 0, zt)
    assert out.loss.dtype == torch.float64
    expected = obj.alpha * torch.mean((obj.predictor_fwd(z[0]) - zt[1]) ** 2) + (1 - obj.alpha) * torch.mean(
        (obj.predictor_bwd(z[1]) - zt[0]) ** 2
    )
    torch.testing.assert_close(out.loss, expected)
