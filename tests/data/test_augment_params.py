"""Sampled parameter distributions match torchvision's samplers and the docs/spec.md §A.2 probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from hamjepa.data.augment import cifar100_augment, imagenet_augment
from hamjepa.data.augment_params import sample_crop_params

RATIO = (3 / 4, 4 / 3)


def _ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    grid = np.union1d(a, b)
    ca = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cb = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(ca - cb).max())


def _torchvision_boxes(n: int, h: int, w: int, scale) -> np.ndarray:
    torch.manual_seed(0)
    t = v2.RandomResizedCrop(size=8, scale=scale, ratio=RATIO)
    img = torch.zeros(1, h, w)
    boxes = [t.make_params([img]) for _ in range(n)]
    return np.array([[b["top"], b["left"], b["height"], b["width"]] for b in boxes], dtype=np.float64)


@pytest.mark.parametrize(("h", "w", "scale"), [(32, 32, (0.3, 1.0)), (24, 40, (0.05, 0.4)), (16, 40, (0.3, 1.0))])
def test_crop_area_and_log_ratio_match_torchvision(h: int, w: int, scale) -> None:
    n = 4000
    ref = _torchvision_boxes(n, h, w, scale)
    box = sample_crop_params(n, h, w, scale, RATIO, torch.Generator().manual_seed(1))
    ours = torch.stack([box.top, box.left, box.height, box.width], 1).double().numpy()
    assert (ours[:, 0] + ours[:, 2] <= h).all() and (ours[:, 1] + ours[:, 3] <= w).all()
    assert (ours >= 0).all() and (ours[:, 2:] >= 1).all()
    # KS critical value at alpha = 1e-3 for two samples of n: 1.95 * sqrt(2 / n) ~= 0.036
    crit = 1.95 * math.sqrt(2 / n)
    for name, fa, fb in [
        ("area", ours[:, 2] * ours[:, 3] / (h * w), ref[:, 2] * ref[:, 3] / (h * w)),
        ("log-ratio", np.log(ours[:, 3] / ours[:, 2]), np.log(ref[:, 3] / ref[:, 2])),
        ("top", ours[:, 0] / h, ref[:, 0] / h),
        ("left", ours[:, 1] / w, ref[:, 1] / w),
    ]:
        assert _ks_statistic(fa, fb) < crit, name
        se_mean = math.sqrt(fa.var() / n + fb.var() / n)
        assert abs(fa.mean() - fb.mean()) < 4 * se_mean + 1e-12, name
        # the values are discrete (integer boxes): compare the CDFs at torchvision's quantiles
        for q in (0.1, 0.25, 0.5, 0.75, 0.9):
            t = np.quantile(fb, q)
            pa, pb = (fa <= t).mean(), (fb <= t).mean()
            assert abs(pa - pb) < 4 * math.sqrt(2 * pb * (1 - pb) / n) + 1e-12, (name, q)


def test_crop_fallback_is_torchvision_central_crop() -> None:
    """An image too flat for any attempt falls back exactly like torchvision (whole height, max ratio)."""
    h, w, scale = 10, 100, (0.99, 1.0)
    box = sample_crop_params(50, h, w, scale, RATIO, torch.Generator().manual_seed(0))
    ref = _torchvision_boxes(5, h, w, scale)
    assert (ref == ref[0]).all()  # torchvision is deterministic here
    got = torch.stack([box.top, box.left, box.height, box.width], 1).numpy()
    assert (got == ref[0]).all(), (got[0], ref[0])


def _frac_close(mask: torch.Tensor, p: float) -> None:
    n = mask.numel()
    se = math.sqrt(p * (1 - p) / n)
    assert abs(mask.float().mean().item() - p) < 4 * se, (mask.float().mean().item(), p)


def test_op_probabilities_and_ranges() -> None:
    aug = cifar100_augment()
    p = aug.sample_params(10000, 32, 32, torch.Generator().manual_seed(3)).groups[0]  # 20000 views
    _frac_close(p.flip, 0.5)
    _frac_close(p.jitter, 0.8)
    _frac_close(p.grayscale, 0.2)
    _frac_close(p.blur, 0.5)
    _frac_close(p.solarize, 0.2)
    n = p.flip.numel()
    for t, lo, hi in [
        (p.brightness, 0.6, 1.4),
        (p.contrast, 0.6, 1.4),
        (p.saturation, 0.8, 1.2),
        (p.hue, -0.1, 0.1),
        (p.sigma, 0.1, 2.0),
    ]:
        assert lo <= t.min().item() and t.max().item() <= hi
        se = (hi - lo) / math.sqrt(12 * n)
        assert abs(t.mean().item() - (lo + hi) / 2) < 4 * se
        # uniform: the [lo, lo + 10%] bin holds ~10%
        _frac_close(t < lo + 0.1 * (hi - lo), 0.1)
    # every op ordering is a permutation, and the 24 orders are equally likely
    assert (p.jitter_order.sort(dim=1).values == torch.arange(4)).all()
    codes = (p.jitter_order * torch.tensor([64, 16, 4, 1])).sum(1)
    counts = torch.bincount(codes, minlength=256)[codes.unique()]
    assert counts.numel() == 24
    expected = n / 24
    assert ((counts - expected).abs() < 5 * math.sqrt(expected)).all()


def test_flags_are_independent_across_views_and_ops() -> None:
    p = cifar100_augment().sample_params(10000, 32, 32, torch.Generator().manual_seed(8)).groups[0]
    _frac_close(p.grayscale & p.solarize, 0.04)
    v0, v1 = p.blur[:10000], p.blur[10000:]
    _frac_close(v0 & v1, 0.25)  # no BYOL-style asymmetry, independent per view


def test_presets_follow_spec() -> None:
    c, i = cifar100_augment(), imagenet_augment(n_local=4)
    assert (c.groups[0].size, c.groups[0].scale, c.blur_kernel) == (32, (0.3, 1.0), 3)
    assert c.mean == (0.5071, 0.4867, 0.4408) and c.std == (0.2675, 0.2565, 0.2761)
    assert (i.groups[0].size, i.groups[0].scale, i.blur_kernel) == (224, (0.4, 1.0), 23)
    assert i.mean == (0.485, 0.456, 0.406) and i.std == (0.229, 0.224, 0.225)
    assert i.num_views == 6 and not i.single_size and i.groups[1].scale == (0.05, 0.4)


def test_same_generator_seed_same_params_and_views() -> None:
    aug = cifar100_augment()
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    a = aug(x, torch.Generator().manual_seed(5))
    b = aug(x, torch.Generator().manual_seed(5))
    c = aug(x, torch.Generator().manual_seed(6))
    assert a.shape == (2, 4, 3, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_select_images_shards_views_exactly() -> None:
    aug = cifar100_augment(n_global=2, n_local=2)
    x = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    params = aug.sample_params(6, 32, 32, torch.Generator().manual_seed(2))
    full = aug.apply(x, params)
    part = aug.apply(x[2:5], params.select_images(2, 5))
    for f, q in zip(full, part, strict=True):
        torch.testing.assert_close(f[:, 2:5], q, atol=1e-6, rtol=0)


def test_apply_after_crop_equals_apply_for_whole_image_crops() -> None:
    aug = cifar100_augment()
    aug.groups[0] = type(aug.groups[0])(2, 32, (1.0, 1.0))
    aug.settings = type(aug.settings)(**{**aug.settings.__dict__, "ratio": (1.0, 1.0)})
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    params = aug.sample_params(3, 32, 32, torch.Generator().manual_seed(2))
    assert (params.groups[0].height == 32).all()
    full = aug.apply(x, params)[0]
    after = aug.apply_after_crop([x[None].expand(2, -1, -1, -1, -1)], params)[0]
    torch.testing.assert_close(full, after, atol=1e-5, rtol=0)


def test_bad_inputs_raise_clear_errors() -> None:
    aug = cifar100_augment()
    with pytest.raises(ValueError, match=r"uint8 \[B, 3, H, W\]"):
        aug(torch.zeros(2, 32, 32, 3, dtype=torch.uint8), torch.Generator())
    with pytest.raises(ValueError, match="blur_kernel"):
        type(aug)(n_global=2, global_size=32, global_scale=(0.3, 1), blur_kernel=4, mean=aug.mean, std=aug.std)
    with pytest.raises(ValueError, match="forward_groups"):
        imagenet_augment(n_local=2)(torch.zeros(1, 3, 224, 224, dtype=torch.uint8), torch.Generator())
