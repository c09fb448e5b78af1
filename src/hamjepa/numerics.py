"""Precision policy shared by the predictors, objectives and regularisers.

Losses and statistics are computed in float32 whatever the autocast dtype of the encoder output (bf16 on
GPUs), as in the paper's code; float64 inputs stay float64, so numerical tests (Jacobians, exact
distributed-equivalence checks) can run the same code in double precision.
"""

from __future__ import annotations

import torch
from torch import Tensor


def upcast(x: Tensor) -> Tensor:
    """``x`` in float32, or unchanged when it is already float64."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()
