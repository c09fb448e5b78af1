"""Common base class and output type of every self-supervised objective.

Distributed-gradient convention (the one design used by every objective in this package)
-----------------------------------------------------------------------------------------
Every objective returns the **global-batch** loss: all statistics that mix samples (prediction
squared-error sums and counts, second moments, column sums, covariances, characteristic-function sums)
are summed over ranks with :func:`hamjepa.distributed.all_reduce_sum` *before* the loss is formed, so the
loss value is identical on all ranks and equals the single-process loss on the concatenated batch.

``all_reduce_sum`` is autograd-aware: its backward sums the incoming gradient over ranks. Since every
rank back-propagates the same global loss ``L``, the gradient a rank computes is the gradient of
``sum_over_ranks L = world_size * L`` restricted to its own samples and parameters, i.e.

* ``d loss / d z_local`` on rank ``r``  ==  ``world_size * (rows of the single-process input gradient
  that belong to rank r)``;
* parameter gradients on rank ``r`` (e.g. of the predictor) == ``world_size * (the part of the
  single-process parameter gradient contributed by rank r's samples)``.

DistributedDataParallel **averages** parameter gradients over ranks (divides the sum by
``world_size``), which cancels the factor exactly: ``DDP-averaged grad == single-process grad`` on the
global batch. **The engine must therefore back-propagate the returned loss unscaled** (no
multiplication or division by ``world_size``), and must wrap every trainable module the objective
uses (e.g. the predictor, which lives inside the objective) in DDP together with the encoder.
Without a process group ``all_reduce_sum`` is the identity and nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal, NamedTuple, TypeVar

import torch
from torch import Tensor, nn


class ObjectiveOutput(NamedTuple):
    """What :meth:`Objective.forward` returns.

    Attributes:
        loss: 0-d tensor to back-propagate (global-batch value, see the module docstring).
        terms: named 0-d tensors for logging, all detached (turning them into Python numbers is
            left to the logger, so the training step performs no host synchronisation).
    """

    loss: Tensor
    terms: dict[str, Tensor]


@dataclass(frozen=True)
class BuildContext:
    """What the engine knows when it builds an objective: handed to :meth:`Objective.from_context`.

    Attributes:
        dim: the encoder's output width ``D`` at the run's image size (the last axis of ``z``).
        seed: the run seed (``seed:`` of the config).
        token_channels: channels per token of the encoder's token layout (None when ``z`` is not a token grid).
        split_qp: whether the encoder splits ``z`` into ``(q, p)`` halves.
        predictor: the module built from the config's ``predictor:`` section when the objective class declares
            a ``predictor_kind``, else None.
    """

    dim: int
    seed: int
    token_channels: int | None = None
    split_qp: bool = False
    predictor: nn.Module | None = None


_ObjectiveT = TypeVar("_ObjectiveT", bound="Objective")
_NO_DRAWS: Mapping[str, Tensor] = MappingProxyType({})


@dataclass(frozen=True)
class StepContext:
    """The explicit per-step input of :meth:`Objective.forward`, made by :meth:`Objective.draw`.

    Attributes:
        step: the training step (optimiser steps done before this one).
        draws: the step's random draws and host-side values by name (SIGReg / VISReg directions, log-det
            projections, ...); empty for objectives that draw nothing. The compiled step passes these tensors
            into its graph as inputs, in the order of their names.
    """

    step: int
    draws: Mapping[str, Tensor] = field(default_factory=lambda: _NO_DRAWS)

    def draw(self, name: str, objective: str) -> Tensor:
        """The draw ``name``; raises a ValueError naming ``objective`` when the context has none."""
        try:
            return self.draws[name]
        except KeyError:
            raise ValueError(
                f"{objective}: the step context has no draw {name!r} (has {sorted(self.draws)}); make it with "
                "ctx = objective.draw(step, tuple(z.shape), z.device)"
            ) from None


@dataclass(frozen=True)
class AuxiliaryGroup:
    """Parameters an objective trains on a loss of their own, with an optimiser the engine builds and steps.

    The engine keeps them out of its main AdamW and out of DDP, builds one ``torch.optim.AdamW`` param group
    per :class:`AuxiliaryGroup` (saved in the checkpoint with the rest of the run; constant learning rate),
    and, after the encoder's optimiser step of every training step where ``step % update_interval == 0``,
    back-propagates :meth:`Objective.auxiliary_loss` on that step's embeddings into them: gradients are
    averaged over ranks (each rank's is ``world_size`` x its share, see the module docstring), their joint
    2-norm is clipped to ``grad_clip`` (``g * min(1, grad_clip / (|g| + 1e-12))``), and AdamW steps.

    The parameters must not require gradients: the objective's own loss treats them as constants. Whether the
    auxiliary loss is minimised or (adversarially) maximised is part of that loss: the objective returns what
    is to be minimised (e.g. ``-lambda * SIGReg + penalty`` for HamSIGReg's ``h_mode='max'``).

    Attributes:
        name: the param group's name in the optimiser (and its state dict).
        params: the parameters.
        lr, betas, eps, weight_decay: AdamW settings of the group (``lr=None``: the run's ``optim.lr``).
        update_interval: step the group on training steps divisible by this (>= 1).
        grad_clip: clip of the group's gradient norm (None = none).
    """

    name: str
    params: tuple[nn.Parameter, ...]
    lr: float | None
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    update_interval: int = 1
    grad_clip: float | None = None


class Objective(nn.Module):
    """Base class of self-supervised objectives acting on multi-view embeddings.

    The engine builds an objective with :meth:`from_context` and, at every training step, calls
    ``ctx = objective.draw(step, z_shape, device)`` (host side) and then
    ``objective(z [V, B, D], ctx, z_target=None) -> ObjectiveOutput``. See the module docstring for how the
    loss and its gradients behave under DistributedDataParallel (return the global-batch loss; the engine
    does not rescale it).

    The class attributes below declare what the objective needs; the config layer checks a config against
    them and the engine acts on them, so neither ever names an objective.

    Attributes:
        needs_target_encoder: when True the engine keeps an EMA copy of the encoder, passes its
            output as ``z_target`` and calls ``objective.ema_momentum(step)``.
    """

    predictor_kind: ClassVar[Literal["hamiltonian", "mlp"] | None] = None
    """The ``predictor.kind`` the objective is built with (the engine passes the predictor as its ``predictor``
    argument); None = no predictor from the config (``predictor.kind`` must be ``none``)."""
    needs_phase_split: ClassVar[bool] = False
    """Whether the objective reads ``z`` as ``[q; p]`` (the encoder's ``split_qp`` must be true)."""
    needs_target_encoder: ClassVar[bool] = False
    supports_compiled_step: ClassVar[bool] = True
    """Whether ``forward(z, ctx)`` can run inside one compiled graph (``train.step=compiled``), its draws made
    outside it by :meth:`draw`; False for objectives that do host-side work inside ``forward``."""
    description: ClassVar[str] = ""
    """One line for the model card of an export (empty: the class name and the first line of its docstring)."""

    @classmethod
    def from_context(cls: type[_ObjectiveT], ctx: BuildContext, **kwargs: Any) -> _ObjectiveT:
        """Build the objective from its config section's keyword arguments and the engine's ``ctx``.

        The one way the engine constructs an objective. Here ``cls(**kwargs)``; an objective that needs the
        encoder width, the run seed, the predictor or the token layout overrides this and passes them to its
        constructor explicitly (a value its config section sets wins over the context's).
        """
        return cls(**kwargs)

    def on_epoch_start(self, epoch: int) -> None:
        """Hook called by the engine at the start of every epoch (``epoch`` is 1-indexed). No-op here."""
        if epoch < 1:
            raise ValueError(f"epoch is 1-indexed and must be >= 1, got {epoch}")

    def draw(self, step: int, z_shape: tuple[int, int, int], device: torch.device) -> StepContext:
        """This step's host-side work: its random draws and counters, returned as the ``forward`` context.

        Objectives with per-step randomness drawn from a ``torch.Generator`` (SIGReg directions) or host
        counters (log-det projections) do it here, so that ``forward`` is a pure function of its tensor inputs
        (the compiled step, ``train.step=compiled``, makes the draws outside its graph and passes them in).
        ``z_shape`` is the ``[V, B, D]`` shape of the embeddings ``forward`` will receive. Call it once per
        training step, before ``forward``. Inside the compiled step's graph ``ctx.step`` is -1 (a Python step
        would recompile it every step): put what ``forward`` needs from the step into the draws. Here
        ``StepContext(step)`` (no draws).
        """
        return StepContext(step)

    def forward(self, z: Tensor, ctx: StepContext, z_target: Tensor | None = None) -> ObjectiveOutput:
        """The loss of the embeddings ``z [V, B, D]`` at the step of ``ctx`` (made by :meth:`draw`);
        ``z_target [V, B, D]``: the EMA target encoder's output (objectives with ``needs_target_encoder``)."""
        raise NotImplementedError

    def predictors(self) -> dict[str, nn.Module]:
        """The objective's predictor modules by name (trained with ``optim.predictor_lr`` when set); none here."""
        return {}

    def predict(self, z: Tensor, direction: int = 1) -> Tensor:
        """``z [B, D]`` (a state) -> the predicted state ``[B, D]`` in ``direction`` (+1 forward, -1 backward).

        Raises:
            NotImplementedError: for an objective without a predictor (this default).
        """
        raise NotImplementedError(f"{type(self).__name__} has no predictor: it cannot predict a state")

    def auxiliary_groups(self) -> list[AuxiliaryGroup]:
        """Parameters trained on :meth:`auxiliary_loss` by an optimiser the engine owns; none here."""
        return []

    def auxiliary_loss(self, z: Tensor, step: int) -> Tensor | None:
        """The loss the engine minimises in the parameters of :meth:`auxiliary_groups` at training step ``step``.

        ``z [V, B, D]`` are the step's embeddings (made before the encoder's update), detached: the auxiliary
        step never reaches the encoder.
        The engine calls this only on steps where some group is due and with those parameters requiring
        gradients; returning None skips the auxiliary update of this step. Objectives without auxiliary
        parameters are never asked.
        """
        raise NotImplementedError(f"{type(self).__name__} declares no auxiliary parameters")

    def feature_readouts(self) -> dict[str, Callable[[Tensor], Tensor]]:
        """Extra evaluation readouts this objective defines: ``{name: features [N, D] -> [N, D']}``.

        Evaluated alongside the encoder's own readouts (``z`` or ``q`` / ``p`` / ``qp``); empty here.
        HamSIGReg adds ``"ham"`` (``H^{1/2} z``).
        """
        return {}

    @staticmethod
    def check_views(z: Tensor, *, name: str = "z", min_views: int = 2) -> tuple[int, int, int]:
        """Validate a view-major embedding tensor and return its shape ``(V, B, D)``.

        Raises:
            ValueError: if ``z`` is not a 3-D tensor ``[V, B, D]`` with ``V >= min_views`` and
                ``B, D >= 1``; the message names the received shape.
        """
        if not isinstance(z, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor of shape [V, B, D], got {type(z).__name__}")
        return Objective.check_view_shape(tuple(z.shape), name=name, min_views=min_views)

    @staticmethod
    def check_view_shape(shape: tuple[int, ...], *, name: str = "z", min_views: int = 2) -> tuple[int, int, int]:
        """:meth:`check_views` on a shape alone (e.g. the ``z_shape`` of :meth:`draw`)."""
        if len(shape) != 3:
            raise ValueError(
                f"{name} must have shape [V, B, D] (views, batch, dim), got a {len(shape)}-D tensor of "
                f"shape {shape}; reshape the encoder output [V*B, D] to [V, B, D]"
            )
        v, b, d = shape
        if v < min_views:
            raise ValueError(
                f"{name} must hold at least {min_views} views on axis 0 (shape [V, B, D]), got shape {shape}"
            )
        if b < 1 or d < 1:
            raise ValueError(f"{name} must have a non-empty batch and dimension, got shape {shape}")
        return v, b, d

    @staticmethod
    def check_no_target(z_target: Tensor | None, objective_name: str) -> None:
        """Raise if a target-encoder output was passed to an objective that does not use one."""
        if z_target is not None:
            raise ValueError(
                f"{objective_name} does not use a target encoder (needs_target_encoder=False) but "
                "z_target was given; pass z_target=None"
            )
