"""The per-image torchvision pipeline that the paper's code runs (docs/spec.md §A.2, ImageNet column), for comparison.

Our ImageNet stream decodes and crops in the workers and applies the rest of the recipe batched on the device
(:func:`hamjepa.data.augment.imagenet_augment`); this is the conventional CPU pipeline it replaces: PIL image
in, one normalised float view out. The statistical test of the augmentation compares the two
(``tests/data/test_augment_stats.py``) and ``benchmarks/bench_imagefolder.py`` times them against each other.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from hamjepa.data.augment import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["torchvision_imagenet_view"]


def torchvision_imagenet_view() -> v2.Compose:
    """Spec A.2, ImageNet column, on PIL images: 224 px crop of scale (0.4, 1), flip, jitter (p 0.8), grayscale
    (p 0.2), 23x23 blur (p 0.5), uint8 solarize at 128 (p 0.2), then to float and ImageNet normalisation."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(224, scale=(0.4, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
            v2.RandomHorizontalFlip(0.5),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            v2.RandomGrayscale(0.2),
            v2.RandomApply([v2.GaussianBlur(23, sigma=(0.1, 2.0))], p=0.5),
            v2.RandomSolarize(128, p=0.2),
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD)),
        ]
    )
