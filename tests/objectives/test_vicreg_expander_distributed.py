"""VICReg with its expander on two gloo CPU ranks in float64 equals one process on the concatenated batch.

The expander's BatchNorm layers go through the trainer's conversion
(:func:`hamjepa.engine.device.synchronise_batchnorm`, applied to the objective when ``model.sync_batchnorm``
is on): loss, terms, running statistics, the input gradient (``world_size x`` the single-process rows, the
convention of ``hamjepa.objectives.base``) and the rank-averaged parameter gradients (what DDP applies) equal
the single process's. Without the conversion each rank normalises with its own half batch and the loss moves.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from tests.objectives._objectives_testutils import at_step
from tests.ranks import run_on_ranks

from hamjepa.engine.device import synchronise_batchnorm
from hamjepa.engine.global_batchnorm import GlobalBatchNorm
from hamjepa.objectives import VICRegObjective

WORLD = 2
V, B, D = 2, 16, 6  # B = global batch; each rank holds B / WORLD = 8
WIDTHS = [12, 10, 8]
STEP = 3


def _fixed_batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(321)
    return torch.randn(V, B, D, generator=g, dtype=torch.float64) * torch.linspace(0.3, 1.5, D) + 0.1


def _objective() -> VICRegObjective:
    torch.manual_seed(7)
    return VICRegObjective(expander_widths=WIDTHS, dim=D).double()


def _compute(rank: int, world: int, *, convert: bool = True) -> dict[str, torch.Tensor]:
    """Loss, terms, input and parameter gradients and BatchNorm buffers of this rank's shard."""
    objective = _objective()
    keys = list(objective.state_dict())
    if world > 1 and convert:  # what the trainer does under DDP with model.sync_batchnorm (the default)
        objective = synchronise_batchnorm(objective, torch.device("cpu"))
        assert sum(isinstance(m, GlobalBatchNorm) for m in objective.modules()) == len(WIDTHS) - 1
        assert list(objective.state_dict()) == keys  # checkpoints keep their keys
    shard = B // world
    z = _fixed_batch()[:, rank * shard : (rank + 1) * shard].clone().requires_grad_(True)
    out = at_step(objective, z, STEP)
    out.loss.backward()
    results = {"loss": out.loss.detach(), "z.grad": z.grad.clone(), **out.terms}
    results.update({f"grad.{n}": p.grad.clone() for n, p in objective.named_parameters()})
    results.update({f"buffer.{n}": b.clone() for n, b in objective.named_buffers()})
    return results


@pytest.mark.slow
def test_expander_two_ranks_equal_one_process(tmp_path: Path) -> None:
    for sub in ("sync", "local"):
        (tmp_path / sub).mkdir()
    ranks = run_on_ranks(_compute, tmp_path / "sync", WORLD)
    single = _compute(0, 1)
    assert any(k.startswith("buffer.") and "running_var" in k for k in single)
    for res in ranks:
        assert res.keys() == single.keys()
        for key, ref in single.items():
            if key.startswith(("buffer.", "grad.")) or key == "z.grad":
                continue
            torch.testing.assert_close(res[key], ref, rtol=1e-12, atol=1e-12, msg=key)
        for key in (k for k in single if k.startswith("buffer.")):
            torch.testing.assert_close(res[key], single[key], rtol=1e-12, atol=1e-12, msg=key)
    z_grad = torch.cat([res["z.grad"] for res in ranks], dim=1) / WORLD
    assert single["z.grad"].abs().max() > 1e-3
    torch.testing.assert_close(z_grad, single["z.grad"], rtol=1e-12, atol=1e-12)
    for key in (k for k in single if k.startswith("grad.")):
        averaged = sum(res[key] for res in ranks) / WORLD  # DDP's gradient averaging
        torch.testing.assert_close(averaged, single[key], rtol=1e-10, atol=1e-12, msg=key)

    # Per-device BatchNorm (no conversion) is not the global-batch loss: the conversion is what makes it so.
    local = run_on_ranks(functools.partial(_compute, convert=False), tmp_path / "local", WORLD)
    assert not torch.allclose(local[0]["loss"], single["loss"], rtol=1e-3)
