"""The evaluation preprocessing of a trained run, for images from anywhere.

A run's frozen features are always computed the same way (docs/spec.md §H.1): the image is resized so its shorter
side is ``resize`` (bilinear, antialias; skipped when it already is), centre-cropped to ``crop x crop``,
scaled to [0, 1] and normalised with the run's per-channel ``mean`` / ``std``. For CIFAR-family runs
``resize == crop == data.image_size`` (a 32 px CIFAR image passes through unchanged, exactly as the
evaluation feeds packed CIFAR); for ImageNet-family runs ``crop = data.image_size`` and
``resize = round(crop * 256 / 224)`` (256 / 224 at the default size, as ``hamjepa eval`` on an image folder).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from hamjepa.data.augment import CIFAR100_MEAN, CIFAR100_STD, IMAGENET_MEAN, IMAGENET_STD

__all__ = ["EvalPreprocess"]


@dataclass(frozen=True)
class EvalPreprocess:
    """Resize (shorter side) -> centre crop -> ``(x / 255 - mean) / std`` for uint8, ``(x - mean) / std`` for
    float images in [0, 1].

    Attributes:
        resize: target of the shorter side before cropping.
        crop: side of the square centre crop (the encoder's input size).
        mean, std: per-channel normalisation on the 0-1 scale.
    """

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EvalPreprocess:
        """The preprocessing of a run from its resolved config (plain dict)."""
        data = config.get("data", {})
        size = int(data.get("image_size", 32))
        if data.get("dataset", "cifar100") == "cifar100":
            return cls(resize=size, crop=size, mean=tuple(CIFAR100_MEAN), std=tuple(CIFAR100_STD))
        return cls(resize=round(size * 256 / 224), crop=size, mean=tuple(IMAGENET_MEAN), std=tuple(IMAGENET_STD))

    def geometry(self, images: Tensor) -> Tensor:
        """Resize + centre crop of ``[..., 3, H, W]`` images (uint8 stays uint8); shape ``[..., 3, crop, crop]``."""
        from torchvision.transforms.v2.functional import center_crop, resize

        if images.ndim < 3 or images.shape[-3] != 3:
            raise ValueError(f"images must be [3, H, W] or [N, 3, H, W] RGB, got shape {tuple(images.shape)}")
        if min(images.shape[-2:]) != self.resize:
            images = resize(images, [self.resize], antialias=True)
        if tuple(images.shape[-2:]) != (self.crop, self.crop):
            images = center_crop(images, [self.crop, self.crop])
        return images

    def normalise(self, images: Tensor) -> Tensor:
        """uint8 (0-255) or float (0-1) ``[N, 3, h, w]`` -> normalised float32 on the same device."""
        x = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
        mean = torch.tensor(self.mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def __call__(self, images: Tensor) -> Tensor:
        """Geometry then normalisation of a ``[N, 3, H, W]`` batch."""
        return self.normalise(self.geometry(images))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (written into exports)."""
        return {"resize": self.resize, "crop": self.crop, "mean": list(self.mean), "std": list(self.std)}
