"""Two CPU ranks (gloo) reproduce the single-process loss and gradients on the concatenated batch.

Convention under test (see ``hamjepa.objectives.base``): every rank returns the global-batch loss;
its local gradients equal ``world_size *`` its share of the single-process gradient, so the DDP average
over ranks equals the single-process gradient.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tests.objectives._objectives_testutils import at_step, make_hamiltonian_predictor, sigreg_at
from tests.ranks import run_on_ranks

from hamjepa.objectives import (
    HamJEPAObjective,
    LeJEPAObjective,
    MeanPenalty,
    ProjectedLogDetFloor,
    ScaleBudget,
    SIGReg,
    VarianceFloor,
)

WORLD = 2
V, B, D = 2, 32, 16  # B = global batch; each rank holds B / WORLD = 16


def _fixed_batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(123)
    return torch.randn(V, B, D, generator=g) * torch.linspace(0.5, 1.5, D) + 0.1


def _compute(rank: int, world: int) -> dict[str, dict[str, object]]:
    """Loss, input gradient and (for HamJEPA) predictor gradients of every case on this rank's shard."""
    shard = B // world
    full = _fixed_batch()
    results: dict[str, dict[str, object]] = {}

    def run(name: str, loss_fn, module: torch.nn.Module | None = None) -> None:
        z = full[:, rank * shard : (rank + 1) * shard].clone().requires_grad_(True)
        loss = loss_fn(z)
        loss.backward()
        params = (
            {} if module is None else {k: p.grad.clone() for k, p in module.named_parameters() if p.grad is not None}
        )
        results[name] = {"loss": loss.detach(), "grad": z.grad.clone(), "params": params}

    def flat(z: torch.Tensor) -> torch.Tensor:
        return z.reshape(-1, D)

    run("budget", lambda z: ScaleBudget(1.0, 0.5)(flat(z)[:, :8], flat(z)[:, 8:]).loss)
    run("var", lambda z: VarianceFloor(1.2)(flat(z)).loss)
    run(
        "logdet",
        lambda z: ProjectedLogDetFloor(proj_dim=4, floor=1.0, pr_floor=0.99, eigmax_ceiling=0.05)(flat(z)).loss,
    )
    run("mean", lambda z: MeanPenalty()(flat(z)).loss)
    run("sigreg", lambda z: sigreg_at(SIGReg(num_slices=8), z, 3))
    run("lejepa", lambda z: at_step(LeJEPAObjective(), z, 3).loss)

    torch.manual_seed(0)
    objective = HamJEPAObjective(
        predictor=make_hamiltonian_predictor(D), logdet_proj_dim=4, logdet_floor=0.5, std_floor_q=1.2
    )
    terms: dict[str, torch.Tensor] = {}

    def hamjepa_loss(z: torch.Tensor) -> torch.Tensor:
        out = at_step(objective, z, 0)
        terms.update(out.terms)
        return out.loss

    run("hamjepa", hamjepa_loss, objective)
    results["hamjepa"]["terms"] = terms
    return results


def test_two_ranks_equal_single_process_loss_and_gradients(tmp_path: Path) -> None:
    ranks = run_on_ranks(_compute, tmp_path, WORLD)
    single = _compute(0, 1)

    for name, ref in single.items():
        assert ref["loss"] > 1e-4, f"{name}: case must be active to test anything"
        for res in ranks:
            torch.testing.assert_close(res[name]["loss"], ref["loss"], rtol=1e-5, atol=1e-5, msg=name)
        # local input gradients are world_size x the single-process rows of that rank
        grad = torch.cat([res[name]["grad"] for res in ranks], dim=1) / WORLD
        assert ref["grad"].abs().sum() > 0
        torch.testing.assert_close(grad, ref["grad"], rtol=1e-5, atol=1e-5, msg=name)
        # DDP averages parameter gradients over ranks -> equals the single-process gradient
        for key, ref_grad in ref["params"].items():
            ddp_avg = torch.stack([res[name]["params"][key] for res in ranks]).mean(0)
            torch.testing.assert_close(ddp_avg, ref_grad, rtol=1e-5, atol=1e-5, msg=f"{name}:{key}")

    assert len(single["hamjepa"]["params"]) > 0
    for key, value in single["hamjepa"]["terms"].items():
        for res in ranks:
            torch.testing.assert_close(res["hamjepa"]["terms"][key], value, rtol=1e-5, atol=1e-5, msg=key)
