"""AdamW with an optional own group for the predictor, and the per-step schedule (spec G.2, G.3)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hamjepa.config import OptimConfig
from hamjepa.engine.schedule import WarmupCosineSchedule


def build_optimizer(
    optim: OptimConfig, module: nn.Module, objective: nn.Module, device: torch.device
) -> tuple[torch.optim.Optimizer, list[nn.Parameter]]:
    """AdamW over ``module``'s trainable parameters; returns it and the parameters that gradient clipping sees.

    With ``optim.predictor_lr`` the objective's predictor gets its own group (``name='predictor'``), clipped
    only when ``optim.clip_predictor``; every group carries its ``base_lr`` for the schedule.
    """
    pred_ids: set[int] = set()
    predictor = getattr(objective, "predictor", None)
    if optim.predictor_lr is not None and predictor is not None:
        pred_ids = {id(p) for p in predictor.parameters()}
    main = [p for p in module.parameters() if p.requires_grad and id(p) not in pred_ids]
    groups: list[dict[str, Any]] = [{"params": main, "base_lr": optim.lr, "name": "main"}]
    clip = list(main)
    if pred_ids:
        pred = [p for p in predictor.parameters() if p.requires_grad]
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
