"""Each batched op equals the torchvision.transforms.v2.functional op on every sample (same parameters)."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from hamjepa.data import augment_ops as ops
from hamjepa.data.augment import cifar100_augment
from hamjepa.data.augment_params import sample_crop_params


def _images(m: int, h: int = 12, w: int = 10, seed: int = 0) -> torch.Tensor:
    """float images on the uint8 grid, including flat regions (equal channels) to hit the HSV edge cases."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (m, 3, h, w), generator=g).float() / 255.0
    x[:, :, :2, :2] = x[:, :1, :2, :2]  # gray pixels (max == min)
    x[:, 1, -1, :] = x[:, 0, -1, :]  # r == g rows
    return x


def _factors(m: int, lo: float, hi: float, seed: int = 1) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(m, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("ours", "theirs", "lo", "hi"),
    [
        (ops.adjust_brightness, TF.adjust_brightness, 0.6, 1.4),
        (ops.adjust_contrast, TF.adjust_contrast, 0.6, 1.4),
        (ops.adjust_saturation, TF.adjust_saturation, 0.8, 1.2),
        (ops.adjust_hue, TF.adjust_hue, -0.1, 0.1),
    ],
)
def test_colour_ops_match_torchvision_per_sample(ours, theirs, lo, hi) -> None:
    x, f = _images(6), _factors(6, lo, hi)
    got = ours(x, f)
    for m in range(6):
        torch.testing.assert_close(got[m], theirs(x[m], float(f[m])), atol=2e-6, rtol=0)


def test_hue_with_large_shift_matches_torchvision() -> None:
    x, f = _images(4, seed=3), torch.tensor([-0.5, -0.37, 0.29, 0.5])
    got = ops.adjust_hue(x, f)
    for m in range(4):
        torch.testing.assert_close(got[m], TF.adjust_hue(x[m], float(f[m])), atol=2e-6, rtol=0)


def test_grayscale_matches_torchvision() -> None:
    x = _images(3)
    got = ops.rgb_to_grayscale(x).expand_as(x)
    torch.testing.assert_close(got, TF.rgb_to_grayscale(x, num_output_channels=3), atol=0, rtol=0)


@pytest.mark.parametrize("kernel", [3, 23])
def test_blur_matches_torchvision_per_sample_sigma(kernel: int) -> None:
    x = _images(4, h=30, w=26)
    sigma = torch.tensor([0.1, 0.7, 1.3, 2.0])
    got = ops.gaussian_blur(x, sigma, kernel)
    for m in range(4):
        want = TF.gaussian_blur(x[m], [kernel, kernel], [float(sigma[m])] * 2)
        torch.testing.assert_close(got[m], want, atol=2e-6, rtol=0)


def test_solarize_equals_uint8_solarize_on_grid_values() -> None:
    u8 = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16).expand(1, 3, 16, 16)
    got = ops.solarize(u8.float() / 255.0)
    want = TF.solarize(u8, threshold=128)
    assert torch.equal((got * 255.0).round().to(torch.uint8), want)
    # and the float op with a 128/255 threshold agrees on grid values
    torch.testing.assert_close(got, TF.solarize(u8.float() / 255.0, threshold=128 / 255), atol=0, rtol=0)


def test_normalize_matches_torchvision() -> None:
    x = _images(2)
    mean, std = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)
    got = ops.normalize(x, torch.tensor(mean), torch.tensor(std))
    torch.testing.assert_close(got, TF.normalize(x, list(mean), list(std)), atol=1e-6, rtol=0)


@pytest.mark.parametrize(("h", "w", "size", "scale"), [(32, 32, 32, (0.3, 1.0)), (40, 52, 56, (0.05, 0.9))])
def test_crop_flip_matches_torchvision_resized_crop(h: int, w: int, size: int, scale) -> None:
    """One grid_sample == resized_crop (bilinear, antialias) + horizontal_flip when not downscaling."""
    n = 24
    x = _images(n, h=h, w=w, seed=5)
    g = torch.Generator().manual_seed(7)
    box = sample_crop_params(n, h, w, scale, (3 / 4, 4 / 3), g)
    flip = torch.arange(n) % 2 == 1
    got = ops.resized_crop_flip(x, box.top, box.left, box.height, box.width, flip, size)  # V=1
    assert got.shape == (1, n, 3, size, size)
    for m in range(n):
        t, left, bh, bw = (int(v[m]) for v in (box.top, box.left, box.height, box.width))
        want = TF.resized_crop(x[m], t, left, bh, bw, [size, size], antialias=True)
        if flip[m]:
            want = TF.horizontal_flip(want)
        torch.testing.assert_close(got[0, m], want, atol=2e-5, rtol=0)


def test_crop_flip_view_major_layout() -> None:
    """Entry v*B+b of the boxes crops image b and lands in output [v, b]."""
    x = _images(3, h=16, w=16)
    top = torch.tensor([0, 4, 8, 8, 0, 4])
    left = torch.tensor([0, 2, 4, 4, 6, 0])
    size_hw = torch.full((6,), 8)
    flip = torch.zeros(6, dtype=torch.bool)
    out = ops.resized_crop_flip(x, top, left, size_hw, size_hw, flip, 8)
    for v in range(2):
        for b in range(3):
            m = v * 3 + b
            want = x[b, :, top[m] : top[m] + 8, left[m] : left[m] + 8]
            torch.testing.assert_close(out[v, b], want, atol=1e-6, rtol=0)


def _reference_jitter(img: torch.Tensor, order, b, c, s, h) -> torch.Tensor:
    for op in order:
        if op == 0:
            img = TF.adjust_brightness(img, b)
        elif op == 1:
            img = TF.adjust_contrast(img, c)
        elif op == 2:
            img = TF.adjust_saturation(img, s)
        else:
            img = TF.adjust_hue(img, h)
    return img


def test_colour_jitter_follows_per_view_order() -> None:
    aug = cifar100_augment()
    n = 48  # 2 views x 24 images: every one of the 24 orders is likely present
    params = aug.sample_params(n // 2, 8, 8, torch.Generator().manual_seed(11)).groups[0]
    x = _images(n, h=8, w=8, seed=2)
    got = aug._colour_jitter(x, params)
    assert len({tuple(o.tolist()) for o in params.jitter_order}) > 12
    for m in range(n):
        if not params.jitter[m]:
            assert torch.equal(got[m], x[m])
            continue
        want = _reference_jitter(
            x[m],
            params.jitter_order[m].tolist(),
            float(params.brightness[m]),
            float(params.contrast[m]),
            float(params.saturation[m]),
            float(params.hue[m]),
        )
        torch.testing.assert_close(got[m], want, atol=1e-5, rtol=0)


def test_full_pipeline_matches_torchvision_composition_on_same_params() -> None:
    """apply() == per-sample torchvision ops in docs/spec.md §A.2 order with the sampled parameters."""
    aug = cifar100_augment()
    u8 = (_images(6, h=32, w=32, seed=9) * 255).round().to(torch.uint8)
    params = aug.sample_params(6, 32, 32, torch.Generator().manual_seed(4))
    out = aug.apply(u8, params)[0]  # [2, 6, 3, 32, 32]
    p = params.groups[0]
    x = u8.float() / 255.0
    for v in range(2):
        for b in range(6):
            m = v * 6 + b
            img = TF.resized_crop(
                x[b], int(p.top[m]), int(p.left[m]), int(p.height[m]), int(p.width[m]), [32, 32], antialias=True
            )
            if p.flip[m]:
                img = TF.horizontal_flip(img)
            if p.jitter[m]:
                img = _reference_jitter(
                    img,
                    p.jitter_order[m].tolist(),
                    float(p.brightness[m]),
                    float(p.contrast[m]),
                    float(p.saturation[m]),
                    float(p.hue[m]),
                )
            if p.grayscale[m]:
                img = TF.rgb_to_grayscale(img, num_output_channels=3)
            if p.blur[m]:
                img = TF.gaussian_blur(img, [3, 3], [float(p.sigma[m])] * 2)
            if p.solarize[m]:
                img = TF.solarize(img, threshold=0.5)
            img = TF.normalize(img, list(aug.mean), list(aug.std))
            torch.testing.assert_close(out[v, b], img, atol=1e-4, rtol=0)
