"""LeJEPA baseline: multi-view prediction toward the mean of the global views + SIGReg (docs/spec.md §E.1-§E.3)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from hamjepa.distributed import all_reduce_sum
from hamjepa.numerics import upcast
from hamjepa.objectives.base import BuildContext, Objective, ObjectiveOutput, StepContext
from hamjepa.objectives.registry import register_objective
from hamjepa.objectives.sigreg import SIGReg, SIGRegWeight

Combination = Literal["paper_code", "upstream"]
COMBINATIONS: tuple[str, ...] = ("paper_code", "upstream")


@register_objective("lejepa")
class LeJEPAObjective(Objective):
    """LeJEPA + SIGReg baseline.

    ``z [V, B, D]``; the first ``V_g = num_global_views`` views (all ``V`` when None) are global.
    ``mu_b = mean_{v < V_g} z_{v,b}`` (no stop-gradient) and
    ``L_inv = mean_{v,b,j} (mu_{b,j} - z_{v,b,j})^2`` over all ``V`` views (a global mean: sums and
    counts are all-reduced). ``SIGReg`` (docs/spec.md §E.2) acts on all views with shared directions.

    * ``combination='paper_code'`` (HamJEPA repo, reproduces the paper's baseline; defaults
      ``lambda_reg=0.02``, 64 slices, 9 knots): ``L = L_inv / 2 + lambda * SIGReg``.
    * ``combination='upstream'`` (LeJEPA reference): ``L = (1 - lambda) * L_inv + lambda * SIGReg``.

    Terms (detached 0-d): ``pred`` (= ``L_inv``, unweighted), ``sigreg`` (unweighted), ``total``.

    Args:
        lambda_reg: weight ``lambda`` of SIGReg.
        combination: ``paper_code`` or ``upstream`` combination of the two terms (see above).
        num_slices: random directions SIGReg projects on (redrawn every step).
        n_points: quadrature knots of the Epps-Pulley statistic on ``[0, t_max]``.
        t_max: last quadrature knot.
        weight: ``gaussian`` or ``uniform`` quadrature weights.
        num_global_views: the first this many views are global (null = all views).
        seed: seed of SIGReg's directions (default: the run's ``seed``).
    """

    description: ClassVar[str] = "LeJEPA + SIGReg (isotropic Gaussian regulariser, no predictor)"

    def __init__(
        self,
        *,
        lambda_reg: float = 0.02,
        combination: Combination = "paper_code",
        num_slices: int = 64,
        n_points: int = 9,
        t_max: float = 3.0,
        weight: SIGRegWeight = "gaussian",
        num_global_views: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not (isinstance(lambda_reg, (int, float)) and 0.0 <= lambda_reg <= 1.0):
            raise ValueError(f"lambda_reg must be in [0, 1], got {lambda_reg!r}")
        if combination not in COMBINATIONS:
            raise ValueError(
                f"combination must be one of {COMBINATIONS} ('paper_code' = L_inv/2 + lambda*SIGReg, "
                f"'upstream' = (1-lambda)*L_inv + lambda*SIGReg), got {combination!r}"
            )
        if num_global_views is not None and not (isinstance(num_global_views, int) and num_global_views >= 1):
            raise ValueError(f"num_global_views must be a positive int or None (= all views), got {num_global_views!r}")
        self.lambda_reg = float(lambda_reg)
        self.combination = combination
        self.num_global_views = num_global_views
        self.sigreg = SIGReg(num_slices=num_slices, n_points=n_points, t_max=t_max, weight=weight, seed=seed)

    @classmethod
    def from_context(cls, ctx: BuildContext, **kwargs: Any) -> LeJEPAObjective:
        """The run seed seeds the SIGReg directions unless the config sets ``seed``."""
        return cls(**{"seed": ctx.seed, **kwargs})

    def invariance_loss(self, z: Tensor) -> Tensor:
        """``mean_{v,b,j} (mu_{b,j} - z_{v,b,j})^2`` over the global batch. Args: z ``[V, B, D]``."""
        v = z.shape[0]
        vg = v if self.num_global_views is None else self.num_global_views
        if vg > v:
            raise ValueError(f"num_global_views={vg} exceeds the number of views V={v} of z {tuple(z.shape)}")
        zf = upcast(z)
        mu = zf[:vg].mean(0, keepdim=True)
        local = torch.stack([(mu - zf).square().sum(), zf.new_full((), float(zf.numel()))])
        s = all_reduce_sum(local)
        return s[0] / s[1]

    def draw(self, step: int, z_shape: tuple[int, int, int], device: torch.device) -> StepContext:
        """This step's SIGReg directions ``[D, num_slices]`` (host side, see :meth:`Objective.draw`)."""
        return StepContext(step, {"sigreg_directions": self.sigreg.directions(z_shape[-1], step, device)})

    def combine(self, inv: Tensor, sig: Tensor) -> Tensor:
        """The total loss from the invariance and SIGReg terms under :attr:`combination`: ``paper_code``
        ``inv / 2 + lambda sig``, ``upstream`` ``(1 - lambda) inv + lambda sig``."""
        if self.combination == "paper_code":
            return 0.5 * inv + self.lambda_reg * sig
        return (1.0 - self.lambda_reg) * inv + self.lambda_reg * sig

    def forward(self, z: Tensor, ctx: StepContext, z_target: Tensor | None = None) -> ObjectiveOutput:
        """Args: z ``[V, B, D]``; ctx: from :meth:`draw` (the step's SIGReg directions)."""
        self.check_no_target(z_target, type(self).__name__)
        self.check_views(z)
        inv = self.invariance_loss(z)
        sig = self.sigreg(z, ctx.draw("sigreg_directions", type(self).__name__))
        total = self.combine(inv, sig)
        terms = {"pred": inv, "sigreg": sig, "total": total}
        return ObjectiveOutput(total, {k: t.detach() for k, t in terms.items()})
