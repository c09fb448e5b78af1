"""Deterministic seeds derived from (seed, epoch, step, ...): every batch is reproducible on its own."""

from __future__ import annotations

import numpy as np
import torch

TAG_PERMUTATION = 0
TAG_AUGMENT = 1
TAG_CROP = 2


def derive_seed(*parts: int) -> int:
    """A 63-bit seed mixing non-negative integers ``parts`` (numpy ``SeedSequence``; host only, no sync)."""
    if any(int(p) < 0 for p in parts):
        raise ValueError(f"seed parts must be non-negative integers, got {parts}")
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0]
    return int(state) & ((1 << 63) - 1)


def make_generator(device: torch.device | str, *parts: int) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with :func:`derive_seed` of ``parts``."""
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(derive_seed(*parts))
    return gen


def epoch_permutation(num_samples: int, seed: int, epoch: int) -> torch.Tensor:
    """int64 ``[num_samples]`` shuffle of ``epoch`` (CPU generator: identical on every device and rank)."""
    return torch.randperm(num_samples, generator=make_generator("cpu", seed, epoch, TAG_PERMUTATION))
