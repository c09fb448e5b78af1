"""Un-augmented evaluation batches (docs/spec.md §H.1): uint8 images, normalised later by the evaluator.

CIFAR-style arrays are yielded as they are; ImageFolder images are resized (shorter side 256, bilinear,
antialias) and centre-cropped to 224, decoded in DataLoader workers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from hamjepa.data.augment import CIFAR100_MEAN, CIFAR100_STD, IMAGENET_MEAN, IMAGENET_STD
from hamjepa.data.imagefolder import CorruptImageError, ImageFolderSource
from hamjepa.data.sources import ArraySplits, load_packed

log = logging.getLogger(__name__)

Batches = Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]
"""A fresh iterator of ``(uint8 [b, 3, h, w], int64 labels [b])`` on every call."""


@dataclass
class EvalData:
    """Evaluation splits (see CONTRACTS.md).

    Attributes:
        train, test: callables returning iterators of ``(uint8 [b, 3, h, w], labels [b])`` CPU batches
            (possibly channels-last strided views; consumers call ``.contiguous()`` where they need NCHW).
        num_classes: number of classes.
        mean, std: per-channel normalisation the evaluator applies after ``/ 255``.
        n_train: number of train images when known before decoding (the evaluator checks an explicit kNN
            ``k`` against it before extracting any feature); ``None``: unknown.
    """

    train: Batches
    test: Batches
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    n_train: int | None = None


def stratified_subset(labels: np.ndarray | torch.Tensor, n: int) -> np.ndarray:
    """Indices of ``n`` samples spread over the classes round-robin (class 0's first, class 1's first, ...).

    Deterministic; useful because packed CIFAR is sorted by class (a plain first-N slice would be one class).
    """
    labels = np.asarray(labels)
    if n < 1:
        raise ValueError(f"subset must be >= 1, got {n}")
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank_in_class = np.arange(len(labels)) - starts
    pick = np.lexsort((sorted_labels, rank_in_class))[: min(n, len(labels))]
    return np.sort(order[pick])


def _array_batches(x_nhwc: np.ndarray, y: np.ndarray, batch_size: int) -> Batches:
    """Batches as ``[b, 3, h, w]`` *views* of the NHWC arrays (channels-last strides, no CPU copy).

    The evaluator copies each batch to its device as one dense block and makes it NCHW-contiguous there.
    """

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(x_nhwc), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(x_nhwc[start : start + batch_size]))
            yield x.permute(0, 3, 1, 2), torch.from_numpy(y[start : start + batch_size].copy())

    return batches


def eval_data_from_arrays(
    splits: ArraySplits,
    *,
    batch_size: int,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    subset: int | None = None,
) -> EvalData:
    """Eval data from in-memory arrays (no transform). ``subset`` keeps a stratified slice of each split."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    xtr, ytr, xte, yte = splits.x_train, splits.y_train, splits.x_test, splits.y_test
    if subset is not None:
        itr, ite = stratified_subset(ytr, subset), stratified_subset(yte, subset)
        xtr, ytr, xte, yte = xtr[itr], ytr[itr], xte[ite], yte[ite]
    return EvalData(
        train=_array_batches(xtr, ytr.astype(np.int64), batch_size),
        test=_array_batches(xte, yte.astype(np.int64), batch_size),
        num_classes=splits.num_classes,
        mean=mean,
        std=std,
        n_train=len(ytr),
    )


class _EvalImages(Dataset):
    """Decode + resize shorter side to ``resize`` + centre crop ``crop`` -> (uint8 ``[3, crop, crop]``, label,
    ``""``); a file that cannot be decoded gives (zeros, label, ``"path: reason"``) for the main process to
    raise or skip."""

    def __init__(self, source: ImageFolderSource, indices: np.ndarray, resize: int, crop: int) -> None:
        self.source, self.indices, self.resize, self.crop = source, indices, resize, crop

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, str]:
        from torchvision.transforms.v2.functional import center_crop, resize

        index = int(self.indices[i])
        label = self.source.samples[index][1]
        try:
            image = resize(self.source.decode(index), [self.resize], antialias=True)
        except CorruptImageError as exc:
            return torch.zeros(3, self.crop, self.crop, dtype=torch.uint8), label, f"{exc.path}\0{exc.reason}"
        return center_crop(image, [self.crop, self.crop]), label, ""


def eval_loader(ds: Dataset, batch_size: int, num_workers: int) -> DataLoader:
    """In-order batches of ``ds``, in page-locked memory when CUDA is present (asynchronous device copies)."""
    return DataLoader(
        ds, batch_size=batch_size, shuffle=False, num_workers=num_workers, pin_memory=torch.cuda.is_available()
    )


def _folder_batches(ds: _EvalImages, batch_size: int, num_workers: int, on_corrupt: str) -> Batches:
    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y, bad in eval_loader(ds, batch_size, num_workers):
            keep = [i for i, b in enumerate(bad) if not b]
            for b in (b for b in bad if b):
                path, reason = b.split("\0", 1)
                if on_corrupt == "error":
                    raise CorruptImageError(path, reason)
                log.warning("data: evaluation skipped corrupt image %s (%s); data.on_corrupt=skip", path, reason)
            if len(keep) == len(bad):
                yield x, y
            elif keep:
                yield x[keep], y[keep]

    return batches


def eval_data_from_imagefolder(
    root: str | Path,
    *,
    batch_size: int,
    num_workers: int,
    subset: int | None = None,
    resize: int = 256,
    crop: int = 224,
    train_split: str = "train",
    test_split: str = "val",
    on_corrupt: str = "error",
) -> EvalData:
    """Eval data from an ImageFolder tree: resize (shorter side ``resize``) + centre crop ``crop``.

    ``on_corrupt="skip"`` leaves out (and logs) files that cannot be decoded; ``"error"`` raises on the first.
    """
    train = ImageFolderSource(root, train_split)
    test = ImageFolderSource(root, test_split, class_names=train.classes)

    def indices(src: ImageFolderSource) -> np.ndarray:
        n = len(src)
        return np.arange(n) if subset is None else stratified_subset(src.targets.numpy(), subset)

    train_indices = indices(train)
    return EvalData(
        train=_folder_batches(_EvalImages(train, train_indices, resize, crop), batch_size, num_workers, on_corrupt),
        test=_folder_batches(_EvalImages(test, indices(test), resize, crop), batch_size, num_workers, on_corrupt),
        num_classes=train.num_classes,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        n_train=len(train_indices),
    )


def first_split_present(root: str | Path, names: tuple[str, ...]) -> str | None:
    """The first of the split folder ``names`` (e.g. ``("val", "test")``) present under ``root``, as a folder
    ``root/name`` or Kaggle parts ``root/name.X*``; ``None`` when none is."""
    for name in names:
        if (Path(root) / name).is_dir() or any(p.is_dir() for p in Path(root).glob(f"{name}.X*")):
            return name
    return None


def build_eval_data(
    dataset: str,
    path: str | Path,
    *,
    batch_size: int = 256,
    num_workers: int = 4,
    subset: int | None = None,
    on_corrupt: str = "error",
) -> EvalData:
    """Eval data for ``dataset``.

    Args:
        dataset: ``"cifar100"`` (``path`` = packed ``.npz``) or ``"imagefolder"`` / ``"imagenet100"``
            (``path`` = tree with ``train/`` and ``val/``).
        path: see ``dataset``.
        batch_size: images per yielded batch.
        num_workers: decoding workers (ImageFolder only).
        subset: keep a stratified slice of this many images per split (tiny CI runs).
        on_corrupt: ``"error"`` or ``"skip"`` (ImageFolder only; see :func:`eval_data_from_imagefolder`).
    """
    if dataset == "cifar100":
        return eval_data_from_arrays(
            load_packed(path), batch_size=batch_size, mean=CIFAR100_MEAN, std=CIFAR100_STD, subset=subset
        )
    if dataset in ("imagefolder", "imagenet100"):
        return eval_data_from_imagefolder(
            path, batch_size=batch_size, num_workers=num_workers, subset=subset, on_corrupt=on_corrupt
        )
    raise ValueError(f"dataset must be 'cifar100', 'imagefolder' or 'imagenet100', got {dataset!r}")
