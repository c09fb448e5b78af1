"""A compact CPU training loop for two-view JEPA objectives (BiJEPA / classic JEPA / HamJEPA).

One step (``bijepa_lejepa.md`` Sec. 1.1): encode context ``x`` and target ``y`` with the online encoder
(``z [2, B, D]``), with the EMA target encoder under no-grad when the objective asks for one
(``z_target [2, B, D]``), compute the objective, AdamW step over encoder + objective parameters, then the
EMA update of the target encoder with ``objective.ema_momentum(step)``.

Per-step terms stay tensors during training (no host synchronisation); they are stacked once at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hamjepa.models.ema import make_target_encoder, update_ema
from hamjepa.objectives.base import Objective
from hamjepa.sequences.encoders import has_batch_statistics

__all__ = ["TrainResult", "encode_pair", "predict_forward", "train_two_view"]


@dataclass
class TrainResult:
    """Outcome of :func:`train_two_view`.

    Attributes:
        encoder: the trained online encoder (eval mode).
        objective: the trained objective (holds the predictor(s); eval mode).
        target_encoder: the EMA target encoder, or None when the objective uses none.
        history: per-step 1-D float tensors ``[steps]``: ``loss``, every objective term and ``embed_norm``
            (mean L2 norm of the online embeddings).
        seconds: wall-clock training time.
    """

    encoder: nn.Module
    objective: Objective
    target_encoder: nn.Module | None
    history: dict[str, Tensor]
    seconds: float


def encode_pair(encoder: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Embed context ``x [B, ...]`` and target ``y [B, ...]`` as ``z [2, B, D]``.

    Batch-independent encoders see one concatenated batch (faster); encoders with BatchNorm see the two
    halves separately, so each view is normalised with its own batch statistics (as in the paper).
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y need the same batch size, got {x.shape[0]} and {y.shape[0]}")
    if has_batch_statistics(encoder) or x.shape[1:] != y.shape[1:]:
        return torch.stack([encoder(x), encoder(y)])
    z = encoder(torch.cat([x, y]))
    return z.view(2, x.shape[0], -1)


def predict_forward(objective: nn.Module, z: Tensor) -> Tensor:
    """The objective's forward (context -> target) latent prediction ``[B, D] -> [B, D]``.

    Works for objectives with ``predict(z, direction)`` (BiJEPA) or a ``predictor`` module taking
    ``direction`` (HamJEPA / MLP-HJEPA). Gradients are enabled locally because the Hamiltonian predictor
    differentiates its potential; the result is detached.
    """
    with torch.enable_grad():
        if hasattr(objective, "predict"):
            out = objective.predict(z, 1)
        elif isinstance(getattr(objective, "predictor", None), nn.Module):
            out = objective.predictor(z, direction=1)
        else:
            raise ValueError(f"{type(objective).__name__} has neither predict() nor a predictor module")
    return out.detach()


def train_two_view(
    encoder: nn.Module,
    objective: Objective,
    batches: Callable[[], Iterator[tuple[Tensor, Tensor]]] | Iterator[tuple[Tensor, Tensor]],
    *,
    steps: int,
    lr: float,
    weight_decay: float,
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train ``encoder`` + ``objective`` for ``steps`` AdamW steps on ``(x, y)`` pairs.

    Args:
        encoder: online encoder ``[B, ...] -> [B, D]``.
        objective: a two-view :class:`Objective` (``forward(z [2,B,D], *, step, z_target)``).
        batches: an iterator of ``(x [B, ...], y [B, ...])`` pairs (or a factory returning one) yielding
            at least ``steps`` pairs.
        steps: number of optimiser steps (>= 1).
        lr, weight_decay: AdamW settings (no schedule, as in the paper).
        on_step: optional callback after every step (e.g. a progress-bar update).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    iterator = batches() if callable(batches) else batches
    params = [p for p in list(encoder.parameters()) + list(objective.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    target = make_target_encoder(encoder) if objective.needs_target_encoder else None
    encoder.train()
    objective.train()
    if target is not None:
        target.train()
    logged: dict[str, list[Tensor]] = {}
    start = time.perf_counter()
    for step in range(steps):
        try:
            x, y = next(iterator)
        except StopIteration:
            raise ValueError(f"batches ran out after {step} of {steps} steps") from None
        z = encode_pair(encoder, x, y)
        z_target = None
        if target is not None:
            with torch.no_grad():
                z_target = encode_pair(target, x, y)
        out = objective(z, step=step, z_target=z_target)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        if target is not None:
            update_ema(target, encoder, objective.ema_momentum(step))
        logged.setdefault("loss", []).append(out.loss.detach())
        for key, value in out.terms.items():
            logged.setdefault(key, []).append(value.detach().float().reshape(()))
        logged.setdefault("online_norm", []).append(z.detach().norm(dim=-1).mean())
        if on_step is not None:
            on_step(step)
    seconds = time.perf_counter() - start
    encoder.eval()
    objective.eval()
    if target is not None:
        target.eval()
    history = {key: torch.stack(values).float() for key, values in logged.items()}
    return TrainResult(encoder=encoder, objective=objective, target_encoder=target, history=history, seconds=seconds)
