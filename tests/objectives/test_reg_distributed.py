"""VICReg and VISReg on two gloo CPU ranks in float64.

VICReg and VISReg ``ddp=global`` equal one process on the concatenated batch (loss; input gradients are
``world_size x`` the single-process rows, the convention of ``hamjepa.objectives.base``). VISReg
``ddp=per_device`` is each rank's own loss on its own batch with its own directions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.objectives._objectives_testutils import at_step
from tests.ranks import run_on_ranks

from hamjepa.objectives import VICRegObjective, VISRegObjective
from hamjepa.objectives.visreg import visreg_terms

WORLD = 2
V, B, D = 2, 16, 6  # B = global batch; each rank holds B / WORLD = 8
STEP = 3


def _fixed_batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(321)
    return torch.randn(V, B, D, generator=g, dtype=torch.float64) * torch.linspace(0.3, 1.5, D) + 0.1


def _objectives() -> dict[str, torch.nn.Module]:
    return {
        "vicreg": VICRegObjective(),
        "visreg_global": VISRegObjective(lam=0.6, num_slices=32),
        "visreg_per_device": VISRegObjective(lam=0.6, num_slices=32, ddp="per_device"),
    }


def _compute(rank: int, world: int) -> dict[str, dict[str, torch.Tensor]]:
    """Loss, terms, input gradient and (per_device) the directions of every case on this rank's shard."""
    shard = B // world
    results: dict[str, dict[str, torch.Tensor]] = {}
    for name, objective in _objectives().items():
        z = _fixed_batch()[:, rank * shard : (rank + 1) * shard].clone().requires_grad_(True)
        out = at_step(objective, z, STEP)
        out.loss.backward()
        results[name] = {"loss": out.loss.detach(), "grad": z.grad.clone(), **out.terms}
        if isinstance(objective, VISRegObjective):
            results[name]["directions"] = objective.draw_directions(STEP, D, torch.device("cpu"))
    return results


@pytest.mark.slow
def test_two_ranks_equal_one_process_and_per_device_is_local(tmp_path: Path) -> None:
    ranks = run_on_ranks(_compute, tmp_path, WORLD)
    single = _compute(0, 1)
    for name in ("vicreg", "visreg_global"):
        ref = single[name]
        for res in ranks:
            for key in ref:
                if key not in ("grad", "directions"):
                    torch.testing.assert_close(res[name][key], ref[key], rtol=1e-12, atol=1e-12, msg=f"{name}:{key}")
        grad = torch.cat([res[name]["grad"] for res in ranks], dim=1) / WORLD
        assert ref["grad"].abs().max() > 1e-3
        torch.testing.assert_close(grad, ref["grad"], rtol=1e-12, atol=1e-12, msg=name)

    # per_device: rank r's loss and gradient are the single-process loss of its shard with its own directions.
    per_device = [res["visreg_per_device"] for res in ranks]
    assert not torch.equal(per_device[0]["directions"], per_device[1]["directions"])
    assert torch.equal(per_device[0]["directions"], single["visreg_global"]["directions"])
    shard = B // WORLD
    objective = VISRegObjective(lam=0.6, num_slices=32)
    for rank, res in enumerate(per_device):
        z = _fixed_batch()[:, rank * shard : (rank + 1) * shard].clone().requires_grad_(True)
        loss = objective.combine(visreg_terms(z, res["directions"]))
        loss.backward()
        torch.testing.assert_close(res["loss"], loss.detach(), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(res["grad"], z.grad, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(per_device[0]["loss"], single["visreg_global"]["loss"])
