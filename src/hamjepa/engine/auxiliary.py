"""The optimiser of an objective's auxiliary parameters (:meth:`Objective.auxiliary_groups`), owned by the engine.

An objective such as HamSIGReg trains a few parameters (its learnable spectrum) on a loss of their own
(:meth:`Objective.auxiliary_loss`) instead of the encoder's. The objective only declares them; the engine
builds their ``torch.optim.AdamW`` here, steps it after the encoder's optimiser step on the training steps
where a group is due (:class:`~hamjepa.engine.step.TrainStep`), and saves and restores its state with the
checkpoint (key ``auxiliary_optimizer``), so a resumed run continues exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from hamjepa.distributed import all_reduce_sum, get_world_size
from hamjepa.objectives.base import AuxiliaryGroup, Objective


class AuxiliaryOptimizer:
    """AdamW over the auxiliary groups of ``objective`` (one param group each) and the update of docs/spec.md §E.4.1.

    Args:
        objective: the run's objective (unwrapped).
        default_lr: the learning rate of groups that declare ``lr=None`` (the run's ``optim.lr``).

    Raises:
        ValueError: a group is empty, has a parameter that requires gradients, or a bad interval / clip.
    """

    def __init__(self, objective: nn.Module, default_lr: float = 1e-3) -> None:
        self.objective = objective
        groups = objective.auxiliary_groups() if isinstance(objective, Objective) else []
        for group in groups:
            _check_group(group, type(objective).__name__)
        self.groups: list[AuxiliaryGroup] = list(groups)
        self.optimizer: torch.optim.AdamW | None = None
        if self.groups:
            self.optimizer = torch.optim.AdamW(
                [
                    {
                        "params": list(g.params),
                        "lr": default_lr if g.lr is None else g.lr,
                        "betas": g.betas,
                        "eps": g.eps,
                        "weight_decay": g.weight_decay,
                        "name": g.name,
                    }
                    for g in self.groups
                ]
            )

    @property
    def active(self) -> bool:
        """Whether the objective declares auxiliary parameters."""
        return self.optimizer is not None

    def step(self, z: Tensor, step: int) -> bool:
        """One update of the groups due at ``step`` on the embeddings ``z [V, B, D]`` (detached here).

        Returns whether an update was made (False when no group is due or the objective skips this step).
        """
        due = [g for g in self.groups if step % g.update_interval == 0]
        if not due or self.optimizer is None:
            return False
        params = [p for g in due for p in g.params]
        with torch.enable_grad():
            for p in params:
                p.requires_grad_(True)
            try:
                loss = self.objective.auxiliary_loss(z.detach(), step)
                grads = None if loss is None else torch.autograd.grad(loss, params)
            finally:
                for p in params:
                    p.requires_grad_(False)
        if grads is None:
            return False
        with torch.no_grad():
            start = 0
            for group in due:
                count = len(group.params)
                _set_grads(group, grads[start : start + count])
                start += count
        self.optimizer.step()
        for p in params:
            p.grad = None
        return True

    def state_dict(self) -> dict[str, Any] | None:
        """The AdamW state (torch's format), or None without auxiliary parameters."""
        return None if self.optimizer is None else self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s result."""
        if self.optimizer is None:
            raise ValueError("the objective declares no auxiliary parameters, but an auxiliary optimiser state came")
        self.optimizer.load_state_dict(state)


def _set_grads(group: AuxiliaryGroup, grads: tuple[Tensor, ...]) -> None:
    """Average ``grads`` over ranks, clip their joint norm to ``group.grad_clip`` and store them as ``.grad``."""
    flat = torch.cat([g.reshape(-1) for g in grads])
    # Each rank's gradient is world_size x its share (see objectives.base); the mean is the global one.
    flat = all_reduce_sum(flat) / get_world_size()
    if group.grad_clip is not None:
        flat = flat * torch.clamp(group.grad_clip / (flat.norm() + 1e-12), max=1.0)
    offset = 0
    for p in group.params:
        p.grad = flat[offset : offset + p.numel()].reshape(p.shape).to(p.dtype)
        offset += p.numel()


def _check_group(group: AuxiliaryGroup, owner: str) -> None:
    where = f"{owner}.auxiliary_groups() group {group.name!r}"
    if not group.params:
        raise ValueError(f"{where} has no parameters")
    if any(p.requires_grad for p in group.params):
        raise ValueError(
            f"{where}: auxiliary parameters must not require gradients (the objective's loss treats them as "
            "constants; the engine enables gradients only for their own update)"
        )
    if not (isinstance(group.update_interval, int) and group.update_interval >= 1):
        raise ValueError(f"{where}: update_interval must be an int >= 1, got {group.update_interval!r}")
    if group.grad_clip is not None and not group.grad_clip > 0:
        raise ValueError(f"{where}: grad_clip must be > 0 or None, got {group.grad_clip}")
