"""The trained module: encoder + objective, with the one-forward view embedding of docs/spec.md §A.4."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import Tensor, nn

from hamjepa.objectives.base import Objective


def embed_views(
    encoder: nn.Module | Callable[[Tensor], Tensor],
    views: Tensor | list[Tensor],
    *,
    channels_last: bool,
    amp_dtype: torch.dtype | None,
    input_dtype: torch.dtype | None = None,
) -> Tensor:
    """``[V, B, 3, S, S]`` -> ``z: [V, B, D]`` with one encoder forward over all views (docs/spec.md §A.4).

    ``views`` may also be a list of such tensors, one per view size (global views first, then local ones);
    each size is encoded in one forward and the embeddings are concatenated along ``V``. The encoder runs
    under ``autocast(amp_dtype)`` when one is given (bf16 on CUDA); ``input_dtype`` casts the views first
    (float64 runs).
    """
    if isinstance(views, (list, tuple)):
        return torch.cat(
            [
                embed_views(encoder, g, channels_last=channels_last, amp_dtype=amp_dtype, input_dtype=input_dtype)
                for g in views
            ]
        )
    v, b = views.shape[:2]
    x = views.reshape(v * b, *views.shape[2:])
    if input_dtype is not None:
        x = x.to(input_dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(device_type=x.device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
    with autocast:
        z = encoder(x)
    return z.reshape(v, b, -1)


class JEPAModule(nn.Module):
    """Encoder + objective as one module, so DDP synchronises the predictor's gradients too.

    ``forward(views [V, B, 3, S, S], step, z_target=None) -> ObjectiveOutput``: the views are embedded, the
    objective makes the step's draws (``objective.draw(step, z.shape, device)``) and evaluates
    ``objective(z, ctx, z_target)``. The encoder runs under ``autocast`` (bf16 on CUDA when configured); the
    objective runs outside it (docs/spec.md §G.1).
    """

    def __init__(
        self,
        encoder: nn.Module,
        objective: Objective,
        *,
        channels_last: bool,
        amp_dtype: torch.dtype | None,
        input_dtype: torch.dtype | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.objective = objective
        self.channels_last = channels_last
        self.amp_dtype = amp_dtype
        self.input_dtype = input_dtype
        self.encode: nn.Module | Callable[[Tensor], Tensor] = encoder  # replaced by a compiled wrapper if asked

    def embed(self, views: Tensor | list[Tensor]) -> Tensor:
        """``[V, B, 3, S, S]`` -> ``z: [V, B, D]``."""
        return embed_views(
            self.encode, views, channels_last=self.channels_last, amp_dtype=self.amp_dtype, input_dtype=self.input_dtype
        )

    def forward(
        self,
        views: Tensor | list[Tensor],
        step: int,
        z_target: Tensor | None = None,
        *,
        return_embeddings: bool = False,
    ):
        """Embed the views and evaluate the objective; with ``return_embeddings`` also the embeddings, detached
        (``(output, z)``: the engine's auxiliary step uses them after the encoder's update)."""
        z = self.embed(views)
        ctx = self.objective.draw(step, tuple(z.shape), z.device)
        out = self.objective(z, ctx, z_target)
        return (out, z.detach()) if return_embeddings else out
