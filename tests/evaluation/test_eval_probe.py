"""Linear probe: schedule, determinism, joint training and accuracy vs scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hamjepa.evaluation.linear_probe import ProbeConfig, train_linear_probes


def blobs(n: int, dim: int, classes: int, spread: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=torch.Generator().manual_seed(99)) * 3
    y = torch.arange(n) % classes
    return centers[y] + spread * torch.randn(n, dim, generator=g), y


def test_lr_schedule_is_per_step_cosine_to_zero_and_keeps_partial_batch() -> None:
    x, y = blobs(70, 6, 3, 0.5, 0)
    cfg = ProbeConfig(epochs=3, batch_size=16, lr=0.01)
    res = train_linear_probes({"z": x}, y, {"z": x}, y, 3, cfg)
    steps = 3 * math.ceil(70 / 16)  # 5 steps per epoch: the 6-sample partial batch is kept
    assert len(res.lr_trace) == steps == 15
    expected = 0.01 * 0.5 * (1 + np.cos(np.pi * np.arange(steps) / steps))
    np.testing.assert_allclose(res.lr_trace, expected, rtol=1e-12)
    assert res.lr_trace[0] == 0.01
    assert 0 < res.lr_trace[-1] < 0.01 * (np.pi / steps) ** 2  # next value (step = total) would be 0


def test_seeded_probe_is_deterministic_and_seed_matters() -> None:
    x, y = blobs(64, 8, 4, 2.0, 1)
    xt, yt = blobs(32, 8, 4, 2.0, 2)
    cfg = ProbeConfig(epochs=2, batch_size=16)
    a = train_linear_probes({"z": x}, y, {"z": xt}, yt, 4, cfg)
    b = train_linear_probes({"z": x}, y, {"z": xt}, yt, 4, cfg)
    c = train_linear_probes({"z": x}, y, {"z": xt}, yt, 4, ProbeConfig(epochs=2, batch_size=16, seed=1))
    assert a.final_train_loss == b.final_train_loss and a.top1 == b.top1
    assert a.final_train_loss != c.final_train_loss


def test_probe_matches_sklearn_logistic_regression_on_separable_blobs() -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = blobs(240, 10, 4, 0.6, 3)
    xt, yt = blobs(120, 10, 4, 0.6, 4)
    ref = LogisticRegression(max_iter=500).fit(x.numpy(), y.numpy()).score(xt.numpy(), yt.numpy())
    res = train_linear_probes(
        {"a": x, "b": x[:, :5]}, y, {"a": xt, "b": xt[:, :5]}, yt, 4, ProbeConfig(epochs=30, batch_size=32)
    )
    assert ref == 1.0  # the blobs are linearly separable
    assert res.top1["a"] == ref
    assert res.top5["a"] == 1.0  # 4 classes: top-5 covers every class
    assert 0.0 <= res.top1["b"] <= 1.0


def test_joint_heads_train_exactly_as_alone() -> None:
    """Disjoint parameters, a summed loss, per-head init and shared shuffles: a head's result does not
    depend on the heads trained beside it."""
    x, y = blobs(48, 6, 3, 1.5, 5)
    xt, yt = blobs(30, 6, 3, 1.5, 6)
    cfg = ProbeConfig(epochs=2, batch_size=16)
    alone = train_linear_probes({"q": x}, y, {"q": xt}, yt, 3, cfg)
    together = train_linear_probes({"p": x[:, :4], "q": x}, y, {"p": xt[:, :4], "q": xt}, yt, 3, cfg)
    assert together.final_train_loss["q"] == alone.final_train_loss["q"]
    assert together.top1["q"] == alone.top1["q"]
    assert together.final_train_loss["p"] != alone.final_train_loss["q"]


def test_probe_errors() -> None:
    x, y = blobs(8, 4, 2, 1.0, 0)
    with pytest.raises(ValueError, match="same non-empty set"):
        train_linear_probes({"q": x}, y, {"p": x}, y, 2)
    with pytest.raises(ValueError, match="epochs"):
        ProbeConfig(epochs=0)
