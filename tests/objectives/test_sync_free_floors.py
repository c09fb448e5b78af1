"""Sync-free spectral floors (issue 11, part 2): Cholesky log-det, trace PR, power-iterated lambda_max.

Checked against the eigen-decomposition on real CIFAR-100 embeddings in float64, against the exact
(slogdet + eigvalsh) path in values and gradients, and for the absence of host synchronisation.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.objectives._objectives_testutils import at_step, make_hamiltonian_predictor
from torch import Tensor
from torch.profiler import ProfilerActivity, profile

from hamjepa.objectives.floors import ProjectedLogDetFloor
from hamjepa.objectives.hamjepa import HamJEPAObjective

SYNC_OPS = {"aten::item", "aten::_local_scalar_dense"}
ACTIVE = {"floor": 0.0, "pr_floor": 1.0, "eigmax_ceiling": 0.01}  # every hinge active: all three gradients


def _rel(got: Tensor, expected: Tensor) -> float:
    got, expected = got.detach(), expected.detach()
    return float((got - expected).abs().max() / expected.abs().max())


@pytest.fixture(scope="module")
def cifar_embeddings(cifar100_npz: Path) -> Tensor:
    """130 real CIFAR-100 training images through a seeded paper encoder: ``[130, 2048]`` float64."""
    from hamjepa.models import TokenEncoder

    with np.load(cifar100_npz) as archive:
        images = torch.from_numpy(archive["x_train"][:130]).permute(0, 3, 1, 2).float() / 255.0
    images = (images - images.mean((0, 2, 3), keepdim=True)) / images.std((0, 2, 3), keepdim=True)
    torch.manual_seed(0)
    encoder = TokenEncoder().eval()
    with torch.no_grad():
        return encoder(images).double()


def _pair(**kwargs: object) -> tuple[ProjectedLogDetFloor, ProjectedLogDetFloor]:
    settings = {"proj_dim": 128, "seed": 3, **ACTIVE, **kwargs}
    fast = ProjectedLogDetFloor(method="sync_free", **settings).double()  # type: ignore[arg-type]
    exact = ProjectedLogDetFloor(method="exact", **settings).double()  # type: ignore[arg-type]
    return fast, exact


def _covariance(module: ProjectedLogDetFloor, x: Tensor) -> Tensor:
    """The ridge-regularised projected covariance the module saw (recomputed here independently)."""
    proj = module.projection
    assert proj is not None
    y = (x - x.mean(0)) @ proj.to(x.dtype)
    cov = y.T @ y / (x.shape[0] - 1)
    return 0.5 * (cov + cov.T) + module.eps * torch.eye(cov.shape[0], dtype=x.dtype)


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("half", ["q", "p"])
def test_sync_free_statistics_match_the_eigendecomposition_on_cifar(cifar_embeddings: Tensor, half: str) -> None:
    d = cifar_embeddings.shape[1] // 2
    x = cifar_embeddings[:, :d] if half == "q" else cifar_embeddings[:, d:]
    fast, exact = _pair()
    grads = []
    outs = []
    for module in (fast, exact):
        x_in = x.clone().requires_grad_(True)
        out = module(x_in)
        out.loss.backward()
        outs.append(out)
        grads.append(x_in.grad)
    eig = torch.linalg.eigvalsh(_covariance(fast, x))
    k = eig.numel()
    assert k == 128
    logdet, pr, eigmax = eig.log().sum() / k, eig.sum() ** 2 / (eig.square().sum() + 1e-12) / k, eig[-1] / eig.sum()
    out = outs[0]
    assert out.cholesky_info is not None and int(out.cholesky_info) == 0
    assert _rel(out.logdet, logdet) < 1e-10
    assert _rel(out.pr_norm, pr) < 1e-10
    assert _rel(out.eigmax, eigmax) < 1e-4  # first call: a cold start from the all-ones vector
    for name in ("logdet", "pr_norm", "eigmax", "loss"):
        assert _rel(getattr(out, name), getattr(outs[1], name)) < 1e-10, name
    # Gradients of the whole floor (log-det, PR and eigmax hinges all active) agree with the exact path.
    assert _rel(grads[0], grads[1]) < 1e-8


def test_gradients_match_the_exact_path_on_a_gapped_spectrum() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 24, generator=g, dtype=torch.float64) * torch.linspace(0.1, 3.0, 24, dtype=torch.float64)
    fast, exact = _pair(proj_dim=16)
    grads = []
    for module in (fast, exact):
        x_in = x.clone().requires_grad_(True)
        module(x_in).loss.backward()
        grads.append(x_in.grad)
    assert grads[1].abs().max() > 0
    assert _rel(grads[0], grads[1]) < 1e-8


def test_power_iteration_state_is_saved_restored_and_deterministic() -> None:
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(40, 12, generator=g, dtype=torch.float64) for _ in range(4)]
    module = ProjectedLogDetFloor(proj_dim=8, refresh_interval=2, **ACTIVE).double()
    assert torch.equal(module.top_vector, torch.ones(8, dtype=torch.float64))
    twin = copy.deepcopy(module)  # another "rank": same init, same (all-reduced) statistics
    for x in xs[:2]:
        module(x)
        twin(x)
    assert torch.equal(module.top_vector, twin.top_vector)
    assert not torch.equal(module.top_vector, torch.ones(8, dtype=torch.float64))
    state = copy.deepcopy(module.state_dict())
    assert "top_vector" in state
    expected = [module(x) for x in xs[2:]]
    resumed = ProjectedLogDetFloor(proj_dim=8, refresh_interval=2, **ACTIVE).double()
    resumed.load_state_dict(state)
    for x, want in zip(xs[2:], expected, strict=True):
        got = resumed(x)
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    # A checkpoint written before the buffer existed still loads (the cold-start vector is used).
    old = {k: v for k, v in state.items() if k != "top_vector"}
    ProjectedLogDetFloor(proj_dim=8, **ACTIVE).load_state_dict(old)


def test_cholesky_status_is_a_device_tensor_reporting_failure() -> None:
    module = ProjectedLogDetFloor(proj_dim=4)
    good = module(torch.randn(20, 6))
    assert isinstance(good.cholesky_info, Tensor) and int(good.cholesky_info) == 0
    bad = module(torch.full((20, 6), float("nan")))
    assert bad.cholesky_info is not None and int(bad.cholesky_info) > 0
    assert ProjectedLogDetFloor(proj_dim=4, method="exact")(torch.randn(20, 6)).cholesky_info is None
    with pytest.raises(ValueError, match="method must be one of"):
        ProjectedLogDetFloor(method="eigh")  # type: ignore[arg-type]


def _sync_ops(objective: HamJEPAObjective, z: Tensor) -> set[str]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        at_step(objective, z, 0).loss.backward()
    return {e.name for e in prof.events()} & SYNC_OPS


def test_objective_forward_backward_runs_no_host_sync() -> None:
    torch.manual_seed(0)
    z = torch.randn(2, 24, 16, requires_grad=True)
    kwargs = {"logdet_proj_dim": 6}
    fast = HamJEPAObjective(predictor=make_hamiltonian_predictor(16), **kwargs)
    fast.on_epoch_start(1)
    at_step(fast, z, 0)  # the first call draws the projection (host-side QR on CPU, by design)
    assert _sync_ops(fast, z) == set()
    exact = HamJEPAObjective(predictor=make_hamiltonian_predictor(16), logdet_method="exact", **kwargs)
    at_step(exact, z, 0)
    assert _sync_ops(exact, z) == SYNC_OPS  # eigvalsh checks its status: the reason for the fast path


def test_objective_values_and_gradients_match_the_exact_path_in_float64() -> None:
    torch.manual_seed(0)
    z = torch.randn(2, 40, 16, dtype=torch.float64) * torch.linspace(0.2, 2.0, 16, dtype=torch.float64)
    results = []
    for method in ("sync_free", "exact"):
        torch.manual_seed(1)
        objective = HamJEPAObjective(
            predictor=make_hamiltonian_predictor(16, residual_scale=0.5),
            logdet_proj_dim=6,
            logdet_method=method,  # type: ignore[arg-type]
            logdet_floor=1.0,
            pr_floor_q=1.0,
            pr_floor_p=1.0,
            eigmax_ceiling_q=0.01,
            eigmax_ceiling_p=0.01,
        ).double()
        objective.on_epoch_start(1)
        z_in = z.clone().requires_grad_(True)
        out = at_step(objective, z_in, 0)
        out.loss.backward()
        results.append((out, z_in.grad, [p.grad for p in objective.parameters()]))
    (fast, fast_gz, fast_gp), (exact, exact_gz, exact_gp) = results
    for name in ("total", "logdet", "pr_q", "pr_p", "logdet_q", "logdet_p", "eigmax_q", "eigmax_p"):
        assert _rel(fast.terms[name], exact.terms[name]) < 1e-10, name
    assert exact.terms["logdet"] > 0  # the floors are active, so their gradients are compared below
    assert _rel(fast_gz, exact_gz) < 1e-8
    for a, b in zip(fast_gp, exact_gp, strict=True):
        assert (a is None) == (b is None)
        if a is not None and b.abs().max() > 0:
            assert _rel(a, b) < 1e-8


@pytest.mark.slow
def test_objective_fast_path_traces_as_one_graph() -> None:
    """Dynamo captures the whole objective (analytic force + sync-free floors) without a graph break."""
    torch.manual_seed(0)
    objective = HamJEPAObjective(predictor=make_hamiltonian_predictor(16), logdet_proj_dim=4)
    objective.on_epoch_start(1)
    z = torch.randn(2, 12, 16, requires_grad=True)
    at_step(objective, z, 0)  # draws the projection (host-side, outside the captured step)
    eager = at_step(objective, z, 1).loss
    twin = copy.deepcopy(objective)
    ctx = twin.draw(2, tuple(z.shape), z.device)  # host side, outside the graph; the draws go in as inputs
    compiled = torch.compile(lambda x, c: twin(x, c).loss, backend="aot_eager", fullgraph=True)
    got = compiled(z, ctx)
    got.backward()
    torch.testing.assert_close(got.detach(), at_step(objective, z, 2).loss.detach(), rtol=1e-5, atol=1e-6)
    assert z.grad is not None and torch.isfinite(z.grad).all()
    assert torch.isfinite(eager)


def test_a_non_finite_batch_leaves_the_warm_start_and_later_losses_finite() -> None:
    """One NaN batch (a step the AMP scaler would skip) must not poison the power-iteration warm start."""
    module = ProjectedLogDetFloor(method="sync_free", proj_dim=8, seed=3, **ACTIVE).double()
    g = torch.Generator().manual_seed(0)
    clean = torch.randn(64, 16, generator=g, dtype=torch.float64) * torch.linspace(0.5, 2.0, 16, dtype=torch.float64)
    module(clean)
    before = module.top_vector.clone()
    bad = clean.clone()
    bad[3, 5] = float("nan")
    assert not torch.isfinite(module(bad).loss)
    torch.testing.assert_close(module.top_vector, before, rtol=0, atol=0)
    assert torch.isfinite(module(clean).loss)


def test_changing_a_floor_after_construction_changes_the_loss() -> None:
    module = ProjectedLogDetFloor(method="sync_free", proj_dim=8, seed=3, **ACTIVE).double()
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    projection = module.draw(16, 64, x.device)
    low = module(x, projection=projection).loss
    module.floor = 5.0  # a higher log-det floor: the hinge grows
    assert module(x, projection=projection).loss > low
