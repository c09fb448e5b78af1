"""AdamW with an optional own group for the predictor, the per-step schedule (docs/spec.md §G.2, §G.3), and the
compiled step's sync-free AdamW update and gradient clipping (torch's maths on explicit gradient lists,
traceable by ``torch.compile``).

Eager training (:class:`~hamjepa.engine.step.TrainStep`) steps the ``torch.optim.AdamW`` that
:func:`build_optimizer` returns, on every device (fused on CUDA, foreach elsewhere). Only
:class:`~hamjepa.engine.compiled_step.CompiledTrainStep` runs :func:`apply_adamw`, torch's update written with
device tensors (no ``item()``) so that it traces into one graph. Both keep the optimiser state in torch's own
format (``step``, ``exp_avg``, ``exp_avg_sq`` per parameter), so a state saved in one mode resumes in the other.

:func:`apply_adamw` rounds every operation as torch's CPU AdamW does (foreach with ``capturable=False``,
which the single-tensor variant equals bit for bit, and the fused CPU kernel in float64 only), the last one
included (``addcdiv``'s ``p + (-lr / bc1) * m / denom``): on the CPU the two modes' updates are equal bit for
bit, in float32 and float64 (``tests/engine/test_optimizer_modes.py``; inductor's generated code may still
round a fused expression otherwise). On CUDA the fused kernel has its own rounding: the modes agree to
round-off. Until the eager CPU step moved to torch's AdamW, the hand-written update rounded the last operation
as ``p - (lr / bc1) * (m / denom)``, one ulp per step away from torch; the float64 golden trajectories of
HamJEPA and MLP-HJEPA (tiny batches, chaotic) amplified that beyond 1e-12 and were regenerated then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from hamjepa.config import OptimConfig
from hamjepa.engine.schedule import WarmupCosineSchedule
from hamjepa.objectives.base import Objective


def build_optimizer(
    optim: OptimConfig, module: nn.Module, objective: Objective, device: torch.device
) -> tuple[torch.optim.Optimizer, list[nn.Parameter]]:
    """AdamW over ``module``'s trainable parameters; returns it and the parameters that gradient clipping sees.

    With ``optim.predictor_lr`` the objective's predictors (all of :meth:`Objective.predictors`) get their own
    group (``name='predictor'``), clipped only when ``optim.clip_predictor``; every group carries its ``base_lr``
    for the schedule.
    """
    predictor_params: list[nn.Parameter] = []
    pred_ids: set[int] = set()
    if optim.predictor_lr is not None:
        for predictor in objective.predictors().values():
            for p in predictor.parameters():
                if id(p) not in pred_ids:
                    pred_ids.add(id(p))
                    predictor_params.append(p)
    main = [p for p in module.parameters() if p.requires_grad and id(p) not in pred_ids]
    groups: list[dict[str, Any]] = [{"params": main, "base_lr": optim.lr, "name": "main"}]
    clip = list(main)
    if pred_ids:
        pred = [p for p in predictor_params if p.requires_grad]
        groups.append({"params": pred, "base_lr": optim.predictor_lr, "name": "predictor"})
        if optim.clip_predictor:
            clip += pred
    for g in groups:
        g["lr"] = g["base_lr"]
    # The fused CUDA kernel is the fastest AdamW; foreach elsewhere (same maths).
    fused = device.type == "cuda"
    opt = torch.optim.AdamW(
        groups,
        lr=optim.lr,
        betas=optim.betas,
        eps=optim.eps,
        weight_decay=optim.weight_decay,
        fused=fused,
        foreach=not fused,
    )
    return opt, clip


def build_scheduler(
    optim: OptimConfig, optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int
) -> WarmupCosineSchedule:
    """Per-step linear warm-up over ``optim.warmup_epochs`` then cosine to ``lr * min_lr_ratio``."""
    return WarmupCosineSchedule(
        optimizer,
        warmup_steps=round(optim.warmup_epochs * steps_per_epoch),
        total_steps=epochs * steps_per_epoch,
        floor_lr=optim.lr * optim.min_lr_ratio,
    )


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
    lr: Tensor | float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One AdamW update in place (non-amsgrad, non-maximize), rounded as ``torch.optim.AdamW`` on the CPU.

    ``p <- p (1 - lr wd)``; ``m <- lerp(m, g, 1 - b1)``; ``v <- b2 v + (1 - b2) g^2``;
    ``p <- p + (-lr / (1 - b1^t)) * m / (sqrt(v) / (1 - b2^t)^0.5 + eps)``: the foreach operations of torch's
    ``_multi_tensor_adam`` with ``capturable=False`` (what eager training runs off CUDA), in its order, with its
    constants computed as it computes them on the host but as device tensors: the bias corrections in float64
    from the per-parameter step counters (``beta ** t`` and ``bc2 ** 0.5`` as ``pow``: ``sqrt`` differs in the
    last bit now and then), the step size ``-lr / bc1`` in float64 rounded once to the parameter's dtype, and
    the last operation in ``addcdiv``'s order, ``p + (step_size * m) / denom``. (torch's ``capturable=True``
    branch, the one for device step counters, rounds it as ``p + m / (denom / step_size)`` instead, which is
    why this follows the other branch.) The result equals torch's CPU AdamW bit for bit, eagerly and traced
    op by op (``tests/engine/test_optimizer_modes.py``).

    ``steps`` are the optimiser's step counters (incremented here). ``lr`` is a one-element float64 device
    tensor (a compiled step does not recompile when it changes) or a Python float. No host synchronisation
    (torch's CPU AdamW reads each step counter with ``item()``).
    """
    if not params:
        return
    lr_t = torch.as_tensor(lr, dtype=torch.float64, device=steps[0].device).reshape(())
    torch._foreach_add_(steps, 1)
    if weight_decay != 0:
        decay = 1.0 - lr_t * weight_decay
        torch._foreach_mul_(params, [decay.to(p.dtype) for p in params])
    torch._foreach_lerp_(exp_avgs, grads, 1.0 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1.0 - beta2)
    t64 = [t.to(torch.float64) for t in steps]
    bias_correction1 = [1.0 - torch.pow(beta1, t) for t in t64]
    bias_correction2 = [1.0 - torch.pow(beta2, t) for t in t64]
    half = torch.full_like(t64[0], 0.5)  # a tensor exponent: pow(x, 0.5) with a number exponent is sqrt
    bias_correction2_sqrt = [torch.pow(b, half).to(p.dtype) for b, p in zip(bias_correction2, params, strict=True)]
    # lr_t / bc1 (one division); a Python float over a tensor would be computed as lr * (1 / bc1)
    step_size = [torch.neg(lr_t / b).to(p.dtype) for b, p in zip(bias_correction1, params, strict=True)]
    denom = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_div_(denom, bias_correction2_sqrt)
    torch._foreach_add_(denom, eps)
    update = torch._foreach_mul(exp_avgs, step_size)  # addcdiv's order: (step_size * m) / denom, then + p
    torch._foreach_div_(update, denom)
    torch._foreach_add_(params, update)


@dataclass
class AdamWGroup:
    """One parameter group of a ``torch.optim.AdamW``: its state tensors and constants (read on the host).

    ``indices`` are the positions of the group's parameters in the optimiser's flat parameter list (groups in
    order), i.e. in the gradient list :func:`apply_adamw` takes.
    """

    indices: list[int]
    params: list[Tensor]
    exp_avgs: list[Tensor]
    exp_avg_sqs: list[Tensor]
    steps: list[Tensor]
    beta1: float
    beta2: float
    eps: float
    weight_decay: float


def adamw_groups(optimizer: torch.optim.Optimizer) -> list[AdamWGroup]:
    """The groups of ``optimizer`` with their state (created where missing, see :func:`ensure_adamw_state`).

    A compiled step reads them once, so that its graph never touches the optimiser object (whose ``lr``
    values change every step and would otherwise be guarded on).
    """
    ensure_adamw_state(optimizer)
    out, start = [], 0
    for group in optimizer.param_groups:
        params = list(group["params"])
        states = [optimizer.state[p] for p in params]
        beta1, beta2 = group["betas"]
        out.append(
            AdamWGroup(
                indices=list(range(start, start + len(params))),
                params=params,
                exp_avgs=[s["exp_avg"] for s in states],
                exp_avg_sqs=[s["exp_avg_sq"] for s in states],
                steps=[s["step"] for s in states],
                beta1=float(beta1),
                beta2=float(beta2),
                eps=float(group["eps"]),
                weight_decay=float(group["weight_decay"]),
            )
        )
        start += len(params)
    return out


def ensure_adamw_state(optimizer: torch.optim.Optimizer) -> None:
    """Create missing AdamW moments and step counters in torch's format (``step``, ``exp_avg``, ``exp_avg_sq``).

    Step counters live on the parameter's device (as torch's fused/capturable AdamW keeps them), so the
    update of :func:`apply_adamw` never touches the host; counters loaded onto the CPU are moved there.
    """
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state[p]
            if len(state) == 0:
                state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            elif state["step"].device != p.device:
                state["step"] = state["step"].to(p.device)


def apply_adamw(groups: list[AdamWGroup], grads: list[Tensor | None], lrs: list[Tensor | float]) -> None:
    """One :func:`adamw_step_` per group (no autograd recording).

    Args:
        groups: from :func:`adamw_groups`.
        grads: one gradient per parameter of the flat list; parameters with None are skipped (as torch skips
            parameters without ``.grad``: no decay, no moment or step update).
        lrs: one learning rate per group (one-element float64 tensors in a compiled step, or Python floats).
    """
    with torch.no_grad():
        for group, lr in zip(groups, lrs, strict=True):
            used = [j for j, i in enumerate(group.indices) if grads[i] is not None]
            adamw_step_(
                [group.params[j] for j in used],
                [grads[group.indices[j]] for j in used],  # type: ignore[misc]
                [group.exp_avgs[j] for j in used],
                [group.exp_avg_sqs[j] for j in used],
                [group.steps[j] for j in used],
                lr=lr,
                beta1=group.beta1,
                beta2=group.beta2,
                eps=group.eps,
                weight_decay=group.weight_decay,
            )
