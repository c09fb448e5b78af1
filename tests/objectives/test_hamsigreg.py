"""HamSIGReg (docs/spec.md §E.4): the metric square roots against dense float64 matrices, the learnable spectrum,
and its H step as the engine runs it (:class:`~hamjepa.engine.auxiliary.AuxiliaryOptimizer`): interval, modes,
clipping and exact resume."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from tests.objectives._objectives_testutils import at_step

from hamjepa.engine.auxiliary import AuxiliaryOptimizer
from hamjepa.objectives import HamMetric, HamSIGRegObjective, LeJEPAObjective, get_objective_class
from hamjepa.objectives.ham_metric import TokenLayout


# ----------------------------------------------------------------------------- dense float64 references
def _sqrtm(h: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(h)
    assert w.min() > 0
    return (v * np.sqrt(w)) @ v.T


def _gauge(h: np.ndarray, gauge: str) -> np.ndarray:
    eig = np.linalg.eigvalsh(h)
    return h / (np.exp(np.mean(np.log(eig))) if gauge == "logdet" else np.mean(eig))


def _cycle_laplacian(n: int) -> np.ndarray:
    shift = np.roll(np.eye(n), 1, axis=1)
    return 2.0 * np.eye(n) - shift - shift.T


def _blend(h0: np.ndarray, beta: float) -> np.ndarray:
    return (1.0 - beta) * np.eye(h0.shape[0]) + beta * h0


def _per_channel(h_grid: np.ndarray, blocks: int, channels: int) -> np.ndarray:
    """The grid operator acting on every (block, channel) slice of the [G, h, w, c] layout."""
    return np.kron(np.eye(blocks), np.kron(h_grid, np.eye(channels)))


def _dft2(side: int) -> np.ndarray:
    k = np.arange(side)
    f = np.exp(-2j * np.pi * np.outer(k, k) / side) / np.sqrt(side)
    return np.kron(f, f)


def _apply(metric: HamMetric, z: np.ndarray) -> np.ndarray:
    return metric.apply_sqrt(torch.from_numpy(z)).numpy()


RNG = np.random.default_rng(0)


@pytest.mark.parametrize("gauge", ["logdet", "trace"])
def test_diag_and_chain_equal_dense_square_roots(gauge: str) -> None:
    dim, beta, kappa, eps = 12, 0.7, 1.3, 0.05
    z = RNG.standard_normal((5, dim))
    diag = HamMetric(dim, "diag", beta=beta, gauge=gauge).double()
    h = _gauge(_blend(np.diag(np.linspace(1.0, 2.0, dim)), beta), gauge)
    np.testing.assert_allclose(_apply(diag, z), z @ _sqrtm(h), rtol=1e-12, atol=1e-12)
    for d in (dim, 11):  # even and odd lengths of the real FFT
        zz = RNG.standard_normal((5, d))
        chain = HamMetric(d, "chain", kappa=kappa, eps=eps, beta=beta, gauge=gauge).double()
        h = _gauge(_blend(kappa * _cycle_laplacian(d) + eps * np.eye(d), beta), gauge)
        np.testing.assert_allclose(_apply(chain, zz), zz @ _sqrtm(h), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("split_qp", "channels", "gauge"), [(False, 3, "logdet"), (True, 4, "trace"), (True, 2, "logdet")]
)
def test_grid_laplacian_equals_dense_square_root(split_qp: bool, channels: int, gauge: str) -> None:
    side, beta, kappa, eps = 4, 0.8, 0.9, 0.02
    dim = side * side * channels
    metric = HamMetric(
        dim, "grid", token_channels=channels, split_qp=split_qp, kappa=kappa, eps=eps, beta=beta, gauge=gauge
    ).double()
    lap = np.kron(_cycle_laplacian(side), np.eye(side)) + np.kron(np.eye(side), _cycle_laplacian(side))
    h_grid = _gauge(_blend(kappa * lap + eps * np.eye(side * side), beta), gauge)
    blocks = 2 if split_qp else 1
    dense = _per_channel(_sqrtm(h_grid), blocks, channels // blocks)
    z = RNG.standard_normal((6, dim))
    np.testing.assert_allclose(_apply(metric, z), z @ dense, rtol=1e-12, atol=1e-12)


def test_grid_layout_matches_the_token_flatten() -> None:
    """``to_grid`` recovers ``[G, h, w, c]`` token slices from both flatten layouts of the encoder."""
    from hamjepa.models.phase_space import flatten_tokens

    tokens = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    for split in (False, True):
        layout = TokenLayout(36, 4, split)
        z = flatten_tokens(tokens, split_qp=split)
        grid = layout.to_grid(z)  # [N, G, h, w, c]
        channels_last = torch.cat(list(grid.unbind(1)), dim=-1)  # [N, h, w, C]
        assert torch.equal(channels_last.permute(0, 3, 1, 2), tokens)
        assert torch.equal(layout.from_grid(grid), z)


def _random_raw(metric: HamMetric, seed: int, scale: float = 3.0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in metric.raw_parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def test_learnable_spectrum_dense_square_root() -> None:
    """``H = U diag(lambda) U^T`` with ``U`` the 2-D Fourier basis, applied per channel (the spectrum's formula is
    checked in ``test_hamsigreg_reference.py``)."""
    side, channels = 4, 2
    metric = HamMetric(
        side * side * channels, "learnable", token_channels=channels, beta=0.6, alpha=2.0, num_bins=5
    ).double()
    _random_raw(metric, 1)
    log_lam = metric.log_spectrum().numpy()
    u = _dft2(side)
    h_grid = (u.conj().T @ np.diag(np.exp(log_lam).reshape(-1)) @ u).real
    z = RNG.standard_normal((4, side * side * channels))
    np.testing.assert_allclose(_apply(metric, z), z @ _per_channel(_sqrtm(h_grid), 1, channels), atol=1e-12)


@pytest.mark.parametrize("gauge", ["logdet", "trace"])
def test_learnable_profile_monotone_bounded_gauged_under_random_raw(gauge: str) -> None:
    metric = HamMetric(64, "learnable", token_channels=4, beta=0.5, alpha=5.0, gauge=gauge).double()
    clipped = HamMetric(64, "learnable", token_channels=4, beta=1.0, alpha=5.0, gauge=gauge).double()
    for seed in range(20):
        _random_raw(metric, seed, scale=4.0)
        g = metric.profile()
        assert g[0] == 0.0
        assert bool((g[1:] - g[:-1] >= 0).all())
        assert float(g[-1]) <= 0.1 + 1e-15 and float(g[-1]) > 0
        log_lam = metric.log_spectrum()
        if gauge == "logdet":
            assert abs(float(log_lam.mean())) < 1e-12
        else:
            assert abs(float(log_lam.exp().mean()) - 1.0) < 1e-12
        _random_raw(clipped, seed, scale=4.0)
        log_clipped = clipped.log_spectrum()  # clipped, then gauged again (docs/spec.md §E.4.1): still exactly gauged
        if gauge == "logdet":
            assert abs(float(log_clipped.mean())) < 1e-12
        else:
            assert abs(float(log_clipped.exp().mean()) - 1.0) < 1e-12


def test_identity_metric_equals_sigreg_exactly() -> None:
    z = torch.randn(2, 24, 16)
    z1, z2 = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    ham = HamSIGRegObjective(16, metric="identity", num_slices=8)
    ref = LeJEPAObjective(num_slices=8)
    out, out_ref = at_step(ham, z1, 5), at_step(ref, z2, 5)
    assert torch.equal(out.loss, out_ref.loss)
    assert torch.equal(out.terms["sigreg"], out_ref.terms["sigreg"])
    out.loss.backward()
    out_ref.loss.backward()
    assert torch.equal(z1.grad, z2.grad)
    assert ham.auxiliary_groups() == [] and list(ham.parameters()) == []
    assert not AuxiliaryOptimizer(ham).active


def test_sigreg_is_taken_in_ham_coordinates() -> None:
    z = torch.randn(2, 32, 32)
    obj = HamSIGRegObjective(32, metric="chain", num_slices=8)
    ref = LeJEPAObjective(num_slices=8)
    assert torch.equal(at_step(obj, z, 2).terms["sigreg"], at_step(ref, obj.ham_coordinates(z), 2).terms["sigreg"])
    assert torch.equal(obj.feature_readouts()["ham"](z[0]), obj.metric.apply_sqrt(z[0]))


def _learnable(**kw) -> HamSIGRegObjective:
    # span 0.05 at the start (not the reference's flat start, where the H-gradient is ~1e-9): the mechanics show
    base = {"metric": "learnable", "token_channels": 2, "num_slices": 8, "num_bins": 4, "h_lr": 0.05, "init_span": 0.05}
    return HamSIGRegObjective(32, **{**base, **kw})


def _batch(step: int) -> torch.Tensor:
    return torch.randn(2, 16, 32, generator=torch.Generator().manual_seed(100 + step)) * 1.5


def test_raw_spectrum_is_not_trained_by_the_returned_loss() -> None:
    obj = _learnable()
    assert obj.metric.raw_parameters() and all(not p.requires_grad for p in obj.metric.raw_parameters())
    assert [p for p in obj.parameters() if p.requires_grad] == []  # nothing for the engine's AdamW
    z = _batch(0).requires_grad_(True)
    at_step(obj, z, 0).loss.backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert all(p.grad is None for p in obj.metric.raw_parameters())


def _train_steps(obj: HamSIGRegObjective, aux: AuxiliaryOptimizer, steps: range) -> list[torch.Tensor]:
    """The engine's order of training calls (docs/spec.md §E.4.1): the loss, then the H step on the batch."""
    losses = []
    for step in steps:
        z = _batch(step)
        losses.append(at_step(obj, z, step).loss)
        aux.step(z, step)
    return losses


def test_the_engine_steps_the_spectrum_only_at_its_interval() -> None:
    obj = _learnable(h_update_interval=3)
    aux = AuxiliaryOptimizer(obj)
    (group,) = aux.optimizer.param_groups
    assert group["name"] == "metric" and group["lr"] == 0.05 and group["weight_decay"] == 0.0
    assert [id(p) for p in group["params"]] == [id(p) for p in obj.metric.raw_parameters()]
    before = [p.clone() for p in obj.metric.raw_parameters()]
    changed = []
    for step in range(8):
        _train_steps(obj, aux, range(step, step + 1))
        now = [p.clone() for p in obj.metric.raw_parameters()]
        changed.append(any(not torch.equal(a, b) for a, b in zip(before, now, strict=True)))
        before = now
    assert changed == [s % 3 == 0 for s in range(8)]
    assert all(not p.requires_grad and p.grad is None for p in obj.metric.raw_parameters())
    state = aux.state_dict()["state"]
    assert [float(state[i]["step"]) for i in (0, 1)] == [3.0, 3.0]


def test_h_mode_min_descends_and_max_ascends_sigreg() -> None:
    z = _batch(0)
    sig = {}
    for mode in ("min", "max"):
        obj = _learnable(h_mode=mode, smooth_weight=0.0, delta_weight=0.0, h_lr=0.05)
        before = float(obj.spectrum_objective(z, 0, obj.metric.raw_parameters()))
        assert AuxiliaryOptimizer(obj).step(z, 0)
        sig[mode] = (before, float(obj.spectrum_objective(z, 0, obj.metric.raw_parameters())))
    assert sig["min"][1] < sig["min"][0]
    # in max mode the objective is -lambda*SIGReg: it decreases, i.e. SIGReg increases
    assert sig["max"][1] < sig["max"][0]
    assert sig["max"][0] == pytest.approx(-sig["min"][0])


def test_h_grad_clip_bounds_the_update() -> None:
    z = _batch(0)
    obj = _learnable(h_grad_clip=1e-6, h_lr=1e-3)
    leaves = [p.detach().clone().requires_grad_(True) for p in obj.metric.raw_parameters()]
    grads = torch.autograd.grad(obj.spectrum_objective(z, 0, leaves), leaves)
    assert torch.cat([g.reshape(-1) for g in grads]).norm() > 1e-4
    aux = AuxiliaryOptimizer(obj)
    aux.step(z, 0)
    state = aux.optimizer.state
    moments = torch.cat([state[p]["exp_avg"].reshape(-1) for p in obj.metric.raw_parameters()])
    assert float(moments.norm()) <= 0.1 * 1e-6 * (1 + 1e-5)  # (1 - beta1) * clipped gradient


def _roundtrip(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_h_optimizer_state_resumes_exactly() -> None:
    a = _learnable(h_update_interval=2)
    aux_a = AuxiliaryOptimizer(a)
    _train_steps(a, aux_a, range(5))
    saved, saved_aux = _roundtrip(a.state_dict()), _roundtrip(aux_a.state_dict())
    b = _learnable(h_update_interval=2)
    b.load_state_dict(saved)
    aux_b = AuxiliaryOptimizer(b)
    aux_b.load_state_dict(saved_aux)
    stale = _learnable(h_update_interval=2)  # same spectrum, fresh AdamW moments
    stale.load_state_dict(saved)
    aux_stale = AuxiliaryOptimizer(stale)
    for la, lb in zip(_train_steps(a, aux_a, range(5, 9)), _train_steps(b, aux_b, range(5, 9)), strict=True):
        assert torch.equal(la, lb)
    _train_steps(stale, aux_stale, range(5, 9))
    for pa, pb, ps in zip(
        a.metric.raw_parameters(), b.metric.raw_parameters(), stale.metric.raw_parameters(), strict=True
    ):
        assert torch.equal(pa, pb)
        assert not torch.equal(pa, ps)  # the moments matter: resuming them is tested, not vacuous


def test_epoch_ramps_of_alpha_and_beta() -> None:
    obj = _learnable(alpha=2.0, beta=0.8, alpha_ramp_epochs=4, beta_ramp_epochs=2)
    assert obj.current_alpha_beta() == (2.0, 0.8)
    obj.on_epoch_start(1)
    assert obj.current_alpha_beta() == pytest.approx((0.5, 0.4))
    obj.on_epoch_start(3)
    assert obj.current_alpha_beta() == pytest.approx((1.5, 0.8))
    ramped = obj.log_spectrum()
    assert torch.equal(ramped, obj.metric.log_spectrum(alpha=1.5, beta=0.8))
    assert not torch.equal(ramped, obj.metric.log_spectrum())
    loaded = _learnable(alpha=2.0, beta=0.8, alpha_ramp_epochs=4, beta_ramp_epochs=2)
    loaded.load_state_dict(_roundtrip(obj.state_dict()))  # e.g. load_run for the "ham" eval readout
    assert loaded.epoch == 3 and torch.equal(loaded.log_spectrum(), ramped)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"metric": "grid"}, "token_channels"),
        ({"metric": "grid", "token_channels": 3}, "square token grid"),
        ({"metric": "nope"}, "metric kind"),
        ({"gauge": "det"}, "gauge"),
        ({"h_mode": "up"}, "h_mode"),
        ({"h_update_interval": 0}, "h_update_interval"),
        ({"beta": 1.5}, "beta"),
        ({"metric": "diag", "cond_max": 0.5}, "cond_max"),
    ],
)
def test_bad_settings_are_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HamSIGRegObjective(32, **kwargs)


def test_registered_and_config_builds_the_token_layout() -> None:
    from pathlib import Path

    from hamjepa.components import load_config
    from hamjepa.engine.build import build_model

    assert get_objective_class("hamsigreg") is HamSIGRegObjective
    cfg = load_config(Path(__file__).parents[2] / "configs" / "cifar100_hamsigreg.yaml")
    _, obj = build_model(cfg)
    assert isinstance(obj, HamSIGRegObjective)
    layout = obj.metric.layout
    assert layout is not None and (layout.blocks, layout.side, layout.channels) == (1, 8, 32)
    assert math.isfinite(float(obj.log_spectrum().sum()))
