"""Data sources, device-side multi-view augmentation, train streams and evaluation batches.

- :mod:`~hamjepa.data.sources` -- :class:`ArraySplits`, packed ``.npz`` load/save, CIFAR-100 download.
- :mod:`~hamjepa.data.imagefolder` -- validated ImageFolder listing and JPEG decoding.
- :mod:`~hamjepa.data.augment` -- :class:`MultiViewAugment` (docs/spec.md §A.2) and the dataset presets.
- :mod:`~hamjepa.data.loader` / :mod:`~hamjepa.data.folder_stream` -- resumable train streams.
- :mod:`~hamjepa.data.eval_data` -- :class:`EvalData` for the frozen-feature evaluation.
"""

from hamjepa.data.augment import (
    CIFAR100_MEAN,
    CIFAR100_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    AugmentParams,
    MultiViewAugment,
    cifar100_augment,
    imagenet_augment,
)
from hamjepa.data.build import build_train_stream
from hamjepa.data.eval_data import EvalData, build_eval_data, stratified_subset
from hamjepa.data.folder_stream import ImageFolderStream
from hamjepa.data.from_config import build_eval_data_from_config, train_stream_from_config
from hamjepa.data.imagefolder import ImageFolderSource, decode_rgb
from hamjepa.data.loader import DeviceResidentStream
from hamjepa.data.sources import ArraySplits, DataError, load_packed, pack_cifar100, save_packed

__all__ = [
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ArraySplits",
    "AugmentParams",
    "DataError",
    "DeviceResidentStream",
    "EvalData",
    "ImageFolderSource",
    "ImageFolderStream",
    "MultiViewAugment",
    "build_eval_data",
    "build_eval_data_from_config",
    "build_train_stream",
    "cifar100_augment",
    "decode_rgb",
    "imagenet_augment",
    "load_packed",
    "pack_cifar100",
    "save_packed",
    "stratified_subset",
    "train_stream_from_config",
]
