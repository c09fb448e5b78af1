"""One captured training step (``train.step=compiled``).

The eager step dispatches ~2,000 small operators from Python per step (augmentation, encoder, objective,
backward, clipping, AdamW), which costs more host time than an H100 needs for the encoder. Here the
whole step is one ``torch.compile(fullgraph=True)`` graph:

    uint8 batch + augmentation uniforms
      -> augmentation parameters and views (:meth:`MultiViewAugment.params_from_draws` / ``apply``)
      + the objective's draws of the step (:meth:`Objective.draw`, made on the host, passed in as inputs)
      -> encoder -> objective (``forward(z, ctx)``)
      -> gradients (``torch.autograd.grad``, traced: ``torch._dynamo.config.trace_autograd_ops``)
      -> clipping (:func:`clip_grads_`) -> AdamW (:func:`adamw_step_`)

BatchNorm running statistics are updated inside the graph; the learning rates are device tensors refreshed
from the (unchanged) :class:`~hamjepa.engine.schedule.WarmupCosineSchedule` before each call. What stays
outside the graph, on the host, is only what cannot be traced: drawing the augmentation uniforms from the
per-step ``torch.Generator`` (:meth:`DeviceResidentStream.raw_batch_at`), the objective's per-step host work
(:meth:`Objective.draw`: SIGReg directions, log-det projections; its tensors enter the graph as inputs, in the
order of their names, and the :class:`~hamjepa.objectives.base.StepContext` is rebuilt inside) and the gather of
the batch. Nothing in or around the step synchronises with the device. Inside the graph ``ctx.step`` is
:data:`GRAPH_STEP` (-1): a Python step would recompile the graph every step, so an objective's ``forward``
takes everything that depends on the step from ``ctx.draws``.

Inside the graph the maths is the eager step's: :func:`~hamjepa.engine.optim.adamw_step_` rounds as the
``torch.optim.AdamW`` the eager step runs on the CPU (equal bit for bit, traced op by op) and
:func:`~hamjepa.engine.optim.clip_grads_` reproduces ``torch.nn.utils.clip_grad_norm_`` (proved equal in
float64 by the tests), and the optimiser state lives in the ``torch.optim.AdamW`` object in its own format, so
checkpoints are the same in both modes and a run can be resumed in either.

Shapes are static: the stream drops the last partial batch (``drop_last``, as the paper's loader does) and
all views have one size. On CUDA the graph is compiled with ``mode="reduce-overhead"`` (CUDA graphs); the
optimiser state and learning-rate tensors are marked as static addresses for that.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from hamjepa.data.augment import AugmentDraws
from hamjepa.data.loader import DeviceResidentStream, stack_views
from hamjepa.engine.module import JEPAModule
from hamjepa.engine.optim import AdamWGroup, adamw_groups, apply_adamw, clip_grads_
from hamjepa.engine.schedule import WarmupCosineSchedule
from hamjepa.engine.step import StepOutput
from hamjepa.errors import HamjepaError
from hamjepa.objectives.base import StepContext

DEFAULT_BACKEND = "inductor"
"""``torch.compile`` backend of the compiled step (tests switch to ``aot_eager``: same graph, no code generation)."""

STEP_MODES: tuple[str, ...] = ("eager", "compiled")
"""Values of ``train.step``: ``eager`` (plain PyTorch, every op dispatched from Python) or ``compiled``
(the whole step as one compiled graph, CUDA graphs on CUDA)."""


GRAPH_STEP = -1
"""``ctx.step`` inside the compiled graph (the step's values travel in ``ctx.draws``)."""


class CompiledStepError(HamjepaError):
    """A run asks for ``train.step=compiled`` in a setting the compiled step does not support."""


# ---------------------------------------------------------------------------------------------- the step
class CompiledTrainStep:
    """The whole training step of one run as one compiled graph; a drop-in for :class:`TrainStep`.

    Args:
        module: the run's :class:`~hamjepa.engine.module.JEPAModule` (not DDP-wrapped), in train mode.
        stream: the run's :class:`~hamjepa.data.loader.DeviceResidentStream` (its augmentation must make
            views of one size).
        optimizer: the run's ``torch.optim.AdamW`` (groups with ``lr`` set by the schedule; its ``state``
            holds the moments and step counters, created on first use in torch's format).
        scheduler: stepped once per call.
        clip_params: parameters whose gradients are clipped together.
        clip_grad_norm: ``optim.clip_grad_norm`` (None = no clipping).
        backend, mode: ``torch.compile`` backend and mode; default :data:`DEFAULT_BACKEND` (``inductor``) with
            ``reduce-overhead``
            (CUDA graphs) on CUDA and the default mode on CPU. Tests use ``aot_eager`` to check that the
            step traces as one graph without paying for code generation.

    ``batches(stream)`` yields ``((images uint8 [B, 3, H, W], draws), labels)`` and calling the object on
    such a batch and the step index returns a :class:`~hamjepa.engine.step.StepOutput` (fresh tensors, safe
    to keep across steps).
    """

    def __init__(
        self,
        module: JEPAModule,
        stream: DeviceResidentStream,
        optimizer: torch.optim.Optimizer,
        scheduler: WarmupCosineSchedule,
        *,
        clip_params: list[nn.Parameter],
        clip_grad_norm: float | None,
        backend: str | Callable[..., Any] | None = None,
        mode: str | None = None,
    ) -> None:
        if not isinstance(stream, DeviceResidentStream):
            raise CompiledStepError(
                "train: train.step=compiled needs device-resident data (data.source=packed or torchvision); "
                "use train.step=eager."
            )
        augment = stream.augment
        if not augment.single_size:
            raise CompiledStepError(
                "train: train.step=compiled needs views of one size (static shapes), but the augmentation "
                f"makes views of sizes {[g.size for g in augment.groups]}; use train.step=eager."
            )
        if not isinstance(optimizer, torch.optim.AdamW):
            raise CompiledStepError("train: train.step=compiled needs the AdamW optimiser; use train.step=eager.")
        self.module = module
        self.augment = augment
        self.image_hw = (int(stream.images.shape[-2]), int(stream.images.shape[-1]))
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.clip_grad_norm = clip_grad_norm
        self.params: list[nn.Parameter] = [p for g in optimizer.param_groups for p in g["params"]]
        clip_ids = {id(p) for p in clip_params}
        self._clip_index = [i for i, p in enumerate(self.params) if id(p) in clip_ids]
        self.device = stream.device
        # one-element (not 0-d) tensors: dynamo would read a 0-d CPU tensor as a Python float (a sync per step)
        self._lrs = [torch.zeros(1, dtype=torch.float64, device=self.device) for _ in optimizer.param_groups]
        augment.norm_tensors(self.device, torch.float32)  # cached before tracing (the cache is not traced)
        self._draw_layout: AugmentDraws | None = None
        self._groups: list[AdamWGroup] | None = None
        self._embed_dim: int | None = None
        self._draw_names: tuple[str, ...] | None = None
        self.term_names: list[str] = []
        backend = DEFAULT_BACKEND if backend is None else backend
        if mode is None and self.device.type == "cuda" and backend == "inductor":
            mode = "reduce-overhead"
        self._compiled = torch.compile(self._step, fullgraph=True, backend=backend, mode=mode)

    # ------------------------------------------------------------------ host side
    @staticmethod
    def batches(stream: DeviceResidentStream) -> Iterator[tuple[tuple[Tensor, AugmentDraws], Tensor]]:
        """The stream's raw batches: ``((uint8 images, augmentation uniforms), labels)``."""
        for images, draws, labels in stream.raw_batches():
            yield (images, draws), labels

    def _prepare_state(self) -> None:
        """Read the optimiser's groups and state once, at the first step (after a resume has loaded them)."""
        if self._groups is not None:
            return
        self._groups = adamw_groups(self.optimizer)
        if self.device.type == "cuda":  # CUDA graphs: the state is updated in place at fixed addresses
            for g in self._groups:
                for t in (*g.exp_avgs, *g.exp_avg_sqs, *g.steps):
                    torch._dynamo.mark_static_address(t)
            for t in self._lrs:
                torch._dynamo.mark_static_address(t)

    def __call__(self, batch: tuple[Tensor, AugmentDraws], step: int) -> StepOutput:
        """Update the parameters on one raw batch; ``step`` = optimiser steps done before this one."""
        images, draws = batch
        self._prepare_state()
        for t, group in zip(self._lrs, self.optimizer.param_groups, strict=True):
            t.fill_(group["lr"])
        if self._draw_layout is None:
            self._draw_layout = draws
        if self._embed_dim is None:
            self._embed_dim = int(self.module.encoder.output_dim(images.shape[-1]))
        z_shape = (self.augment.num_views, images.shape[0], self._embed_dim)
        ctx = self.module.objective.draw(step, z_shape, images.device)
        names = tuple(sorted(ctx.draws))
        if self._draw_names is None:
            self._draw_names = names
        elif names != self._draw_names:
            raise CompiledStepError(
                f"train: the objective's draws changed from {list(self._draw_names)} to {list(names)} between "
                "steps; the compiled step needs the same draws every step (use train.step=eager)"
            )
        with _tracing_autograd():
            packed = self._compiled(images, draws.tensors(), [ctx.draws[n] for n in names])
        packed = packed.clone()  # CUDA-graph outputs are overwritten by the next replay
        self.scheduler.step()
        values = packed.unbind()
        return StepOutput(values[0], dict(zip(self.term_names, values[1:], strict=True)))

    # ------------------------------------------------------------------ traced
    def _step(self, images: Tensor, draw_tensors: list[Tensor], objective_draws: list[Tensor]) -> Tensor:
        if self._draw_layout is None or self._groups is None or self._draw_names is None:
            raise CompiledStepError("train: internal error, the compiled step ran before its first batch")
        draws = self._draw_layout.with_tensors(draw_tensors)
        h, w = self.image_hw
        views = stack_views(self.augment.apply(images, self.augment.params_from_draws(draws, h, w)))
        ctx = StepContext(GRAPH_STEP, dict(zip(self._draw_names, objective_draws, strict=True)))
        out = self.module.objective(self.module.embed(views), ctx)
        grads = list(torch.autograd.grad(out.loss, self.params, allow_unused=True))
        with torch.no_grad():
            if self.clip_grad_norm is not None:
                clipped = [grads[i] for i in self._clip_index]
                clip_grads_([g for g in clipped if g is not None], self.clip_grad_norm)
            apply_adamw(self._groups, grads, self._lrs)
        self.term_names = list(out.terms)
        return torch.stack([out.loss.detach(), *(t.to(out.loss.dtype) for t in out.terms.values())])


@contextlib.contextmanager
def _tracing_autograd():
    """Let dynamo trace ``torch.autograd.grad`` into the graph (instead of breaking it)."""
    with torch._dynamo.config.patch(trace_autograd_ops=True):
        yield
