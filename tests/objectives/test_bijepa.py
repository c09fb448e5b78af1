"""BiJEPA objective and the EMA target-encoder update."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tests.objectives._objectives_testutils import at_step
from torch import nn

from hamjepa.models.ema import make_target_encoder, update_ema
from hamjepa.objectives.bijepa import BiJEPAObjective, norm_mode_settings
from hamjepa.objectives.registry import get_objective_class


def _small_encoder() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 6))


# ------------------------------------------------------------------------------------------------ EMA
def test_update_ema_averages_parameters_exactly() -> None:
    online = _small_encoder()
    target = make_target_encoder(online)
    before = [p.clone() for p in target.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    update_ema(target, online, 0.9)
    for t, b, o in zip(target.parameters(), before, online.parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o)
        assert not t.requires_grad


def test_update_ema_momentum_extremes() -> None:
    online = _small_encoder()
    target = make_target_encoder(online)
    start = [p.clone() for p in target.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.mul_(3.0).add_(1.0)
    update_ema(target, online, 1.0)
    for t, s in zip(target.parameters(), start, strict=True):
        torch.testing.assert_close(t, s)
    update_ema(target, online, 0.0)
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        torch.testing.assert_close(t, o)


def test_update_ema_buffers_copied_or_left() -> None:
    online = _small_encoder()
    target = make_target_encoder(online)
    online.train()
    online(torch.randn(16, 4) * 5 + 2)  # changes BatchNorm running statistics
    bn_online, bn_target = online[1], target[1]
    assert not torch.allclose(bn_online.running_mean, bn_target.running_mean)
    update_ema(target, online, 0.99, copy_buffers=False)
    assert torch.count_nonzero(bn_target.running_mean) == 0  # left as initialised
    update_ema(target, online, 0.99)
    torch.testing.assert_close(bn_target.running_mean, bn_online.running_mean)
    torch.testing.assert_close(bn_target.num_batches_tracked, bn_online.num_batches_tracked)


def test_update_ema_rejects_bad_momentum_and_mismatch() -> None:
    online = _small_encoder()
    with pytest.raises(ValueError, match="momentum"):
        update_ema(make_target_encoder(online), online, 1.5)
    with pytest.raises(ValueError, match="parameters"):
        update_ema(nn.Linear(4, 6), online, 0.9)


# --------------------------------------------------------------------------------------------- BiJEPA
def test_registered_and_needs_target() -> None:
    cls = get_objective_class("bijepa")
    assert cls is BiJEPAObjective
    assert cls.needs_target_encoder is True
    obj = BiJEPAObjective(6, momentum=0.97)
    assert obj.ema_momentum(0) == obj.ema_momentum(1000) == 0.97


def test_loss_is_weighted_sum_of_directions() -> None:
    torch.manual_seed(1)
    obj = BiJEPAObjective(6, alpha=0.3, hidden_dim=10)
    z, zt = torch.randn(2, 5, 6), torch.randn(2, 5, 6)
    out = at_step(obj, z, 0, zt)
    fwd = F.mse_loss(obj.predictor_fwd(z[0]), zt[1])
    bwd = F.mse_loss(obj.predictor_bwd(z[1]), zt[0])
    torch.testing.assert_close(out.loss, 0.3 * fwd + 0.7 * bwd)
    torch.testing.assert_close(out.terms["loss_fwd"], fwd.detach())
    torch.testing.assert_close(out.terms["loss_bwd"], bwd.detach())
    assert all(not t.requires_grad and t.ndim == 0 for t in out.terms.values())


def test_alpha_one_is_classic_jepa() -> None:
    obj = BiJEPAObjective(6, alpha=1.0, hidden_dim=10)
    assert obj.predictor_bwd is None
    z, zt = torch.randn(2, 5, 6), torch.randn(2, 5, 6)
    out = at_step(obj, z, 0, zt)
    torch.testing.assert_close(out.loss, F.mse_loss(obj.predictor_fwd(z[0]), zt[1]))
    with pytest.raises(ValueError, match="backward predictor"):
        obj.predict(z[0], -1)


def test_targets_are_stop_gradient() -> None:
    obj = BiJEPAObjective(6, alpha=0.5, hidden_dim=10)
    z = torch.randn(2, 5, 6, requires_grad=True)
    zt = torch.randn(2, 5, 6, requires_grad=True)
    at_step(obj, z, 0, zt).loss.backward()
    assert zt.grad is None
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_norm_modes() -> None:
    assert norm_mode_settings("expressive").layer_norm and norm_mode_settings("expressive").weight_decay == 1e-4
    assert norm_mode_settings("none") == norm_mode_settings("none").__class__(False, False, 0.0)
    assert norm_mode_settings("restrictive").unit_sphere
    assert not any(isinstance(m, nn.LayerNorm) for m in BiJEPAObjective(6, norm_mode="none").modules())
    assert any(isinstance(m, nn.LayerNorm) for m in BiJEPAObjective(6, norm_mode="expressive").modules())
    # Restrictive: embeddings live on the unit sphere, so the loss ignores their scale.
    obj = BiJEPAObjective(6, norm_mode="restrictive", hidden_dim=10)
    z, zt = torch.randn(2, 5, 6), torch.randn(2, 5, 6)
    torch.testing.assert_close(at_step(obj, z, 0, zt).loss, at_step(obj, 7.0 * z, 0, 0.2 * zt).loss)
    with pytest.raises(ValueError, match="norm_mode"):
        norm_mode_settings("layernorm")


def test_bad_inputs_raise() -> None:
    obj = BiJEPAObjective(6)
    with pytest.raises(ValueError, match="z_target"):
        at_step(obj, torch.randn(2, 3, 6), 0)
    with pytest.raises(ValueError, match="exactly 2 views"):
        at_step(obj, torch.randn(3, 3, 6), 0, torch.randn(3, 3, 6))
    with pytest.raises(ValueError, match="embed_dim"):
        at_step(obj, torch.randn(2, 3, 4), 0, torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="alpha"):
        BiJEPAObjective(6, alpha=1.5)
    with pytest.raises(ValueError, match="momentum"):
        BiJEPAObjective(6, momentum=1.0)


def _norm_growth(norm_mode: str) -> float:
    """Ratio of the late to the early online-embedding norm in a short BiJEPA sine run (single thread)."""
    from hamjepa.config import OptimConfig
    from hamjepa.sequences.benchmark import _sequence_batches, make_sequence_task
    from hamjepa.sequences.encoders import SequenceEncoder
    from hamjepa.sequences.train import train_pairs

    settings = norm_mode_settings(norm_mode)
    task = make_sequence_task("sine", 0)
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        encoder = SequenceEncoder(10, 64, 16, layer_norm=settings.layer_norm)
        objective = BiJEPAObjective(16, alpha=0.5, hidden_dim=64, norm_mode=norm_mode)  # type: ignore[arg-type]
        optim = OptimConfig(lr=1e-3, weight_decay=settings.weight_decay, warmup_epochs=0.0, min_lr_ratio=1.0)
        result = train_pairs(encoder, objective, _sequence_batches(task, 64), steps=300, optim=optim)
    finally:
        torch.set_num_threads(threads)
    norms = result.history["online_norm"]
    return float(norms[-20:].mean() / norms[40:60].mean())


def test_explosion_ablation_grows_embedding_norm() -> None:
    """Paper Sec. 3.3: without LayerNorm / weight decay the embedding norm keeps growing; with them not."""
    growth_none = _norm_growth("none")
    growth_expressive = _norm_growth("expressive")
    assert growth_none > 1.5
    assert growth_expressive < 1.2
