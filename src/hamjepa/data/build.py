"""One-call builders of the train stream for the supported data sets."""

from __future__ import annotations

from pathlib import Path

import torch

from hamjepa.data.augment import MultiViewAugment, cifar100_augment, imagenet_augment
from hamjepa.data.eval_data import stratified_subset
from hamjepa.data.folder_stream import ImageFolderStream
from hamjepa.data.folder_views import OnCorrupt
from hamjepa.data.imagefolder import ImageFolderSource
from hamjepa.data.loader import DeviceResidentStream
from hamjepa.data.sources import load_packed


def nhwc_to_device(x_nhwc, device: torch.device | str) -> torch.Tensor:
    """uint8 numpy ``[N, H, W, 3]`` -> contiguous uint8 torch ``[N, 3, H, W]`` on ``device``."""
    return torch.from_numpy(x_nhwc).to(device).permute(0, 3, 1, 2).contiguous()


def build_train_stream(
    dataset: str,
    path: str | Path,
    *,
    batch_size: int,
    seed: int,
    device: torch.device | str,
    n_global: int = 2,
    n_local: int = 0,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 8,
    subset: int | None = None,
    augment: MultiViewAugment | None = None,
    on_corrupt: OnCorrupt = "error",
) -> DeviceResidentStream | ImageFolderStream:
    """Train stream for ``dataset``.

    Args:
        dataset: ``"cifar100"`` (``path`` = packed ``.npz``; the whole train set is put on ``device``) or
            ``"imagefolder"`` / ``"imagenet100"`` (``path`` = tree with ``train/``; streamed with workers).
        path: see ``dataset``.
        batch_size: GLOBAL batch size.
        seed: base seed.
        device: training device.
        n_global, n_local: views per image (spec presets for the crop settings).
        rank, world_size: this process's shard.
        num_workers: decoding workers (ImageFolder only).
        subset: keep a stratified slice of this many train images (tiny CI runs).
        augment: override the preset augmentation.
        on_corrupt: ``"error"`` or ``"skip"`` for image files that cannot be decoded (ImageFolder only).
    """
    if dataset == "cifar100":
        splits = load_packed(path)
        x, y = splits.x_train, splits.y_train
        if subset is not None:
            keep = stratified_subset(y, subset)
            x, y = x[keep], y[keep]
        return DeviceResidentStream(
            nhwc_to_device(x, device),
            torch.from_numpy(y).to(device),
            batch_size,
            augment or cifar100_augment(n_global, n_local),
            seed,
            rank=rank,
            world_size=world_size,
        )
    if dataset in ("imagefolder", "imagenet100"):
        source = ImageFolderSource(path, "train")
        if subset is not None:
            keep = stratified_subset(source.targets.numpy(), subset)
            source.samples = [source.samples[i] for i in keep]
            source.targets = source.targets[torch.from_numpy(keep)]
        return ImageFolderStream(
            source,
            batch_size,
            augment or imagenet_augment(n_global, n_local),
            seed,
            device,
            rank=rank,
            world_size=world_size,
            num_workers=num_workers,
            on_corrupt=on_corrupt,
        )
    raise ValueError(f"dataset must be 'cifar100', 'imagefolder' or 'imagenet100', got {dataset!r}")
