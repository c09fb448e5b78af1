"""BiJEPA (Huang, 2026): bidirectional JEPA with an EMA target encoder (``bijepa_lejepa.md`` Part 1).

With view 0 = context ``x`` (left / past) and view 1 = target ``y`` (right / future), online embeddings
``o_x, o_y`` (``z[0], z[1]``) and stop-gradient EMA-target embeddings ``t_x, t_y`` (``z_target[0, 1]``)::

    L_fwd = MSE(P_fwd(o_x), t_y)        L_bwd = MSE(P_bwd(o_y), t_x)
    L     = alpha * L_fwd + (1 - alpha) * L_bwd

MSE is the mean over batch and embedding dims. ``alpha = 1`` is classic JEPA (only ``P_fwd`` exists then);
the paper uses ``alpha = 0.5``. The two predictors are separate MLPs of identical architecture
``D -> hidden -> [LayerNorm] -> ReLU -> D``.

Norm modes (paper Sec. 3.3; :func:`norm_mode_settings`):

* ``"expressive"`` (main results): LayerNorm after every hidden Linear of encoder and predictors, and
  AdamW weight decay 1e-4; the embedding magnitude stays free.
* ``"restrictive"``: embeddings are L2-normalised onto the unit sphere. This objective normalises ``z``
  and ``z_target`` itself (idempotent if the encoder already did), predictor outputs are not normalised.
  Our choice (the paper does not say): the hidden LayerNorms and weight decay 1e-4 are kept, so that the
  hard constraint is the only difference from "expressive".
* ``"none"`` (the "explosion" ablation): no LayerNorm anywhere, weight decay 0.

The engine keeps the EMA target encoder (``needs_target_encoder = True``) and updates it with
:func:`hamjepa.models.ema.update_ema` using :meth:`BiJEPAObjective.ema_momentum` after each optimiser
step; the momentum is constant (no schedule), 0.995 in the paper's sequence experiments, 0.99 for images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hamjepa.dynamics.mlp import build_mlp
from hamjepa.numerics import upcast
from hamjepa.objectives.base import BuildContext, Objective, ObjectiveOutput, StepContext
from hamjepa.objectives.registry import register_objective

__all__ = ["NORM_MODES", "BiJEPAObjective", "NormMode", "NormModeSettings", "norm_mode_settings"]

NormMode = Literal["expressive", "restrictive", "none"]
NORM_MODES: tuple[str, ...] = ("expressive", "restrictive", "none")


@dataclass(frozen=True)
class NormModeSettings:
    """What one BiJEPA norm mode means for the networks and the optimiser.

    Attributes:
        layer_norm: LayerNorm after each hidden Linear (encoder and predictors).
        unit_sphere: L2-normalise the embeddings (encoder output).
        weight_decay: the AdamW weight decay the paper pairs with the mode.
    """

    layer_norm: bool
    unit_sphere: bool
    weight_decay: float


def norm_mode_settings(mode: str) -> NormModeSettings:
    """Settings of ``mode`` in :data:`NORM_MODES`.

    Raises:
        ValueError: for an unknown mode.
    """
    if mode == "expressive":
        return NormModeSettings(layer_norm=True, unit_sphere=False, weight_decay=1e-4)
    if mode == "restrictive":
        return NormModeSettings(layer_norm=True, unit_sphere=True, weight_decay=1e-4)
    if mode == "none":
        return NormModeSettings(layer_norm=False, unit_sphere=False, weight_decay=0.0)
    raise ValueError(f"norm_mode must be one of {', '.join(NORM_MODES)}, got {mode!r}")


@register_objective("bijepa")
class BiJEPAObjective(Objective):
    """Bidirectional JEPA loss with two MLP predictors (``alpha = 1``: classic one-predictor JEPA).

    Args:
        embed_dim: D, the encoder output dimension (predictor input and output size).
        alpha: weight of the forward loss in ``[0, 1]`` (paper: 0.5; classic JEPA: 1).
        hidden_dim: predictor hidden width (paper: 64 sine / 128 Lorenz and images).
        norm_mode: ``"expressive"``, ``"restrictive"`` or ``"none"`` (see the module docstring).
        momentum: constant EMA momentum ``tau`` of the target encoder in ``[0, 1)``.

    Shapes: ``forward(z [2, B, D], ctx, z_target [2, B, D]) -> ObjectiveOutput``. :meth:`predictors` are
    ``{"predictor_fwd", "predictor_bwd"}`` (the latter only when ``alpha < 1``); :meth:`predict` maps
    ``direction=+1`` / ``-1`` to them.
    """

    needs_target_encoder: ClassVar[bool] = True
    description: ClassVar[str] = "BiJEPA: EMA target encoder, forward and backward predictors"

    def __init__(
        self,
        embed_dim: int,
        *,
        alpha: float = 0.5,
        hidden_dim: int = 128,
        norm_mode: NormMode = "expressive",
        momentum: float = 0.995,
    ) -> None:
        super().__init__()
        if embed_dim < 1:
            raise ValueError(f"embed_dim must be >= 1 (the encoder output dimension), got {embed_dim}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1] (1 = classic JEPA, 0.5 = BiJEPA), got {alpha}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}; the paper uses 0.995")
        self.settings = norm_mode_settings(norm_mode)
        self.norm_mode = norm_mode
        self.embed_dim = int(embed_dim)
        self.alpha = float(alpha)
        self.momentum = float(momentum)
        norm = "layer" if self.settings.layer_norm else None
        self.predictor_fwd = build_mlp(embed_dim, embed_dim, hidden_dims=[hidden_dim], activation="relu", norm=norm)
        # Classic JEPA has a single predictor; no unused backward parameters (they would stall DDP).
        self.predictor_bwd = (
            build_mlp(embed_dim, embed_dim, hidden_dims=[hidden_dim], activation="relu", norm=norm)
            if self.alpha < 1.0
            else None
        )

    @classmethod
    def from_context(cls, ctx: BuildContext, **kwargs: Any) -> BiJEPAObjective:
        """The encoder width fills ``embed_dim`` unless the config sets it."""
        return cls(**{"embed_dim": ctx.dim, **kwargs})

    def predictors(self) -> dict[str, nn.Module]:
        """``{"predictor_fwd": P_fwd, "predictor_bwd": P_bwd}`` (no backward predictor when ``alpha = 1``)."""
        found = {"predictor_fwd": self.predictor_fwd}
        if self.predictor_bwd is not None:
            found["predictor_bwd"] = self.predictor_bwd
        return found

    def ema_momentum(self, step: int) -> float:
        """The (constant) EMA momentum of the target encoder at optimiser step ``step``."""
        return self.momentum

    def embed(self, z: Tensor) -> Tensor:
        """Apply the mode's embedding constraint (unit sphere in "restrictive", identity otherwise)."""
        return F.normalize(z, dim=-1) if self.settings.unit_sphere else z

    def predict(self, z: Tensor, direction: int = 1) -> Tensor:
        """``[B, D] -> [B, D]``: forward (``direction=+1``, context -> target) or backward (-1) prediction."""
        if direction == 1:
            return self.predictor_fwd(self.embed(z))
        if direction == -1:
            if self.predictor_bwd is None:
                raise ValueError("alpha = 1 (classic JEPA) has no backward predictor; use direction=+1")
            return self.predictor_bwd(self.embed(z))
        raise ValueError(f"direction must be +1 or -1, got {direction}")

    def forward(self, z: Tensor, ctx: StepContext, z_target: Tensor | None = None) -> ObjectiveOutput:
        """BiJEPA loss from online embeddings ``z [2, B, D]`` and EMA-target embeddings ``z_target [2, B, D]``.

        Terms: ``loss_fwd``, ``loss_bwd`` (0 when alpha = 1), ``embed_norm`` (mean L2 norm of the online
        embeddings, before the unit-sphere constraint) and ``target_norm``.
        """
        v, _, d = self.check_views(z)
        if v != 2:
            raise ValueError(f"BiJEPA compares exactly 2 views (context, target); z has shape {tuple(z.shape)}")
        if d != self.embed_dim:
            raise ValueError(f"z has embedding dim {d} but the objective was built with embed_dim={self.embed_dim}")
        if z_target is None:
            raise ValueError("BiJEPA needs z_target (the EMA target encoder's output, shape [2, B, D])")
        if z_target.shape != z.shape:
            raise ValueError(f"z_target shape {tuple(z_target.shape)} must equal z shape {tuple(z.shape)}")
        # The engine passes bf16 encoder outputs (autocast, docs/spec.md §G.1) while the predictors are fp32 and run
        # outside autocast: compute the loss in fp32 (fp64 runs stay fp64), like the other objectives.
        target = self.embed(upcast(z_target.detach()))
        online = self.embed(upcast(z))
        loss_fwd = F.mse_loss(self.predictor_fwd(online[0]), target[1])
        if self.predictor_bwd is not None:
            loss_bwd = F.mse_loss(self.predictor_bwd(online[1]), target[0])
            loss = self.alpha * loss_fwd + (1.0 - self.alpha) * loss_bwd
        else:
            loss_bwd = torch.zeros((), device=z.device, dtype=loss_fwd.dtype)
            loss = loss_fwd
        terms = {
            "loss_fwd": loss_fwd.detach(),
            "loss_bwd": loss_bwd.detach(),
            "embed_norm": z.detach().norm(dim=-1).mean(),
            "target_norm": z_target.detach().norm(dim=-1).mean(),
        }
        return ObjectiveOutput(loss=loss, terms=terms)
