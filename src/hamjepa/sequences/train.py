"""Two-view training of the dynamics benchmark on the engine's step.

One step (``bijepa_lejepa.md`` Sec. 1.1) is :class:`hamjepa.engine.step.TrainStep`, the step every
``hamjepa train`` run takes: embed context ``x`` and target ``y`` (``z [2, B, D]``) with the online encoder
and, when the objective asks for one, with the EMA target encoder under no-grad (``z_target [2, B, D]``),
evaluate the objective, AdamW step over encoder + objective parameters, then the EMA update of the target
encoder with ``objective.ema_momentum(step)``. This module only turns ``(x, y)`` pairs into the engine's
views and keeps the per-step history the benchmark reports.

The optimiser settings are an :class:`~hamjepa.config.OptimConfig` and the schedule is the engine's
(:func:`~hamjepa.engine.optim.build_scheduler`; the benchmark's config has no warm-up and a cosine floor equal
to the learning rate, i.e. the paper's constant learning rate). The AdamW the step drives is torch's fused
kernel, on the CPU too (:func:`benchmark_optimizer`): the kernel the benchmark's published numbers were
measured with. The engine's own CPU update is the same maths in another order of operations, so it would
change the numbers at round-off level (``tests/sequences/test_on_engine.py`` measures both).

Per-step terms stay tensors during training (no host synchronisation); they are stacked once at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hamjepa.config import OptimConfig
from hamjepa.engine.module import JEPAModule
from hamjepa.engine.optim import build_scheduler
from hamjepa.engine.step import TrainStep
from hamjepa.models.ema import make_target_encoder
from hamjepa.objectives.base import Objective
from hamjepa.sequences.encoders import has_batch_statistics

__all__ = ["PairTrainingResult", "benchmark_optimizer", "pair_views", "predict_forward", "train_pairs"]


@dataclass
class PairTrainingResult:
    """Outcome of :func:`train_pairs`.

    Attributes:
        encoder: the trained online encoder (eval mode).
        objective: the trained objective (holds the predictor(s); eval mode).
        target_encoder: the EMA target encoder, or None when the objective uses none.
        history: per-step 1-D float tensors ``[steps]``: ``loss``, every objective term and ``online_norm``
            (mean L2 norm of the online embeddings).
        seconds: wall-clock training time.
    """

    encoder: nn.Module
    objective: Objective
    target_encoder: nn.Module | None
    history: dict[str, Tensor]
    seconds: float


def pair_views(encoder: nn.Module, x: Tensor, y: Tensor) -> Tensor | list[Tensor]:
    """Context ``x [B, ...]`` and target ``y [B, ...]`` as the engine's views (what ``embed_views`` takes).

    Batch-independent encoders get one stacked ``[2, B, ...]`` tensor (one forward over both views, faster);
    encoders with BatchNorm get a list of two ``[1, B, ...]`` tensors, so each view is normalised with its
    own batch statistics (as in the paper). Either way the embedding is ``z [2, B, D]``.
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y need the same batch size, got {x.shape[0]} and {y.shape[0]}")
    if has_batch_statistics(encoder) or x.shape[1:] != y.shape[1:]:
        return [x.unsqueeze(0), y.unsqueeze(0)]
    return torch.stack([x, y])


def predict_forward(objective: Objective, z: Tensor) -> Tensor:
    """The objective's forward (context -> target) latent prediction ``[B, D] -> [B, D]``
    (:meth:`~hamjepa.objectives.base.Objective.predict` with ``direction=+1``).

    Gradients are enabled locally because the Hamiltonian predictor differentiates its potential; the result
    is detached.
    """
    with torch.enable_grad():
        out = objective.predict(z, 1)
    return out.detach()


class _OnlineNorm:
    """Forward hook on the online encoder: the mean L2 norm of the embeddings of one step (all views)."""

    def __init__(self) -> None:
        self.outputs: list[Tensor] = []

    def __call__(self, _module: nn.Module, _inputs: object, output: Tensor) -> None:
        self.outputs.append(output.detach())

    def pop(self) -> Tensor:
        z = self.outputs[0] if len(self.outputs) == 1 else torch.cat(self.outputs)
        self.outputs = []
        return z.norm(dim=-1).mean()


def benchmark_optimizer(optim: OptimConfig, module: nn.Module) -> tuple[torch.optim.AdamW, list[nn.Parameter]]:
    """Torch's fused AdamW over ``module``'s trainable parameters in the engine's group layout (one ``main``
    group with its ``base_lr`` for the schedule); returns it and the parameters gradient clipping sees.

    Raises:
        ValueError: for ``optim.predictor_lr`` (the benchmark trains one group).
    """
    if optim.predictor_lr is not None:
        raise ValueError("the dynamics benchmark trains one parameter group: set optim.predictor_lr=None")
    params = [p for p in module.parameters() if p.requires_grad]
    group = {"params": params, "base_lr": optim.lr, "lr": optim.lr, "name": "main"}
    optimizer = torch.optim.AdamW(
        [group], lr=optim.lr, betas=optim.betas, eps=optim.eps, weight_decay=optim.weight_decay, fused=True
    )
    return optimizer, params


def train_pairs(
    encoder: nn.Module,
    objective: Objective,
    batches: Callable[[], Iterator[tuple[Tensor, Tensor]]] | Iterator[tuple[Tensor, Tensor]],
    *,
    steps: int,
    optim: OptimConfig,
    on_step: Callable[[int], None] | None = None,
) -> PairTrainingResult:
    """Train ``encoder`` + ``objective`` for ``steps`` engine steps on ``(x, y)`` pairs (on the CPU).

    Args:
        encoder: online encoder ``[B, ...] -> [B, D]``.
        objective: a two-view :class:`Objective` (``z [2, B, D]``; BiJEPA also receives ``z_target``).
        batches: an iterator of ``(x [B, ...], y [B, ...])`` pairs (or a factory returning one) yielding
            at least ``steps`` pairs.
        steps: number of optimiser steps (>= 1).
        optim: the AdamW settings and schedule (one epoch of ``steps`` steps; the benchmark's is constant).
        on_step: optional callback after every step (e.g. a progress-bar update).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    iterator = batches() if callable(batches) else batches
    module = JEPAModule(encoder, objective, channels_last=False, amp_dtype=None)
    optimizer, clip_params = benchmark_optimizer(optim, module)
    scheduler = build_scheduler(optim, optimizer, epochs=1, steps_per_epoch=steps)
    target = make_target_encoder(encoder) if objective.needs_target_encoder else None
    train_step = TrainStep(
        module,
        module,
        optimizer,
        scheduler,
        clip_params=clip_params,
        clip_grad_norm=optim.clip_grad_norm,
        target_encoder=target,
    )
    module.train()
    if target is not None:
        target.train()
    online_norm = _OnlineNorm()
    hook = encoder.register_forward_hook(online_norm)
    logged: dict[str, list[Tensor]] = {}
    start = time.perf_counter()
    try:
        for step in range(steps):
            try:
                x, y = next(iterator)
            except StopIteration:
                raise ValueError(f"batches ran out after {step} of {steps} steps") from None
            out = train_step(pair_views(encoder, x, y), step)
            logged.setdefault("loss", []).append(out.loss)
            for key, value in out.terms.items():
                logged.setdefault(key, []).append(value.detach().float().reshape(()))
            logged.setdefault("online_norm", []).append(online_norm.pop())
            if on_step is not None:
                on_step(step)
    finally:
        hook.remove()
    seconds = time.perf_counter() - start
    module.eval()
    if target is not None:
        target.eval()
    history = {key: torch.stack(values).float() for key, values in logged.items()}
    return PairTrainingResult(
        encoder=encoder, objective=objective, target_encoder=target, history=history, seconds=seconds
    )
