"""Self-supervised objectives (HamJEPA, LeJEPA + SIGReg, HamSIGReg, MLP-HJEPA, BiJEPA, VICReg, VISReg) and their
regularisers.

Importing this package registers the built-in objectives; see :func:`get_objective_class`.
"""

from __future__ import annotations

from hamjepa.objectives.base import BuildContext, Objective, ObjectiveOutput, StepContext
from hamjepa.objectives.floors import ProjectedLogDetFloor
from hamjepa.objectives.ham_metric import HamMetric
from hamjepa.objectives.hamjepa import HamJEPAObjective
from hamjepa.objectives.hamsigreg import HamSIGRegObjective
from hamjepa.objectives.lejepa import LeJEPAObjective
from hamjepa.objectives.mlp_hjepa import MLPHJEPAObjective
from hamjepa.objectives.registry import available_objectives, get_objective_class, register_objective
from hamjepa.objectives.regularizers import MeanPenalty, ScaleBudget, VarianceFloor
from hamjepa.objectives.sigreg import SIGReg
from hamjepa.objectives.vicreg import VICRegObjective
from hamjepa.objectives.visreg import VISRegObjective

try:  # BiJEPA is written separately; its absence must not break the other objectives.
    from hamjepa.objectives import bijepa  # noqa: F401
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the checkout state
    if exc.name != "hamjepa.objectives.bijepa":
        raise

__all__ = [
    "BuildContext",
    "HamJEPAObjective",
    "HamMetric",
    "HamSIGRegObjective",
    "LeJEPAObjective",
    "MLPHJEPAObjective",
    "MeanPenalty",
    "Objective",
    "ObjectiveOutput",
    "ProjectedLogDetFloor",
    "SIGReg",
    "ScaleBudget",
    "StepContext",
    "VICRegObjective",
    "VISRegObjective",
    "VarianceFloor",
    "available_objectives",
    "get_objective_class",
    "register_objective",
]
