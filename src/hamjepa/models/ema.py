"""Exponential-moving-average (EMA) target encoders, as used by BiJEPA / classic JEPA.

The target encoder is a frozen deep copy of the online encoder that is only ever changed by
:func:`update_ema` after each optimiser step::

    theta_target <- momentum * theta_target + (1 - momentum) * theta_online

Only **parameters** are averaged (BiJEPA paper, Sec. 3). Buffers (e.g. BatchNorm running statistics,
step counters) are not averaged: by default they are **copied** from the online encoder, so that a
target encoder evaluated in ``eval()`` mode uses the same normalisation statistics as the online one;
pass ``copy_buffers=False`` to leave the target's buffers untouched instead.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["make_target_encoder", "update_ema"]


def make_target_encoder(online: nn.Module) -> nn.Module:
    """Return a deep copy of ``online`` with every parameter frozen (``requires_grad=False``).

    The copy keeps ``online``'s train/eval mode; callers usually keep it in the same mode as the
    online encoder.
    """
    target = copy.deepcopy(online)
    for parameter in target.parameters():
        parameter.requires_grad_(False)
    return target


@torch.no_grad()
def update_ema(target: nn.Module, online: nn.Module, momentum: float, *, copy_buffers: bool = True) -> None:
    """In-place EMA update ``target <- momentum * target + (1 - momentum) * online`` over parameters.

    Args:
        target: the EMA copy (same architecture as ``online``; see :func:`make_target_encoder`).
        online: the trained encoder.
        momentum: ``tau`` in ``[0, 1]``; 1 keeps the target fixed, 0 copies the online weights.
        copy_buffers: copy the online buffers into the target (True) or leave them as they are (False).

    Raises:
        ValueError: for a momentum outside ``[0, 1]`` or mismatched parameter/buffer lists.
    """
    if not 0.0 <= float(momentum) <= 1.0:
        raise ValueError(f"momentum must lie in [0, 1], got {momentum}; BiJEPA uses 0.995 (sequences) or 0.99")
    target_params = list(target.parameters())
    online_params = list(online.parameters())
    if len(target_params) != len(online_params):
        raise ValueError(
            f"target has {len(target_params)} parameters but online has {len(online_params)}; "
            "build the target with make_target_encoder(online)"
        )
    for t, o in zip(target_params, online_params, strict=True):
        if t.shape != o.shape:
            raise ValueError(f"parameter shape mismatch: target {tuple(t.shape)} vs online {tuple(o.shape)}")
    if target_params:
        # lerp(t, o, w) = t + w (o - t) = (1 - w) t + w o with w = 1 - momentum.
        torch._foreach_lerp_(target_params, [o.detach() for o in online_params], 1.0 - float(momentum))
    if copy_buffers:
        target_buffers = list(target.buffers())
        online_buffers = list(online.buffers())
        if len(target_buffers) != len(online_buffers):
            raise ValueError(
                f"target has {len(target_buffers)} buffers but online has {len(online_buffers)}; "
                "build the target with make_target_encoder(online)"
            )
        for t, o in zip(target_buffers, online_buffers, strict=True):
            t.copy_(o)
