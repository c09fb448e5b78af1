"""One captured training step (``train.step=compiled``).

The eager step dispatches ~2,000 small operators from Python per step (augmentation, encoder, objective,
backward, clipping, AdamW), which costs more host time than an H100 needs for the encoder. Here the
whole step is one ``torch.compile(fullgraph=True)`` graph:

    uint8 batch + augmentation uniforms
      -> augmentation parameters and views (:meth:`MultiViewAugment.params_from_draws` / ``apply``)
      -> encoder -> objective (``forward(z, step=None)``)
      -> gradients (``torch.autograd.grad``, traced: ``torch._dynamo.config.trace_autograd_ops``)
      -> clipping (:func:`clip_grads_`) -> AdamW (:func:`adamw_step_`)

BatchNorm running statistics are updated inside the graph; the learning rates are device tensors refreshed
from the (unchanged) :class:`~hamjepa.engine.schedule.WarmupCosineSchedule` before each call. What stays
outside the graph, on the host, is only what cannot be traced: drawing the augmentation uniforms from the
per-step ``torch.Generator`` (:meth:`DeviceResidentStream.raw_batch_at`), the objective's per-step host work
(:meth:`Objective.prepare_step`: SIGReg directions, log-det projections) and the gather of the batch. Nothing
in or around the step synchronises with the device.

Inside the graph the maths is the eager step's: :func:`adamw_step_` and :func:`clip_grads_` reproduce
``torch.optim.AdamW`` and ``torch.nn.utils.clip_grad_norm_`` (proved equal in float64 by the tests), and the
optimiser state lives in the ``torch.optim.AdamW`` object in its own format, so checkpoints are the same in
both modes and a run can be resumed in either.

Shapes are static: the stream drops the last partial batch (``drop_last``, as the paper's loader does) and
all views have one size. On CUDA the graph is compiled with ``mode="reduce-overhead"`` (CUDA graphs); the
optimiser state and learning-rate tensors are marked as static addresses for that.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from hamjepa.data.augment import AugmentDraws, MultiViewAugment
from hamjepa.data.loader import stack_views
from hamjepa.errors import HamjepaError

STEP_MODES: tuple[str, ...] = ("eager", "compiled")
"""Values of ``train.step``: ``eager`` (plain PyTorch, every op dispatched from Python) or ``compiled``
(the whole step as one compiled graph, CUDA graphs on CUDA)."""


class CompiledStepError(HamjepaError):
    """A run asks for ``train.step=compiled`` in a setting the compiled step does not support."""


# ---------------------------------------------------------------------------------------------- maths
def clip_grads_(grads: list[Tensor], max_norm: float) -> Tensor:
    """Scale ``grads`` in place to a total 2-norm of at most ``max_norm``; returns the norm before clipping.

    The formula of ``torch.nn.utils.clip_grad_norm_`` (``coef = min(1, max_norm / (norm + 1e-6))``, applied
    unconditionally, no host check of finiteness) on a list of gradient tensors instead of ``p.grad``.
    """
    total = torch.nn.utils.get_total_norm(grads, 2.0, error_if_nonfinite=False, foreach=None)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.to(g.dtype))
    return total


def adamw_step_(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    steps: list[Tensor],
    *,
    lr: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One AdamW update in place, the maths of ``torch.optim.AdamW`` (non-amsgrad, non-maximize).

    ``p <- p (1 - lr wd)``; ``m <- lerp(m, g, 1 - b1)``; ``v <- b2 v + (1 - b2) g^2``;
    ``p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``. ``steps`` are the optimiser's
    per-parameter step counters (incremented here); the bias corrections are computed in float64 from them,
    as eager PyTorch does with Python floats. ``lr`` is a 0-d float64 tensor (no recompilation when it
    changes).
    """
    for p, g, m, v, t in zip(params, grads, exp_avgs, exp_avg_sqs, steps, strict=True):
        t.add_(1)
        t64 = t.to(torch.float64)
        p.mul_((1.0 - lr * weight_decay).to(p.dtype))
        m.lerp_(g, 1.0 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
        bias_correction1 = 1.0 - torch.pow(beta1, t64)
        bias_correction2_sqrt = torch.sqrt(1.0 - torch.pow(beta2, t64))
        step_size = (lr / bias_correction1).to(p.dtype)
        denom = (v.sqrt() / bias_correction2_sqrt.to(p.dtype)).add_(eps)
        p.sub_(step_size * (m / denom))


# ---------------------------------------------------------------------------------------------- the step
class CompiledTrainStep:
    """The whole training step of one run as one compiled graph.

    Args:
        module: the run's ``JEPAModule`` (``encoder``, ``objective``, ``embed``), in train mode.
        augment: the stream's augmentation (one view size).
        image_hw: ``(H, W)`` of the stored uint8 images.
        optimizer: the run's ``torch.optim.AdamW`` (parameter groups with ``lr`` set by the schedule; its
            ``state`` holds the moments and step counters, filled here on first use in torch's format).
        clip_params: parameters whose gradients are clipped together.
        clip_norm: ``optim.clip_grad_norm`` (None = no clipping).
        backend, mode: ``torch.compile`` backend and mode; default ``inductor`` with ``reduce-overhead``
            (CUDA graphs) on CUDA and the default mode on CPU. Tests use ``aot_eager`` to check that the
            step traces as one graph without paying for code generation.

    Call with ``(images uint8 [B, 3, H, W], draws, step)``; returns ``(loss, terms)`` with ``terms`` a 1-D
    tensor ordered like :attr:`term_names` (both fresh tensors, safe to keep across steps).
    """

    def __init__(
        self,
        module: nn.Module,
        augment: MultiViewAugment,
        image_hw: tuple[int, int],
        optimizer: torch.optim.Optimizer,
        clip_params: list[nn.Parameter],
        clip_norm: float | None,
        *,
        backend: str | Callable[..., Any] = "inductor",
        mode: str | None = None,
    ) -> None:
        if not augment.single_size:
            raise CompiledStepError(
                "train: train.step=compiled needs views of one size (static shapes), but the augmentation "
                f"makes views of sizes {[g.size for g in augment.groups]}; use train.step=eager."
            )
        if not isinstance(optimizer, torch.optim.AdamW):
            raise CompiledStepError("train: train.step=compiled needs the AdamW optimiser; use train.step=eager.")
        self.module = module
        self.augment = augment
        self.image_hw = image_hw
        self.optimizer = optimizer
        self.clip_norm = clip_norm
        self.params: list[nn.Parameter] = [p for g in optimizer.param_groups for p in g["params"]]
        clip_ids = {id(p) for p in clip_params}
        self._clip_index = [i for i, p in enumerate(self.params) if id(p) in clip_ids]
        self.device = self.params[0].device
        self._lrs = [torch.zeros((), dtype=torch.float64, device=self.device) for _ in optimizer.param_groups]
        augment.norm_tensors(self.device, torch.float32)  # cached before tracing (the cache is not traced)
        self._draw_layout: AugmentDraws | None = None
        self._state_ready = False
        self.term_names: list[str] = []
        if mode is None and self.device.type == "cuda" and backend == "inductor":
            mode = "reduce-overhead"
        self._compiled = torch.compile(self._step, fullgraph=True, backend=backend, mode=mode)

    # ------------------------------------------------------------------ host side
    def _ensure_state(self) -> None:
        """Create the AdamW moments and step counters (torch's format) where the optimiser has none yet.

        Step counters live on the parameter's device (as torch's fused/capturable AdamW keeps them), so the
        whole update runs on the device.
        """
        if self._state_ready:
            return
        for p in self.params:
            state = self.optimizer.state[p]
            if len(state) == 0:
                state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            elif state["step"].device != p.device:
                state["step"] = state["step"].to(p.device)
        if self.device.type == "cuda":
            for p in self.params:
                for t in self.optimizer.state[p].values():
                    torch._dynamo.mark_static_address(t)
            for t in self._lrs:
                torch._dynamo.mark_static_address(t)
        self._state_ready = True

    def __call__(self, images: Tensor, draws: AugmentDraws, step: int) -> tuple[Tensor, Tensor]:
        """Run training step ``step`` (0-indexed optimiser step) on one raw batch."""
        self._ensure_state()
        for t, group in zip(self._lrs, self.optimizer.param_groups, strict=True):
            t.fill_(group["lr"])
        if self._draw_layout is None:
            self._draw_layout = draws
        v = self.augment.num_views
        z_shape = (v, images.shape[0], self._embed_dim(images))
        self.module.objective.prepare_step(step, z_shape, images.device)
        with _tracing_autograd():
            packed = self._compiled(images, draws.tensors())
        packed = packed.clone()  # CUDA-graph outputs are overwritten by the next replay
        return packed[0], packed[1:]

    def _embed_dim(self, images: Tensor) -> int:
        if not hasattr(self, "_dim"):
            self._dim = int(self.module.encoder.output_dim(images.shape[-1]))
        return self._dim

    # ------------------------------------------------------------------ traced
    def _step(self, images: Tensor, draw_tensors: list[Tensor]) -> Tensor:
        assert self._draw_layout is not None
        draws = self._draw_layout.with_tensors(draw_tensors)
        h, w = self.image_hw
        views = stack_views(self.augment.apply(images, self.augment.params_from_draws(draws, h, w)))
        out = self.module.objective(self.module.embed(views), step=None)
        grads = list(torch.autograd.grad(out.loss, self.params, allow_unused=True))
        with torch.no_grad():
            if self.clip_norm is not None:
                clip_grads_([grads[i] for i in self._clip_index if grads[i] is not None], self.clip_norm)
            start = 0
            for lr, group in zip(self._lrs, self.optimizer.param_groups, strict=True):
                n = len(group["params"])
                used = [i for i in range(start, start + n) if grads[i] is not None]
                start += n
                states = [self.optimizer.state[self.params[i]] for i in used]
                beta1, beta2 = group["betas"]
                adamw_step_(
                    [self.params[i] for i in used],
                    [grads[i] for i in used],
                    [s["exp_avg"] for s in states],
                    [s["exp_avg_sq"] for s in states],
                    [s["step"] for s in states],
                    lr=lr,
                    beta1=beta1,
                    beta2=beta2,
                    eps=group["eps"],
                    weight_decay=group["weight_decay"],
                )
        self.term_names = list(out.terms)
        return torch.stack([out.loss.detach(), *(t.to(out.loss.dtype) for t in out.terms.values())])


@contextlib.contextmanager
def _tracing_autograd():
    """Let dynamo trace ``torch.autograd.grad`` into the graph (instead of breaking it)."""
    with torch._dynamo.config.patch(trace_autograd_ops=True):
        yield
