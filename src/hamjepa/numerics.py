"""Precision policy shared by the predictors, objectives and regularisers.

Losses and statistics are computed in float32 whatever the autocast dtype of the encoder output (bf16 on
GPUs), as in the paper's code; float64 inputs stay float64, so numerical tests (Jacobians, exact
distributed-equivalence checks) can run the same code in double precision. :func:`full_fp32_matmuls` turns
TF32 off for evaluation and inference, which must not inherit the training's fast matmuls.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor


def upcast(x: Tensor) -> Tensor:
    """``x`` in float32, or unchanged when it is already float64."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


@contextmanager
def full_fp32_matmuls() -> Iterator[None]:
    """Run in true fp32 (docs/spec.md §H.1): TF32 matmuls/convolutions off for the duration, restored afterwards.

    Training enables TF32 for speed; evaluation in the same process (``reproduce``, ``train.eval_at_end``)
    must not inherit it, so that its numbers equal a standalone ``hamjepa eval``.
    """
    previous = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous
