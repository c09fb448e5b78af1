"""Vectorised sampling of the per-view random parameters of the multi-view augmentation.

All parameters of one view group are tensors with a leading axis of ``M = n_views * B`` entries in
view-major order (entry ``v * B + b`` belongs to view ``v`` of image ``b``). Every op draws its randomness
in one call from the ``torch.Generator`` passed in, on the generator's device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch

NUM_JITTER_OPS = 4
"""Colour-jitter sub-ops, indexed like torchvision's ``fn_idx``:
0 brightness, 1 contrast, 2 saturation, 3 hue."""


@dataclass
class CropParams:
    """RandomResizedCrop boxes, each int64 ``[M]`` (pixels of the source image)."""

    top: torch.Tensor
    left: torch.Tensor
    height: torch.Tensor
    width: torch.Tensor


def sample_crop_params(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
) -> CropParams:
    """Sample ``n`` crop boxes with torchvision's ``RandomResizedCrop.get_params`` algorithm, vectorised.

    For every box: up to 10 attempts of ``area * U[scale]`` and ``exp(U[log ratio])``; the first attempt
    whose rounded width/height fit the image wins, at a uniform integer position; if none fits, the
    central-crop fallback (whole image clipped to the ratio range) is used.

    Args:
        n: number of boxes.
        height, width: source image size.
        scale: area fraction range.
        ratio: aspect-ratio (w/h) range.
        generator: randomness (its device is used).

    Returns:
        :class:`CropParams` with int64 ``[n]`` tensors on the generator's device.
    """
    dev = generator.device
    area = float(height * width)
    u = torch.rand(n, 2, 10, generator=generator, device=dev)
    target_area = area * (scale[0] + (scale[1] - scale[0]) * u[:, 0]).double()
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * u[:, 1]).double()
    w = torch.round(torch.sqrt(target_area * aspect))
    h = torch.round(torch.sqrt(target_area / aspect))
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = ok.to(torch.int8).argmax(dim=1, keepdim=True)  # first valid attempt (0 when none)
    any_ok = ok.any(dim=1)
    w = w.gather(1, first)[:, 0].clamp(1, width)
    h = h.gather(1, first)[:, 0].clamp(1, height)
    pos = torch.rand(n, 2, generator=generator, device=dev).double()
    top = torch.minimum(torch.floor(pos[:, 0] * (height - h + 1)), height - h)
    left = torch.minimum(torch.floor(pos[:, 1] * (width - w + 1)), width - w)

    in_ratio = width / height
    if in_ratio < min(ratio):
        fw, fh = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        fh, fw = height, round(height * max(ratio))
    else:
        fw, fh = width, height
    ftop, fleft = (height - fh) // 2, (width - fw) // 2

    def pick(sampled: torch.Tensor, fallback: int) -> torch.Tensor:
        return torch.where(any_ok, sampled, torch.full_like(sampled, fallback)).to(torch.int64)

    return CropParams(top=pick(top, ftop), left=pick(left, fleft), height=pick(h, fh), width=pick(w, fw))


@dataclass
class GroupParams:
    """All random parameters of one view group (``n_views`` views of side ``size``).

    Every tensor has a leading axis ``[M]`` (view-major) unless noted.

    Attributes:
        n_views, size: group shape; ``M = n_views * B``.
        top, left, height, width: int64 crop boxes.
        flip: bool, horizontal flip.
        jitter: bool, colour jitter applied.
        brightness, contrast, saturation: float32 factors; hue: float32 shift (turns).
        jitter_order: int64 ``[M, 4]``; ``jitter_order[m, k]`` is the sub-op applied at position ``k``.
        grayscale: bool.
        blur: bool; sigma: float32 blur std (pixels).
        solarize: bool.
    """

    n_views: int
    size: int
    top: torch.Tensor
    left: torch.Tensor
    height: torch.Tensor
    width: torch.Tensor
    flip: torch.Tensor
    jitter: torch.Tensor
    brightness: torch.Tensor
    contrast: torch.Tensor
    saturation: torch.Tensor
    hue: torch.Tensor
    jitter_order: torch.Tensor
    grayscale: torch.Tensor
    blur: torch.Tensor
    sigma: torch.Tensor
    solarize: torch.Tensor

    def _tensor_names(self) -> list[str]:
        return [f.name for f in fields(self) if f.name not in ("n_views", "size")]

    @property
    def batch_size(self) -> int:
        """Images ``B`` covered by these parameters."""
        return self.top.shape[0] // self.n_views

    def to(self, device: torch.device | str) -> GroupParams:
        """Copy every tensor to ``device`` (non-blocking)."""
        moved = {n: getattr(self, n).to(device, non_blocking=True) for n in self._tensor_names()}
        return replace(self, **moved)

    def select_images(self, start: int, stop: int) -> GroupParams:
        """Parameters of images ``start:stop`` (every view), e.g. one rank's shard of a global batch."""
        b = self.batch_size

        def cut(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(self.n_views, b, *t.shape[1:])[:, start:stop].reshape(-1, *t.shape[1:])

        return replace(self, **{n: cut(getattr(self, n)) for n in self._tensor_names()})


@dataclass(frozen=True)
class ViewGroupSpec:
    """Crop settings of a group of views: ``n_views`` crops of area fraction ``scale`` resized to ``size``."""

    n_views: int
    size: int
    scale: tuple[float, float]


@dataclass(frozen=True)
class AugmentSettings:
    """Probabilities and ranges of the per-view ops (spec A.2)."""

    ratio: tuple[float, float]
    flip_p: float
    jitter_p: float
    brightness: float
    contrast: float
    saturation: float
    hue: float
    grayscale_p: float
    blur_p: float
    blur_sigma: tuple[float, float]
    solarize_p: float


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator, device=generator.device)


def _bernoulli(n: int, p: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device) < p


def sample_group_params(
    spec: ViewGroupSpec,
    settings: AugmentSettings,
    batch_size: int,
    height: int,
    width: int,
    generator: torch.Generator,
) -> GroupParams:
    """Sample every random parameter of one view group for a batch of ``batch_size`` images."""
    m = spec.n_views * batch_size
    crop = sample_crop_params(m, height, width, spec.scale, settings.ratio, generator)
    flip = _bernoulli(m, settings.flip_p, generator)
    jitter = _bernoulli(m, settings.jitter_p, generator)
    lo = (
        max(0.0, 1.0 - settings.brightness),
        max(0.0, 1.0 - settings.contrast),
        max(0.0, 1.0 - settings.saturation),
        -settings.hue,
    )
    hi = (1.0 + settings.brightness, 1.0 + settings.contrast, 1.0 + settings.saturation, settings.hue)
    # one draw for the four factors; scaled with Python floats (no host-to-device copies per step)
    u = torch.rand(m, NUM_JITTER_OPS, generator=generator, device=generator.device)
    factors = [lo[k] + (hi[k] - lo[k]) * u[:, k] for k in range(NUM_JITTER_OPS)]
    order = torch.rand(m, NUM_JITTER_OPS, generator=generator, device=generator.device).argsort(dim=1)
    grayscale = _bernoulli(m, settings.grayscale_p, generator)
    blur = _bernoulli(m, settings.blur_p, generator)
    sigma = _uniform(m, settings.blur_sigma[0], settings.blur_sigma[1], generator)
    solarize = _bernoulli(m, settings.solarize_p, generator)
    return GroupParams(
        n_views=spec.n_views,
        size=spec.size,
        top=crop.top,
        left=crop.left,
        height=crop.height,
        width=crop.width,
        flip=flip,
        jitter=jitter,
        brightness=factors[0],
        contrast=factors[1],
        saturation=factors[2],
        hue=factors[3],
        jitter_order=order,
        grayscale=grayscale,
        blur=blur,
        sigma=sigma,
        solarize=solarize,
    )
