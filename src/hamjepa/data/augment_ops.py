"""Batched, per-sample image operations on float images in [0, 1] (any device, no host syncs).

Each function takes ``x: float [M, 3, H, W]`` and per-sample parameters of shape ``[M]`` and reproduces the
formula of the matching ``torchvision.transforms.v2.functional`` op on float tensors (same arithmetic
order where it matters), so that sample ``m`` of the output equals the torchvision op applied to ``x[m]``
with parameter ``[m]`` up to float rounding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)
"""ITU-R 601-2 luma weights, as in torchvision's ``rgb_to_grayscale``."""

SOLARIZE_THRESHOLD_255 = 127.5
"""Solarize inverts a value ``v`` when ``255 * v >= 127.5``, i.e. when ``v`` rounded to the uint8 grid is
``>= 128``. On values that lie on the uint8 grid this is exactly "invert pixels >= 128 on the uint8 image"."""


def _per_sample(v: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, 1, 1, 1)


def resized_crop_flip(
    images: torch.Tensor,
    top: torch.Tensor,
    left: torch.Tensor,
    height: torch.Tensor,
    width: torch.Tensor,
    flip: torch.Tensor,
    size: int,
) -> torch.Tensor:
    """Crop boxes, resize each to ``size x size`` (bilinear) and optionally mirror, in one ``grid_sample``.

    Matches ``resized_crop(img, top, left, h, w, [size, size])`` followed by ``horizontal_flip`` when the
    crop is not larger than ``size`` on either axis (upsampling or equal size, where torchvision's antialias
    has no effect): each output pixel samples the crop at ``(o + 0.5) * crop / size - 0.5``, clamped to the
    crop, which is ``F.interpolate(..., mode="bilinear", align_corners=False)`` on the cropped image.
    Downscaling uses plain bilinear sampling (no antialias filter).

    Args:
        images: float ``[B, 3, H, W]``, the source images.
        top, left, height, width: int64 ``[V * B]`` crop boxes, view-major (entry ``v * B + b``
            crops image ``b``).
        flip: bool ``[V * B]`` — mirror the output horizontally.
        size: output side ``S``.

    Returns:
        float ``[V, B, 3, S, S]``.
    """
    b, c, h_in, w_in = images.shape
    m = top.shape[0]
    if m % b != 0:
        raise ValueError(f"crop boxes: got {m} boxes for {b} images; pass V * B boxes (view-major)")
    v = m // b
    dev, dt = images.device, images.dtype
    grid_pos = torch.arange(size, device=dev, dtype=dt) + 0.5  # [S]
    hf, wf = height.to(dt)[:, None], width.to(dt)[:, None]  # [M, 1]
    cy = (grid_pos[None, :] * (hf / size) - 0.5).clamp(min=0.0)
    cy = torch.minimum(cy, hf - 1.0)
    cx = (grid_pos[None, :] * (wf / size) - 0.5).clamp(min=0.0)
    cx = torch.minimum(cx, wf - 1.0)
    cx = torch.where(flip[:, None], cx.flip(-1), cx)
    # absolute pixel coordinates -> normalised grid coordinates for align_corners=False
    gy = (2.0 * (cy + top.to(dt)[:, None]) + 1.0) / h_in - 1.0  # [M, S]
    gx = (2.0 * (cx + left.to(dt)[:, None]) + 1.0) / w_in - 1.0
    grid = torch.stack((gx[:, None, :].expand(m, size, size), gy[:, :, None].expand(m, size, size)), dim=-1)
    # views are stacked along the output height so that the source batch is not copied per view
    grid = grid.reshape(v, b, size, size, 2).transpose(0, 1).reshape(b, v * size, size, 2)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(b, c, v, size, size).permute(2, 0, 1, 3, 4)


def horizontal_flip(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror sample ``m`` of ``x: [M, C, H, W]`` where ``flip[m]`` is True."""
    return torch.where(_per_sample(flip), x.flip(-1), x)


def rgb_to_grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma ``[M, 1, H, W]`` of ``x: [M, 3, H, W]`` with the ITU-R 601-2 weights (torchvision's formula)."""
    r, g, b = x.unbind(dim=-3)
    return r.mul(GRAY_WEIGHTS[0]).add_(g, alpha=GRAY_WEIGHTS[1]).add_(b, alpha=GRAY_WEIGHTS[2]).unsqueeze(-3)


def blend(x: torch.Tensor, other: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """``clamp(ratio * x + (1 - ratio) * other, 0, 1)`` with per-sample ``ratio: [M]``."""
    r = _per_sample(ratio)
    return (x * r + other * (1.0 - r)).clamp_(0.0, 1.0)


def adjust_brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``clamp(factor * x, 0, 1)`` per sample (``factor: [M]``)."""
    return (x * _per_sample(factor)).clamp_(0.0, 1.0)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend each image with the mean of its grayscale version (``factor: [M]``)."""
    mean = rgb_to_grayscale(x).mean(dim=(-3, -2, -1), keepdim=True)
    return blend(x, mean, factor)


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend each image with its grayscale version (``factor: [M]``)."""
    return blend(x, rgb_to_grayscale(x), factor)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """RGB ``[M, 3, H, W]`` in [0, 1] -> HSV ``[M, 3, H, W]`` with hue in [0, 1) (torchvision's algorithm)."""
    r, g, _ = x.unbind(dim=-3)
    minc, maxc = torch.aminmax(x, dim=-3)
    eqc = maxc == minc
    channels_range = maxc - minc
    ones = torch.ones_like(maxc)
    s = channels_range / torch.where(eqc, ones, maxc)
    divisor = torch.where(eqc, ones, channels_range).unsqueeze(-3)
    rc, gc, bc = ((maxc.unsqueeze(-3) - x) / divisor).unbind(dim=-3)
    maxc_neq_r = maxc != r
    maxc_eq_g = maxc == g
    hg = rc.add(2.0).sub_(bc).mul_(maxc_eq_g & maxc_neq_r)
    hr = bc.sub(gc).mul_(~maxc_neq_r)
    hb = gc.add(4.0).sub_(rc).mul_(maxc_neq_r & ~maxc_eq_g)
    h = hr.add_(hg).add_(hb).mul_(1.0 / 6.0).add_(1.0).fmod_(1.0)
    return torch.stack((h, s, maxc), dim=-3)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """HSV ``[M, 3, H, W]`` -> RGB ``[M, 3, H, W]`` (inverse of :func:`rgb_to_hsv`, torchvision's formula).

    With sector ``i = floor(6h) mod 6`` the channels pick from ``(v, p, q, t)``: r = (v, q, p, p, t, v)[i],
    g = (t, v, v, q, p, p)[i], b = (p, p, t, v, v, q)[i] (selected with ``where`` instead of a gather).
    """
    h, s, v = x.unbind(dim=-3)
    h6 = h * 6.0
    i = torch.floor(h6)
    f = h6 - i
    i = i.to(torch.int32).remainder_(6)
    sxf = s * f
    one_minus_s = 1.0 - s
    q = (1.0 - sxf).mul_(v).clamp_(0.0, 1.0)
    t = (sxf + one_minus_s).mul_(v).clamp_(0.0, 1.0)
    p = (one_minus_s * v).clamp_(0.0, 1.0)
    r = torch.where((i == 0) | (i == 5), v, torch.where(i == 1, q, torch.where(i == 4, t, p)))
    g = torch.where(i == 0, t, torch.where((i == 1) | (i == 2), v, torch.where(i == 3, q, p)))
    b = torch.where(i == 2, t, torch.where((i == 3) | (i == 4), v, torch.where(i == 5, q, p)))
    return torch.stack((r, g, b), dim=-3)


def adjust_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of each image by ``shift[m]`` (fraction of a turn, in [-0.5, 0.5])."""
    hsv = rgb_to_hsv(x)
    h, s, v = hsv.unbind(dim=-3)
    h = (h + shift.reshape(-1, 1, 1)).remainder_(1.0)
    return hsv_to_rgb(torch.stack((h, s, v), dim=-3))


def gaussian_kernels(sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels ``[M, k]`` for ``sigma: [M]`` (torchvision's sampling grid)."""
    lim = (kernel_size - 1) / (2.0 * math.sqrt(2.0))
    grid = torch.linspace(-lim, lim, steps=kernel_size, dtype=sigma.dtype, device=sigma.device)
    return torch.softmax(-((grid[None, :] / sigma[:, None]) ** 2), dim=-1)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Per-sample separable Gaussian blur with reflect padding (``sigma: [M]``, odd ``kernel_size``).

    Implemented as two depthwise (grouped) convolutions over the ``M * C`` channels of a single batch item.
    """
    m, c, h, w = x.shape
    pad = kernel_size // 2
    k1 = gaussian_kernels(sigma.to(x.dtype), kernel_size).repeat_interleave(c, dim=0)  # [M*C, k]
    y = F.pad(x.reshape(1, m * c, h, w), (pad, pad, pad, pad), mode="reflect")
    y = F.conv2d(y, k1[:, None, None, :], groups=m * c)  # along W
    y = F.conv2d(y, k1[:, None, :, None], groups=m * c)  # along H
    return y.reshape(m, c, h, w)


def solarize(x: torch.Tensor) -> torch.Tensor:
    """Invert values whose uint8 rounding is ``>= 128`` (see :data:`SOLARIZE_THRESHOLD_255`)."""
    return torch.where(x * 255.0 >= SOLARIZE_THRESHOLD_255, 1.0 - x, x)


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``(x - mean[c]) / std[c]`` for ``x: [..., 3, H, W]`` and ``mean, std: [3]``."""
    return (x - mean.reshape(3, 1, 1)) / std.reshape(3, 1, 1)
