"""Deterministic seeds derived from (seed, epoch, step, ...): every batch is reproducible on its own."""

from __future__ import annotations

import torch

from hamjepa.seeding import mix_seed

TAG_PERMUTATION = 0
TAG_AUGMENT = 1
TAG_CROP = 2


def derive_seed(*parts: int) -> int:
    """A 63-bit seed mixing non-negative integers ``parts`` (:func:`hamjepa.seeding.mix_seed`; host only)."""
    if any(int(p) < 0 for p in parts):
        raise ValueError(f"seed parts must be non-negative integers, got {parts}")
    return mix_seed(*parts)


def make_generator(device: torch.device | str, *parts: int) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with :func:`derive_seed` of ``parts``."""
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(derive_seed(*parts))
    return gen


def epoch_permutation(num_samples: int, seed: int, epoch: int) -> torch.Tensor:
    """int64 ``[num_samples]`` shuffle of ``epoch`` (CPU generator: identical on every device and rank)."""
    return torch.randperm(num_samples, generator=make_generator("cpu", seed, epoch, TAG_PERMUTATION))
