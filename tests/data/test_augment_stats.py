"""Augmented real CIFAR-100 batches and ImageFolder (ImageNet-style) views have the per-view statistics of
torchvision's CPU pipeline."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from hamjepa.data.augment import (
    CIFAR100_MEAN,
    CIFAR100_STD,
    cifar100_augment,
    imagenet_augment,
)
from hamjepa.data.reference import torchvision_imagenet_view
from hamjepa.data.sources import load_packed

N_IMAGES = 1000


def _torchvision_pipeline() -> v2.Compose:
    """Spec A.2 on float images (solarize at 0.5 = 127.5/255, the float form of the uint8 threshold)."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(32, scale=(0.3, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
            v2.RandomHorizontalFlip(0.5),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            v2.RandomGrayscale(0.2),
            v2.RandomApply([v2.GaussianBlur(3, sigma=(0.1, 2.0))], p=0.5),
            v2.RandomSolarize(0.5, p=0.2),
            v2.Normalize(list(CIFAR100_MEAN), list(CIFAR100_STD)),
        ]
    )


def _per_view_moments(views: torch.Tensor) -> dict[str, np.ndarray]:
    """views [n, 3, S, S] -> per-view statistics, each [n, 3] float64.

    Channel means and second moments (the per-channel mean/std of the batch), the spread around the
    pixel's channel mean (sensitive to grayscale and saturation), and the squared horizontal gradient
    (sensitive to blur and crop scale).
    """
    v = views.double()
    return {
        "mean": v.mean(dim=(2, 3)).numpy(),
        "second moment": (v**2).mean(dim=(2, 3)).numpy(),
        "channel spread": ((v - v.mean(dim=1, keepdim=True)) ** 2).mean(dim=(2, 3)).numpy(),
        "gradient energy": ((v[..., 1:] - v[..., :-1]) ** 2).mean(dim=(2, 3)).numpy(),
    }


@pytest.mark.realdata
def test_channel_statistics_match_torchvision_cpu_pipeline(cifar100_npz: Path) -> None:
    splits = load_packed(cifar100_npz)
    pick = np.random.default_rng(0).choice(len(splits.x_train), N_IMAGES, replace=False)
    u8 = torch.from_numpy(splits.x_train[pick]).permute(0, 3, 1, 2).contiguous()

    ours = cifar100_augment()(u8, torch.Generator().manual_seed(0))[0]  # view 0: [N, 3, 32, 32]
    torch.manual_seed(0)
    tv = _torchvision_pipeline()
    x = u8.float() / 255.0
    theirs = torch.stack([tv(x[i]) for i in range(N_IMAGES)])

    stats_ours, stats_tv = _per_view_moments(ours), _per_view_moments(theirs)
    # paired by image: the image content cancels, the augmentation randomness remains
    for name, a in stats_ours.items():
        diff = a - stats_tv[name]
        se = diff.std(axis=0, ddof=1) / math.sqrt(N_IMAGES)
        assert (np.abs(diff.mean(axis=0)) < 4 * se).all(), (name, diff.mean(axis=0), se)
    m_ours, s_ours = stats_ours["mean"].mean(0), stats_ours["second moment"].mean(0)
    m_tv, s_tv = stats_tv["mean"].mean(0), stats_tv["second moment"].mean(0)
    np.testing.assert_allclose(np.sqrt(s_ours - m_ours**2), np.sqrt(s_tv - m_tv**2), rtol=0.03)


N_IMAGENET = 200
IMAGENET_AUGMENT = imagenet_augment  # module-level, so a mutation check can swap in a broken preset


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")
def test_imagefolder_stream_statistics_match_torchvision_pil_pipeline(shared_data: Path) -> None:
    """The ImageFolder train stream (worker crops + batched device ops) has the per-view statistics of the
    torchvision PIL pipeline on the same real JPEGs (paired by image, one view each)."""
    from PIL import Image

    from hamjepa.data.build import build_train_stream
    from hamjepa.data.seeding import epoch_permutation

    stream = build_train_stream(
        "imagefolder",
        shared_data / "imagenette-mini",
        batch_size=50,
        seed=0,
        device="cpu",
        num_workers=0,
        subset=N_IMAGENET,
        augment=IMAGENET_AUGMENT(n_global=1),
    )
    stream.set_epoch(0)
    ours = torch.cat([views[0] for views, _ in stream])  # [N, 3, 224, 224]
    order = epoch_permutation(N_IMAGENET, 0, 0).tolist()
    torch.manual_seed(0)
    tv = torchvision_imagenet_view()
    theirs = []
    for i in order:
        with Image.open(stream.source.samples[i][0]) as im:
            theirs.append(tv(im.convert("RGB")))
    theirs = torch.stack(theirs)

    stats_ours, stats_tv = _per_view_moments(ours), _per_view_moments(theirs)
    for name, a in stats_ours.items():
        diff = a - stats_tv[name]
        se = diff.std(axis=0, ddof=1) / math.sqrt(N_IMAGENET)
        assert (np.abs(diff.mean(axis=0)) < 4 * se).all(), (name, diff.mean(axis=0), se)
    m_ours, s_ours = stats_ours["mean"].mean(0), stats_ours["second moment"].mean(0)
    m_tv, s_tv = stats_tv["mean"].mean(0), stats_tv["second moment"].mean(0)
    np.testing.assert_allclose(np.sqrt(s_ours - m_ours**2), np.sqrt(s_tv - m_tv**2), rtol=0.05)
