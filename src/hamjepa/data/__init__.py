"""Data sources, device-side multi-view augmentation, train streams and evaluation batches.

- :mod:`~hamjepa.data.sources` -- :class:`ArraySplits`, packed ``.npz`` load/save, CIFAR-100 download.
- :mod:`~hamjepa.data.imagefolder` -- validated ImageFolder listing and JPEG decoding.
- :mod:`~hamjepa.data.augment` -- :class:`MultiViewAugment` (docs/spec.md §A.2) and the dataset presets.
- :mod:`~hamjepa.data.loader` / :mod:`~hamjepa.data.folder_stream` -- resumable train streams.
- :mod:`~hamjepa.data.eval_data` -- :class:`EvalData` for the frozen-feature evaluation.
"""

from __future__ import annotations

from hamjepa.lazy_exports import lazy_exports

# Imported on first use (hamjepa.lazy_exports): importing the package, e.g. for `--help`, loads no torch.
__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".augment": (
            "CIFAR100_MEAN",
            "CIFAR100_STD",
            "IMAGENET_MEAN",
            "IMAGENET_STD",
            "AugmentParams",
            "MultiViewAugment",
            "cifar100_augment",
            "imagenet_augment",
        ),
        ".build": ("build_train_stream",),
        ".eval_data": (
            "EvalData",
            "build_eval_data",
            "stratified_subset",
        ),
        ".folder_stream": ("ImageFolderStream",),
        ".from_config": (
            "build_eval_data_from_config",
            "train_stream_from_config",
        ),
        ".imagefolder": (
            "ImageFolderSource",
            "decode_rgb",
        ),
        ".loader": ("DeviceResidentStream",),
        ".sources": (
            "ArraySplits",
            "DataError",
            "load_packed",
            "pack_cifar100",
            "save_packed",
        ),
    },
)
