"""One training step as a self-contained unit with explicit inputs.

:class:`TrainStep` holds what a step touches (the possibly DDP-wrapped model, optimiser, schedule, the
parameters to clip and the optional EMA target) and ``step(views, step_index)`` does the whole update:
target forward, forward, backward, gradient clipping, optimiser step, schedule step, the step of the
objective's auxiliary parameters (HamSIGReg's spectrum, on the same embeddings), EMA update. It does not
synchronise with the device; the loss and terms come back as device tensors. The AdamW update is
``optimizer.step()``, torch's own ``torch.optim.AdamW`` on every device (fused kernel on CUDA, step counters on
the device, no host read; foreach elsewhere, which reads each parameter's CPU step counter with ``item()`` to
compute its bias corrections: host values, no device sync). :class:`~hamjepa.engine.compiled_step.CompiledTrainStep`
is the same step as one compiled graph (``train.step=compiled``), whose update
:func:`~hamjepa.engine.optim.apply_adamw` rounds as torch's CPU AdamW does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hamjepa.engine.auxiliary import AuxiliaryOptimizer
from hamjepa.engine.module import JEPAModule, embed_views
from hamjepa.engine.schedule import WarmupCosineSchedule
from hamjepa.models.ema import update_ema


@dataclass
class StepOutput:
    """The detached loss (0-d) and the objective's named terms (detached 0-d device tensors)."""

    loss: Tensor
    terms: dict[str, Tensor]


class TrainStep:
    """Performs one optimisation step (docs/spec.md §G).

    Args:
        model: what is called for the loss, ``model(views, step, z_target) -> ObjectiveOutput`` (the
            :class:`~hamjepa.engine.module.JEPAModule` itself or its DDP wrapper).
        module: the unwrapped :class:`~hamjepa.engine.module.JEPAModule` (encoder, objective, dtypes).
        optimizer, scheduler: stepped once per call.
        clip_params: parameters whose global grad-norm is clipped to ``clip_grad_norm`` (None = no clipping).
        target_encoder: EMA copy of the encoder (BiJEPA) or None; updated with the objective's momentum.
        auxiliary: the optimiser of the objective's auxiliary parameters (HamSIGReg's spectrum) or None; stepped
            after the encoder's update on the same step's embeddings, detached (docs/spec.md §E.4.1).
    """

    def __init__(
        self,
        model: nn.Module,
        module: JEPAModule,
        optimizer: torch.optim.Optimizer,
        scheduler: WarmupCosineSchedule,
        *,
        clip_params: list[nn.Parameter],
        clip_grad_norm: float | None,
        target_encoder: nn.Module | None = None,
        auxiliary: AuxiliaryOptimizer | None = None,
    ) -> None:
        self.model = model
        self.module = module
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.clip_params = clip_params
        self.clip_grad_norm = clip_grad_norm
        self.target_encoder = target_encoder
        self.auxiliary = auxiliary if auxiliary is not None and auxiliary.active else None

    @staticmethod
    def batches(
        stream: Iterable[tuple[Tensor | list[Tensor], Tensor]],
    ) -> Iterator[tuple[Tensor | list[Tensor], Tensor]]:
        """The batches this step takes: the stream's ``(views, labels)``."""
        return iter(stream)

    def __call__(self, views: Tensor | list[Tensor], step: int) -> StepOutput:
        """Update the parameters on one batch of views; ``step`` = optimiser steps done before this one."""
        z_target = None
        if self.target_encoder is not None:
            with torch.no_grad():
                z_target = embed_views(
                    self.target_encoder,
                    views,
                    channels_last=self.module.channels_last,
                    amp_dtype=self.module.amp_dtype,
                    input_dtype=self.module.input_dtype,
                )
        z: Tensor | None = None
        if self.auxiliary is None:
            out = self.model(views, step, z_target)
        else:
            out, z = self.model(views, step, z_target, return_embeddings=True)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if self.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.clip_params, self.clip_grad_norm, foreach=True)
        self.optimizer.step()
        self.scheduler.step()
        if self.auxiliary is not None and z is not None:
            self.auxiliary.step(z, step)
        if self.target_encoder is not None:
            update_ema(self.target_encoder, self.module.encoder, self.module.objective.ema_momentum(step))
        return StepOutput(out.loss.detach(), out.terms)
