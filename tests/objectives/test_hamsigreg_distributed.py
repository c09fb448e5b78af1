"""HamSIGReg on two CPU ranks (gloo) equals the single process on the concatenated batch: the loss, the input
gradients (world_size x the rank's rows, see ``hamjepa.objectives.base``), and the H-optimiser's gradient and
step (the spectrum stays identical on every rank)."""

from __future__ import annotations

from pathlib import Path

import torch
from tests.objectives._objectives_testutils import at_step
from tests.ranks import run_on_ranks

from hamjepa.engine.auxiliary import AuxiliaryOptimizer
from hamjepa.objectives import HamSIGRegObjective

WORLD = 2
V, B, D = 2, 32, 32


def _batch(step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(7 + step)
    return torch.randn(V, B, D, generator=g) * torch.linspace(0.5, 2.0, D) + 0.1


def _compute(rank: int, world: int) -> dict[str, torch.Tensor]:
    shard = B // world
    obj = HamSIGRegObjective(
        D,
        metric="learnable",
        token_channels=2,
        split_qp=True,
        num_slices=8,
        num_bins=4,
        h_lr=0.05,
        alpha=3.0,
        init_span=0.05,  # not the flat start: a visible H-gradient
    )
    aux = AuxiliaryOptimizer(obj)  # the engine's H step
    out: dict[str, torch.Tensor] = {}
    for step in range(2):
        z = _batch(step)[:, rank * shard : (rank + 1) * shard].clone().requires_grad_(True)
        aux.step(z, step)  # step 0 and 1: an H-update, then the loss with the new spectrum
        res = at_step(obj, z, step)
        res.loss.backward()
        out[f"loss{step}"] = res.loss.detach()
        out[f"grad{step}"] = z.grad.clone()
        state = aux.optimizer.state
        out[f"h_grad_avg{step}"] = torch.cat([state[p]["exp_avg"].reshape(-1) for p in obj.metric.raw_parameters()])
        out[f"raw{step}"] = torch.cat([p.detach().reshape(-1) for p in obj.metric.raw_parameters()])
    return out


def test_two_ranks_equal_single_process(tmp_path: Path) -> None:
    ranks = run_on_ranks(_compute, tmp_path, WORLD)
    single = _compute(0, 1)
    for step in range(2):
        grad = torch.cat([r[f"grad{step}"] for r in ranks], dim=1) / WORLD
        assert single[f"grad{step}"].abs().sum() > 0
        torch.testing.assert_close(grad, single[f"grad{step}"], rtol=1e-5, atol=1e-6)
        assert single[f"h_grad_avg{step}"].abs().max() > 1e-4
        for r in ranks:
            torch.testing.assert_close(r[f"loss{step}"], single[f"loss{step}"], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(r[f"h_grad_avg{step}"], single[f"h_grad_avg{step}"], rtol=1e-4, atol=1e-7)
            torch.testing.assert_close(r[f"raw{step}"], single[f"raw{step}"], rtol=1e-5, atol=1e-6)
