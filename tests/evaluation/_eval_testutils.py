"""Tiny encoders and synthetic eval data for the evaluation tests (imported by the test modules)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class TinyEvalData:
    """Structural stand-in for ``hamjepa.data.EvalData`` built from in-memory uint8 tensors."""

    train: Callable[[], Iterator[tuple[Tensor, Tensor]]]
    test: Callable[[], Iterator[tuple[Tensor, Tensor]]]
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def batches(images: Tensor, labels: Tensor, batch: int) -> Callable[[], Iterator[tuple[Tensor, Tensor]]]:
    def fn() -> Iterator[tuple[Tensor, Tensor]]:
        for i in range(0, images.shape[0], batch):
            yield images[i : i + batch], labels[i : i + batch]

    return fn


def class_tinted_images(n: int, num_classes: int, size: int, seed: int) -> tuple[Tensor, Tensor]:
    """uint8 [n, 3, size, size] noise images whose colour depends on the class, labels [n] (cyclic)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % num_classes
    tint = torch.rand(num_classes, 3, 1, 1, generator=torch.Generator().manual_seed(123)) * 160
    noise = torch.rand(n, 3, size, size, generator=g) * 90
    return (tint[labels] + noise).clamp(0, 255).to(torch.uint8), labels


def make_eval_data(n_train: int = 96, n_test: int = 48, num_classes: int = 4, size: int = 8) -> TinyEvalData:
    xtr, ytr = class_tinted_images(n_train, num_classes, size, seed=1)
    xte, yte = class_tinted_images(n_test, num_classes, size, seed=2)
    return TinyEvalData(
        train=batches(xtr, ytr, 32),
        test=batches(xte, yte, 32),
        num_classes=num_classes,
        mean=(0.5, 0.45, 0.4),
        std=(0.25, 0.25, 0.3),
    )


class TinyEncoder(nn.Module):
    """conv(3->c, stride 2) + BN + ReLU + 2x2 average pool -> [N, 4c] (D = 4c, even).

    ``pooled_features``: the global average of the conv feature map, ``[N, c]`` (the standard protocol's
    feature); computed in a second pass (no ``forward_with_pooled``), as for any encoder that lacks one.
    """

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, channels, 3, stride=2, padding=1), nn.BatchNorm2d(channels), nn.ReLU()
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten())

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x))

    def pooled_features(self, x: Tensor) -> Tensor:
        return self.backbone(x).mean(dim=(2, 3))


class TokenOnlyEncoder(nn.Module):
    """An encoder without ``pooled_features``: only the token protocol can evaluate it."""

    def __init__(self) -> None:
        super().__init__()
        self.net = TinyEncoder()

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
