"""MLP-HJEPA ablation (docs/spec.md §F): the HamJEPA objective with a non-symplectic MLP rollout predictor.

Only the predictor differs (an ``MLPPredictor``, docs/spec.md §F's matched proposal [I]); the matching loss,
regularisers and weights are those of :class:`HamJEPAObjective`. The backward direction reuses the same
network with ``-h`` (not an exact inverse). There is no residual scale, so the warm-up defaults to 0.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from torch import nn

from hamjepa.objectives.hamjepa import HamJEPAObjective
from hamjepa.objectives.registry import register_objective


@register_objective("mlp_hjepa")
class MLPHJEPAObjective(HamJEPAObjective):
    """HamJEPA objective around an ``MLPPredictor``; accepts every :class:`HamJEPAObjective` keyword.

    Differences from ``HamJEPAObjective``: ``residual_scale_warmup_epochs`` defaults to 0 (an MLP
    predictor has no residual scale). Built like HamJEPA (:meth:`HamJEPAObjective.from_context`: the engine's
    predictor and the run seed), so the ablation differs from HamJEPA in its predictor only.
    """

    predictor_kind: ClassVar[Literal["hamiltonian", "mlp"] | None] = "mlp"
    description: ClassVar[str] = "MLP-HJEPA: the HamJEPA objective with a non-symplectic MLP predictor (ablation)"

    def __init__(self, *, predictor: nn.Module, residual_scale_warmup_epochs: int = 0, **kwargs: Any) -> None:
        super().__init__(predictor=predictor, residual_scale_warmup_epochs=residual_scale_warmup_epochs, **kwargs)
