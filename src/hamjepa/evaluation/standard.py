"""The field's standard frozen-feature protocol, evaluated beside the paper's token protocol.

The paper's **token** protocol (docs/spec.md §H) evaluates the flattened headless tokens ``q`` / ``p`` / ``qp`` with a
majority-vote kNN and a ``LayerNorm -> Linear`` probe trained with AdamW. The **standard** protocol is what
SSL libraries (solo-learn, lightly, DINO) report: the **pooled backbone feature** (the global average of the
backbone's last feature map, before any token head or projector; the encoder's ``pooled_features``) with

* a **weighted cosine kNN**: L2-normalised features, the ``k`` most similar train images vote with weights
  ``exp(sim / T)``, ``T = 0.07``; headline ``k = 20``, sweep 10, 20, 100, 200 (DINO's ``eval_knn``);
* a **linear probe** (solo-learn's recipe): ``Linear(F, C)`` on the raw feature (no normalisation layer),
  SGD with momentum 0.9, lr 0.3, batch 256, 100 epochs, lr x 0.1 at 60 % and 80 % of the epochs (epochs
  60 and 80 of 100), no weight decay, seeded shuffles, last partial batch kept.

Unlike solo-learn, the probe trains on features computed once from the un-augmented (centre-cropped) train
images, as the token protocol's probe does; solo-learn re-encodes randomly augmented crops every epoch.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .features import to_device

STANDARD_READOUT = "pooled"
"""The standard protocol's one readout: the pooled backbone feature."""
STANDARD_K_VALUES: tuple[int, ...] = (10, 20, 100, 200)
"""The standard kNN sweep (DINO's); the headline is ``k = 20``."""
STANDARD_KNN_TEMPERATURE = 0.07
"""The temperature ``T`` of the kNN vote weights ``exp(sim / T)``."""


@dataclass
class SGDProbeConfig:
    """The standard protocol's linear probe (solo-learn's recipe; the defaults are the field's)."""

    epochs: int = 100
    batch_size: int = 256
    lr: float = 0.3
    momentum: float = 0.9
    weight_decay: float = 0.0
    milestones: tuple[float, ...] = (0.6, 0.8)
    """Fractions of ``epochs`` after which the lr is multiplied by ``gamma`` (epochs 60 and 80 of 100)."""
    gamma: float = 0.1
    seed: int = 0
    eval_batch_size: int = 8192

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"standard probe epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if self.lr <= 0 or self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ValueError(
                f"standard probe needs lr > 0, weight_decay >= 0 and 0 <= momentum < 1, got lr={self.lr}, "
                f"weight_decay={self.weight_decay}, momentum={self.momentum}"
            )
        if any(not 0 < m < 1 for m in self.milestones) or not 0 < self.gamma <= 1:
            raise ValueError(
                f"standard probe milestones must be fractions in (0, 1) and gamma in (0, 1], got "
                f"{self.milestones} and {self.gamma}"
            )

    def milestone_epochs(self) -> list[int]:
        """The epochs (0-indexed) from which each lr decay applies: ``round(fraction * epochs)``."""
        return [round(m * self.epochs) for m in self.milestones]

    def lr_at_epoch(self, epoch: int) -> float:
        """``lr * gamma ** (number of milestone epochs <= epoch)``."""
        return self.lr * self.gamma ** sum(epoch >= m for m in self.milestone_epochs())


@dataclass
class SGDProbeResult:
    """Test accuracies (fractions), the final epoch's mean train loss and the lr of every epoch."""

    top1: float
    top5: float
    final_train_loss: float
    lr_per_epoch: list[float] = field(repr=False)


def standard_k_values(n_train: int, k_values: Sequence[int] = STANDARD_K_VALUES) -> tuple[tuple[int, ...], list[int]]:
    """The standard sweep without the ``k`` above ``n_train``: ``(k_values, dropped)``.

    A train set smaller than every ``k`` of the sweep (a tiny test set) is evaluated at ``k = n_train``.
    """
    if n_train < 1:
        raise ValueError(f"the standard kNN needs at least one train image, got {n_train}")
    kept = tuple(k for k in k_values if k <= n_train)
    return kept or (n_train,), [k for k in k_values if k > n_train]


def _linear_head(dim: int, num_classes: int, seed: int) -> nn.Linear:
    """``nn.Linear(dim, C)`` with PyTorch's default ``U(-1/sqrt(dim), 1/sqrt(dim))`` from a seeded generator."""
    head = nn.Linear(dim, num_classes)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(STANDARD_READOUT.encode()))
    bound = 1.0 / math.sqrt(dim)
    with torch.no_grad():
        head.weight.copy_(torch.rand(head.weight.shape, generator=generator) * 2 * bound - bound)
        head.bias.copy_(torch.rand(head.bias.shape, generator=generator) * 2 * bound - bound)
    return head


def train_sgd_linear_probe(
    train_feats: Tensor,
    train_labels: Tensor,
    test_feats: Tensor,
    test_labels: Tensor,
    num_classes: int,
    config: SGDProbeConfig | None = None,
    *,
    progress: bool = False,
) -> SGDProbeResult:
    """Train ``Linear(F, C)`` on frozen features with the standard recipe and evaluate it.

    Args:
        train_feats: ``[N, F]``; train_labels: int ``[N]`` (same device).
        test_feats: ``[M, F]``; test_labels: int ``[M]``.
        num_classes: ``C``.
        config: the recipe (the field's defaults when ``None``).
    """
    cfg = config or SGDProbeConfig()
    n = train_labels.shape[0]
    if n == 0 or test_labels.shape[0] == 0:
        raise ValueError("empty feature set: the probe needs train and test features")
    if train_feats.shape[0] != n or test_feats.shape[0] != test_labels.shape[0]:
        raise ValueError("features and labels must have the same number of rows")
    device = train_labels.device
    gen = torch.Generator().manual_seed(cfg.seed)
    head = _linear_head(train_feats.shape[1], num_classes, cfg.seed).to(device)
    opt = torch.optim.SGD(head.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    x_train, y_train = train_feats.float(), train_labels.to(torch.int64)
    epochs = range(cfg.epochs)
    if progress:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc="standard linear probe", unit="epoch", leave=False)
    lr_per_epoch: list[float] = []
    loss_sum = torch.zeros((), device=device)
    head.train()
    for epoch in epochs:
        lr = cfg.lr_at_epoch(epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        lr_per_epoch.append(lr)
        perm = to_device(torch.randperm(n, generator=gen), device)
        for b0 in range(0, n, cfg.batch_size):
            idx = perm[b0 : b0 + cfg.batch_size]
            loss = F.cross_entropy(head(x_train[idx]), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if epoch == cfg.epochs - 1:  # mean train loss of the final epoch (no per-step host sync)
                loss_sum += loss.detach() * idx.shape[0]
    top1, top5 = _accuracy(head, test_feats, test_labels, num_classes, cfg.eval_batch_size)
    return SGDProbeResult(top1=top1, top5=top5, final_train_loss=float(loss_sum) / n, lr_per_epoch=lr_per_epoch)


@torch.no_grad()
def _accuracy(head: nn.Linear, feats: Tensor, labels: Tensor, num_classes: int, batch: int) -> tuple[float, float]:
    head.eval()
    y = labels.to(torch.int64).unsqueeze(1)
    hits1 = torch.zeros((), dtype=torch.int64, device=labels.device)
    hits5 = torch.zeros((), dtype=torch.int64, device=labels.device)
    for b0 in range(0, feats.shape[0], batch):
        hits = head(feats[b0 : b0 + batch].float()).topk(min(5, num_classes), dim=1).indices == y[b0 : b0 + batch]
        hits1 += hits[:, 0].sum()
        hits5 += hits.any(dim=1).sum()
    m = labels.shape[0]
    return int(hits1) / m, int(hits5) / m
