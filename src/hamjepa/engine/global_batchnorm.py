"""Batch normalisation with global-batch statistics on any backend (CPU/gloo included).

``torch.nn.SyncBatchNorm`` only runs on GPUs. :class:`GlobalBatchNorm` computes the per-channel sum and
sum of squares, all-reduces them with the autograd-aware :func:`hamjepa.distributed.all_reduce_sum`, and
normalises with the global mean and biased variance, so forward values and gradients equal those of a
single process holding the whole batch. The engine uses native ``SyncBatchNorm`` on CUDA and this module
elsewhere (e.g. CPU tests of distributed equivalence).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hamjepa.distributed import all_reduce_sum
from hamjepa.numerics import upcast


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over ``[N, C, *]`` inputs whose training statistics span every rank's batch."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"GlobalBatchNorm expects [N, C, ...] input, got shape {tuple(x.shape)}")

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        if not (self.training or not self.track_running_stats):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        c = x.shape[1]
        shape = [1, c] + [1] * (x.dim() - 2)
        xf = upcast(x)
        # Two passes (global mean, then global sum of squared deviations) instead of E[x^2] - E[x]^2,
        # which cancels catastrophically in float32 when |mean| >> std.
        count = torch.full((1,), float(x.numel() // c), device=x.device)
        first = all_reduce_sum(torch.cat([xf.sum(dims), count]))
        n = first[-1]
        mean = first[:c] / n
        centred = xf - mean.reshape(shape)
        var = all_reduce_sum(centred.square().sum(dims)) / n
        if self.training and self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * n / (n - 1).clamp_min(1)
                self.running_mean.mul_(1 - m).add_(mean.to(self.running_mean.dtype), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.to(self.running_var.dtype), alpha=m)
        y = centred * torch.rsqrt(var.reshape(shape) + self.eps)
        if self.affine:
            y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
        return y.to(x.dtype)


def convert_to_global_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm1d/2d/3d`` in ``module`` by :class:`GlobalBatchNorm` (weights and buffers kept)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        ref = module.weight if module.affine else module.running_mean
        factory = {"device": ref.device, "dtype": ref.dtype} if ref is not None else {}
        new = GlobalBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats, **factory
        )
        with torch.no_grad():
            if module.affine:
                new.weight.copy_(module.weight)
                new.bias.copy_(module.bias)
            if module.track_running_stats:
                new.running_mean.copy_(module.running_mean)
                new.running_var.copy_(module.running_var)
                new.num_batches_tracked.copy_(module.num_batches_tracked)
        new.train(module.training)
        return new
    for name, child in module.named_children():
        setattr(module, name, convert_to_global_batchnorm(child))
    return module
