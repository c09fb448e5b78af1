"""Cheap online kNN monitor for training (a fixed small labelled subset held on the device)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from .features import check_labels, extract_features
from .knn import knn_classify


class OnlineKNNMonitor:
    """Every ``every_n_epochs`` epochs, kNN top-1 (cosine, majority vote, one ``k``) of the frozen encoder.

    Args:
        train_images: uint8 ``[n_train, 3, h, w]`` (the kNN memory bank images), train_labels: ``[n_train]``.
        test_images: uint8 ``[n_test, 3, h, w]``, test_labels: ``[n_test]``.
        mean, std: per-channel normalisation on the 0-1 scale.
        k: neighbours (must be <= n_train).
        every_n_epochs: run when ``epoch % every_n_epochs == 0`` (1-indexed epochs).
        num_classes: number of classes; ``None`` means ``max(label) + 1`` over both subsets.
        batch_size: encoder batch size.
        device: where the images are kept and the encoder runs.
    """

    def __init__(
        self,
        train_images: Tensor,
        train_labels: Tensor,
        test_images: Tensor,
        test_labels: Tensor,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        k: int = 20,
        every_n_epochs: int = 1,
        num_classes: int | None = None,
        batch_size: int = 256,
        device: torch.device | str = "cpu",
    ) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 1 <= k <= train_images.shape[0]:
            raise ValueError(f"k={k} must be in [1, n_train={train_images.shape[0]}]")
        for name, imgs, labs in (("train", train_images, train_labels), ("test", test_images, test_labels)):
            if imgs.dtype != torch.uint8 or imgs.ndim != 4 or imgs.shape[1] != 3:
                raise ValueError(f"{name}_images must be uint8 [n, 3, h, w], got {imgs.dtype} {tuple(imgs.shape)}")
            if imgs.shape[0] == 0 or labs.shape != (imgs.shape[0],):
                raise ValueError(f"{name}_images must be non-empty with one label each")
        self.device = torch.device(device)
        self.train_images = train_images.to(self.device)
        self.train_labels = train_labels.to(self.device, torch.int64)
        self.test_images = test_images.to(self.device)
        self.test_labels = test_labels.to(self.device, torch.int64)
        if num_classes is None:
            num_classes = int(torch.maximum(self.train_labels.max(), self.test_labels.max())) + 1
        check_labels(self.train_labels, num_classes, "monitor train")
        check_labels(self.test_labels, num_classes, "monitor test")
        self.num_classes = num_classes
        self.mean, self.std = tuple(mean), tuple(std)
        self.k, self.every_n_epochs, self.batch_size = k, every_n_epochs, batch_size

    def _batches(self, images: Tensor, labels: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
        for i in range(0, images.shape[0], self.batch_size):
            yield images[i : i + self.batch_size], labels[i : i + self.batch_size]

    def run(self, encoder: nn.Module) -> dict[str, float]:
        """kNN top-1 now (encoder put in eval mode for the call, its mode restored): ``{"knn_top1": acc}``."""
        f_tr, y_tr = extract_features(
            encoder,
            lambda: self._batches(self.train_images, self.train_labels),
            self.mean,
            self.std,
            self.device,
        )
        f_te, y_te = extract_features(
            encoder,
            lambda: self._batches(self.test_images, self.test_labels),
            self.mean,
            self.std,
            self.device,
        )
        res = knn_classify(f_tr, y_tr, f_te, y_te, self.num_classes, k_values=(self.k,))
        return {"knn_top1": res.top1[0]}

    def maybe_run(self, encoder: nn.Module, epoch: int) -> dict[str, float] | None:
        """``run(encoder)`` when ``epoch % every_n_epochs == 0``, else ``None``."""
        if epoch % self.every_n_epochs:
            return None
        return self.run(encoder)
