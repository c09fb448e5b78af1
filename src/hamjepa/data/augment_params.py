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


def draw_crop_uniforms(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The uniforms :func:`crop_params_from_uniforms` consumes: ``attempts [n, 2, 10]`` and ``position [n, 2]``."""
    dev = generator.device
    attempts = torch.rand(n, 2, 10, generator=generator, device=dev)
    position = torch.rand(n, 2, generator=generator, device=dev)
    return attempts, position


def crop_params_from_uniforms(
    attempts: torch.Tensor,
    position: torch.Tensor,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
) -> CropParams:
    """Crop boxes from the uniforms of :func:`draw_crop_uniforms` (pure tensor maths, no randomness).

    For every box: up to 10 attempts of ``area * U[scale]`` and ``exp(U[log ratio])``; the first attempt
    whose rounded width/height fit the image wins, at a uniform integer position; if none fits, the
    central-crop fallback (whole image clipped to the ratio range) is used.
    """
    area = float(height * width)
    u = attempts
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
    pos = position.double()
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


def sample_crop_params(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
) -> CropParams:
    """Sample ``n`` crop boxes with torchvision's ``RandomResizedCrop.get_params`` algorithm, vectorised.

    :func:`draw_crop_uniforms` followed by :func:`crop_params_from_uniforms`.

    Args:
        n: number of boxes.
        height, width: source image size.
        scale: area fraction range.
        ratio: aspect-ratio (w/h) range.
        generator: randomness (its device is used).

    Returns:
        :class:`CropParams` with int64 ``[n]`` tensors on the generator's device.
    """
    attempts, position = draw_crop_uniforms(n, generator)
    return crop_params_from_uniforms(attempts, position, height, width, scale, ratio)


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
    """Probabilities and ranges of the per-view ops (docs/spec.md §A.2)."""

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


@dataclass
class GroupDraws:
    """The raw uniforms ``U[0, 1)`` of one view group, in the order they are drawn from the generator.

    Every tensor has a leading axis ``[M]`` (view-major, ``M = n_views * B``). Turning them into
    :class:`GroupParams` (:func:`group_params_from_draws`) is pure tensor maths, so a compiled training
    step can draw them outside its graph and derive the parameters inside it.
    """

    n_views: int
    size: int
    crop_attempts: torch.Tensor  # [M, 2, 10]
    crop_position: torch.Tensor  # [M, 2]
    flip: torch.Tensor
    jitter: torch.Tensor
    factors: torch.Tensor  # [M, 4]
    order: torch.Tensor  # [M, 4]
    grayscale: torch.Tensor
    blur: torch.Tensor
    sigma: torch.Tensor
    solarize: torch.Tensor

    def _tensor_names(self) -> list[str]:
        return [f.name for f in fields(self) if f.name not in ("n_views", "size")]

    def tensors(self) -> list[torch.Tensor]:
        """The uniforms as a flat list (field order)."""
        return [getattr(self, n) for n in self._tensor_names()]

    def with_tensors(self, tensors: list[torch.Tensor]) -> GroupDraws:
        """The same group with its uniforms replaced by ``tensors`` (as returned by :meth:`tensors`)."""
        return replace(self, **dict(zip(self._tensor_names(), tensors, strict=True)))

    @property
    def batch_size(self) -> int:
        """Images ``B`` covered by these draws."""
        return self.flip.shape[0] // self.n_views

    def select_images(self, start: int, stop: int) -> GroupDraws:
        """Uniforms of images ``start:stop`` (every view), e.g. one rank's shard of a global batch."""
        b = self.batch_size

        def cut(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(self.n_views, b, *t.shape[1:])[:, start:stop].reshape(-1, *t.shape[1:])

        return replace(self, **{n: cut(getattr(self, n)) for n in self._tensor_names()})


def draw_group_uniforms(spec: ViewGroupSpec, batch_size: int, generator: torch.Generator) -> GroupDraws:
    """Draw every uniform of one view group for ``batch_size`` images from ``generator`` (on its device)."""
    m = spec.n_views * batch_size
    dev = generator.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=dev)

    attempts, position = draw_crop_uniforms(m, generator)
    return GroupDraws(
        n_views=spec.n_views,
        size=spec.size,
        crop_attempts=attempts,
        crop_position=position,
        flip=rand(m),
        jitter=rand(m),
        factors=rand(m, NUM_JITTER_OPS),
        order=rand(m, NUM_JITTER_OPS),
        grayscale=rand(m),
        blur=rand(m),
        sigma=rand(m),
        solarize=rand(m),
    )


def group_params_from_draws(
    spec: ViewGroupSpec, settings: AugmentSettings, draws: GroupDraws, height: int, width: int
) -> GroupParams:
    """The parameters of one view group from its uniforms (pure tensor maths, traceable by ``torch.compile``)."""
    crop = crop_params_from_uniforms(
        draws.crop_attempts, draws.crop_position, height, width, spec.scale, settings.ratio
    )
    lo = (
        max(0.0, 1.0 - settings.brightness),
        max(0.0, 1.0 - settings.contrast),
        max(0.0, 1.0 - settings.saturation),
        -settings.hue,
    )
    hi = (1.0 + settings.brightness, 1.0 + settings.contrast, 1.0 + settings.saturation, settings.hue)
    # the four factors are scaled with Python floats (no host-to-device copies per step)
    u = draws.factors
    factors = [lo[k] + (hi[k] - lo[k]) * u[:, k] for k in range(NUM_JITTER_OPS)]
    s_lo, s_hi = settings.blur_sigma
    return GroupParams(
        n_views=spec.n_views,
        size=spec.size,
        top=crop.top,
        left=crop.left,
        height=crop.height,
        width=crop.width,
        flip=draws.flip < settings.flip_p,
        jitter=draws.jitter < settings.jitter_p,
        brightness=factors[0],
        contrast=factors[1],
        saturation=factors[2],
        hue=factors[3],
        jitter_order=draws.order.argsort(dim=1),
        grayscale=draws.grayscale < settings.grayscale_p,
        blur=draws.blur < settings.blur_p,
        sigma=s_lo + (s_hi - s_lo) * draws.sigma,
        solarize=draws.solarize < settings.solarize_p,
    )
