"""Per-step learning-rate schedule: linear warm-up from 1 % of the base lr, then cosine (docs/spec.md §G.3)."""

from __future__ import annotations

import math

import torch


def warmup_cosine_lr(step: int, *, base_lr: float, floor_lr: float, warmup_steps: int, total_steps: int) -> float:
    """Learning rate used at optimiser step ``step`` (0-indexed).

    ``lr = base * (0.01 + 0.99 * step / W)`` for ``step < W``, then
    ``floor + (base - floor) * (1 + cos(pi * (step - W) / (S - W))) / 2`` up to ``S`` (and ``floor`` after).
    With ``W = 0`` this is a plain cosine over ``S``. ``floor_lr`` is an absolute value (the same for every
    parameter group, as in the paper's code).
    """
    if step < warmup_steps:
        return base_lr * (0.01 + 0.99 * step / warmup_steps)
    span = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    return floor_lr + (base_lr - floor_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosineSchedule:
    """Sets every parameter group's lr from :func:`warmup_cosine_lr` at each step.

    Each group keeps its own base lr in ``group['base_lr']``; the cosine floor is ``floor_lr`` for all groups.

    Args:
        optimizer: the optimiser whose groups carry ``base_lr``.
        warmup_steps: W. Clamped to ``total_steps``.
        total_steps: S = epochs x steps per epoch.
        floor_lr: absolute cosine floor (``lr * min_lr_ratio``).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int, floor_lr: float):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.optimizer = optimizer
        self.warmup_steps = min(max(int(warmup_steps), 0), total_steps)
        self.total_steps = int(total_steps)
        self.floor_lr = float(floor_lr)
        self.step_index = 0
        self.apply()

    def lr_at(self, step: int, base_lr: float) -> float:
        """The lr of a group with ``base_lr`` at ``step``."""
        return warmup_cosine_lr(
            step,
            base_lr=base_lr,
            floor_lr=self.floor_lr,
            warmup_steps=self.warmup_steps,
            total_steps=self.total_steps,
        )

    def apply(self) -> None:
        """Write the current step's lr into every group."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step_index, group["base_lr"])

    def step(self) -> None:
        """Advance one optimiser step and set the next lr."""
        self.step_index += 1
        self.apply()

    def state_dict(self) -> dict[str, int]:
        """Plain state for checkpoints."""
        return {"step_index": self.step_index}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore :meth:`state_dict` output."""
        self.step_index = int(state["step_index"])
        self.apply()
