"""Evaluation protocols of the BiJEPA paper (``bijepa_lejepa.md`` Sec. 1.2), on frozen networks.

Sequences (1-step-ahead forecasting of the first target step):

* **Protocol A, encoder probe**: a linear layer on ``f(x)`` (context embedding) -> value at ``split``.
* **Protocol B, predictor probe**: a linear layer on ``P_fwd(f(x))`` -> the same target.

Probes: full-batch Adam, lr 0.01, MSE; 100 epochs (sine) / 200 (Lorenz) on the probe set. The paper reports
the probe's **training** MSE at the last epoch (``train_mse``); we also report the MSE of the trained probe
on an independent held-out set (``heldout_mse``).

Image halves:

* **Linear probe**: Linear(D -> classes) on frozen left-half features, cross-entropy, Adam lr 1e-2,
  10 epochs (mini-batches of 256); training and test accuracy.
* **Decoder probe**: MLP ``D -> 256 (BN, ReLU) -> 512 (BN, ReLU) -> 392 -> sigmoid`` from frozen left-half
  features to right-half pixels in ``[0, 1]`` (28 x 14), MSE, Adam lr 1e-3, 10 epochs; the last-epoch
  average training MSE (paper) and the test MSE.

Probe initialisation uses a local :class:`torch.Generator` (seeded), so results do not depend on the
global RNG state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hamjepa.dynamics.mlp import build_mlp

__all__ = [
    "ProbeOutcome",
    "decoder_probe",
    "embed_frozen",
    "linear_classification_probe",
    "linear_regression_probe",
]


@dataclass(frozen=True)
class ProbeOutcome:
    """Training error (the paper's number) and held-out error of one probe.

    ``predictions`` holds the trained probe's outputs on the optional ``extra_x`` input (for plots).
    """

    train: float
    heldout: float
    predictions: Tensor | None = None


@torch.no_grad()
def embed_frozen(fn: Callable[[Tensor], Tensor], x: Tensor, *, batch_size: int = 4096) -> Tensor:
    """Apply a frozen network ``fn`` to ``x [N, ...]`` in batches; returns ``[N, D]`` (detached, float32)."""
    outs = [fn(x[i : i + batch_size]).float() for i in range(0, x.shape[0], batch_size)]
    return torch.cat(outs)


def _seeded_(module: nn.Module, seed: int) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear):
                bound = 1.0 / m.in_features**0.5  # PyTorch's default Linear init range
                m.weight.uniform_(-bound, bound, generator=generator)
                if m.bias is not None:
                    m.bias.uniform_(-bound, bound, generator=generator)
    return module


def linear_regression_probe(
    train_x: Tensor,
    train_y: Tensor,
    heldout_x: Tensor,
    heldout_y: Tensor,
    *,
    epochs: int,
    lr: float = 0.01,
    seed: int = 0,
    extra_x: Tensor | None = None,
) -> ProbeOutcome:
    """Full-batch Adam linear regression ``[N, D] -> [N, C]`` (Protocols A/B).

    Returns:
        ``train``: the MSE of the last epoch's forward pass on the training (probe) set, as the paper
        prints it; ``heldout``: the trained probe's MSE on ``heldout_x/y``; ``predictions``: the probe
        applied to ``extra_x [M, D]`` (``[M, C]``) when given.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    probe = _seeded_(nn.Linear(train_x.shape[1], train_y.shape[1]), seed)
    optimizer = torch.optim.Adam(probe.parameters(), lr=lr)
    last = torch.zeros(())
    for _ in range(epochs):
        loss = F.mse_loss(probe(train_x), train_y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        last = loss.detach()
    with torch.no_grad():
        heldout = F.mse_loss(probe(heldout_x), heldout_y)
        predictions = probe(extra_x) if extra_x is not None else None
    return ProbeOutcome(train=float(last), heldout=float(heldout), predictions=predictions)


def _minibatches(n: int, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    return list(torch.randperm(n, generator=generator).split(batch_size))


def linear_classification_probe(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    *,
    num_classes: int,
    epochs: int = 10,
    lr: float = 1e-2,
    batch_size: int = 256,
    seed: int = 0,
) -> ProbeOutcome:
    """Linear classifier on frozen features; returns top-1 accuracies in % (train = after training)."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    probe = _seeded_(nn.Linear(train_x.shape[1], num_classes), seed)
    optimizer = torch.optim.Adam(probe.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in _minibatches(train_x.shape[0], batch_size, generator):
            loss = F.cross_entropy(probe(train_x[idx]), train_y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        train_acc = (probe(train_x).argmax(1) == train_y).float().mean() * 100
        test_acc = (probe(test_x).argmax(1) == test_y).float().mean() * 100
    return ProbeOutcome(train=float(train_acc), heldout=float(test_acc))


def make_decoder(in_dim: int, out_pixels: int = 392) -> nn.Sequential:
    """``in -> 256 (BN, ReLU) -> 512 (BN, ReLU) -> out_pixels -> sigmoid`` (paper's generative probe)."""
    mlp = build_mlp(in_dim, out_pixels, hidden_dims=[256, 512], activation="relu", norm="batch")
    return nn.Sequential(*mlp, nn.Sigmoid())


def decoder_probe(
    train_x: Tensor,
    train_pixels: Tensor,
    test_x: Tensor,
    test_pixels: Tensor,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 256,
    seed: int = 0,
) -> ProbeOutcome:
    """Decode right-half pixels ``[N, P]`` in ``[0, 1]`` from frozen features ``[N, D]``.

    Returns:
        ``train``: average training MSE over the last epoch's batches (paper); ``heldout``: test MSE.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    train_pixels, test_pixels = train_pixels.flatten(1), test_pixels.flatten(1)
    decoder = _seeded_(make_decoder(train_x.shape[1], train_pixels.shape[1]), seed)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    epoch_losses: list[Tensor] = []
    decoder.train()
    for _ in range(epochs):
        epoch_losses = []
        for idx in _minibatches(train_x.shape[0], batch_size, generator):
            if idx.numel() < 2:  # BatchNorm needs two samples
                continue
            loss = F.mse_loss(decoder(train_x[idx]), train_pixels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            epoch_losses.append(loss.detach())
    decoder.eval()
    with torch.no_grad():
        test_mse = F.mse_loss(embed_frozen(decoder, test_x), test_pixels)
    return ProbeOutcome(train=float(torch.stack(epoch_losses).mean()), heldout=float(test_mse))
