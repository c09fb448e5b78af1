"""VISReg: decoupled center, scale and sliced-Wasserstein shape regularisation (Wu et al., 2026).

The maths, defaults and DDP modes are on the docs page ``docs/regularisers.md`` ("VICReg and VISReg").

The terms are :func:`visreg_terms` (a pure function of the complete batch ``z`` and the directions);
:class:`VISRegObjective` is the registered wrapper (``objective.name: visreg``) that draws the directions,
chooses the batch (``ddp`` mode) and weighs the terms.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from hamjepa.distributed import all_gather_cat, get_rank
from hamjepa.numerics import upcast
from hamjepa.objectives.base import BuildContext, Objective, ObjectiveOutput, StepContext
from hamjepa.objectives.registry import register_objective
from hamjepa.seeding import mix_seed

DDPMode = Literal["global", "per_device"]
DDP_MODES: tuple[str, ...] = ("global", "per_device")


def normal_quantiles(n: int, *, dtype: torch.dtype = torch.float64, device: torch.device | None = None) -> Tensor:
    """``q_k = Phi^-1(k / (n + 1))`` for ``k = 1..n`` (the standard normal quantiles), computed in float64."""
    positions = torch.arange(1, n + 1, dtype=torch.float64, device=device) / (n + 1)
    return torch.special.ndtri(positions).to(dtype)


def visreg_terms(
    z: Tensor,
    directions: Tensor,
    *,
    num_global_views: int | None = None,
    eps: float = 1e-4,
    quantiles: Tensor | None = None,
) -> dict[str, Tensor]:
    """The unweighted VISReg terms of the batch ``z [V, N, D]``, each averaged over views.

    With ``m`` the column means and ``s`` the population (``1/N``) column stds of a view:

    * ``center`` ``= (1/D) sum_j m_j^2``;
    * ``scale``  ``= (1/D) sum_j (1 - s_j)^2``;
    * ``shape``  ``= (1/(N K)) sum_k sum_n (sort(Zh a_k)_n - q_n)^2`` with ``Zh = (Z - m) / (sg(s) + eps)``
      (``sg``: stop-gradient), ``a_k`` the columns of ``directions`` and ``q`` :func:`normal_quantiles`;
    * ``pred`` (LeJEPA's invariance) ``= (1/(V N D)) sum_v sum_n ||z_vn - c_n||^2``, ``c_n`` the mean of the
      first ``num_global_views`` views (all when None) of sample ``n``.

    No collectives: ``z`` is the whole batch the terms are meant over (a gathered global batch, or one
    device's batch).

    Args:
        z: embeddings ``[V, N, D]``, ``N >= 2``.
        directions: unit directions ``[D, K]`` shared by all views (cast to ``z``'s compute dtype).
        num_global_views: how many leading views are global (None = all).
        eps: added to the (stop-gradient) std before standardising.
        quantiles: ``[N]`` targets of the sorted projections; None = :func:`normal_quantiles` ``(N)``.

    Returns:
        ``{"pred", "center", "scale", "shape"}``: 0-d tensors (float32, or float64 for float64 input).
    """
    v, n, d = z.shape
    vg = v if num_global_views is None else num_global_views
    if not 1 <= vg <= v:
        raise ValueError(f"num_global_views={vg} must be in [1, V={v}] for z of shape {tuple(z.shape)}")
    if directions.ndim != 2 or directions.shape[0] != d:
        raise ValueError(f"directions must be [D={d}, K], got shape {tuple(directions.shape)}")
    zf = upcast(z)
    pred = (zf[:vg].mean(0, keepdim=True) - zf).square().mean()
    mean = zf.mean(1, keepdim=True)  # [V, 1, D]
    std = zf.std(1, correction=0, keepdim=True)
    center = mean.square().mean()
    scale = (1.0 - std).square().mean()
    standardised = (zf - mean) / (std.detach() + eps)
    projections = (standardised @ directions.to(zf.dtype)).sort(dim=1).values  # [V, N, K]
    q = normal_quantiles(n, dtype=zf.dtype, device=zf.device) if quantiles is None else quantiles.to(zf.dtype)
    shape = (projections - q.reshape(1, n, 1)).square().mean()
    return {"pred": pred, "center": center, "scale": scale, "shape": shape}


@register_objective("visreg")
class VISRegObjective(Objective):
    """VISReg: ``L = (1 - lam) pred + lam (w_scale scale + w_shape shape + w_center center)``.

    The terms are :func:`visreg_terms`'s; the ``num_slices`` unit directions are drawn every step by
    :meth:`draw_directions` from a ``torch.Generator`` seeded with ``mix_seed(seed, step, rank)``, so no
    communication is needed to agree on them. ``lam = 0.9`` (the default) is the paper's ImageNet-1K value;
    the paper recommends ``0.6`` for small data sets (``configs/cifar100_visreg.yaml``).

    Two DDP modes (``ddp``):

    * ``global`` (default): every rank gathers the views of all ranks (:func:`hamjepa.distributed.all_gather_cat`,
      which passes gradients back) and evaluates the loss on the global batch with the directions of rank 0,
      so a run on several devices equals one process on the concatenated batch, the convention of every
      objective in this package (:mod:`hamjepa.objectives.base`), and results do not depend on the number of
      devices. The cost is one all-gather of ``z`` per step.
    * ``per_device``: the paper's setting. Each rank evaluates the loss on its own batch with its own
      directions (no communication; ``world_size x num_slices`` directions in total); DDP's gradient average
      then trains on the mean of the per-device losses. The logged terms are rank 0's.

    On one process both modes are the same computation. Terms (detached 0-d): ``pred``, ``center``,
    ``scale``, ``shape`` (unweighted) and ``total``.

    Args:
        lam: weight of the regularisers against the prediction term (0.9 ImageNet-1K, 0.6 small data sets).
        w_scale, w_shape, w_center: weights of the scale, shape and centre regularisers.
        num_slices: unit directions the shape term projects on (redrawn every step).
        eps: added to the standard deviations that standardise the views for the shape term.
        num_global_views: the first this many views are global (null = all views).
        ddp: ``global`` or ``per_device`` evaluation under DDP (see above).
        seed: seed of the directions (default: the run's ``seed``).
    """

    description: ClassVar[str] = "VISReg: view prediction + sliced scale, shape and centre regularisers (no predictor)"

    def __init__(
        self,
        *,
        lam: float = 0.9,
        w_scale: float = 1.0,
        w_shape: float = 1.0,
        w_center: float = 1.0,
        num_slices: int = 4096,
        eps: float = 1e-4,
        num_global_views: int | None = None,
        ddp: DDPMode = "global",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not (isinstance(lam, (int, float)) and 0.0 <= lam <= 1.0):
            raise ValueError(f"objective.lam must be in [0, 1] (0.9 on ImageNet-1K, 0.6 on small data), got {lam!r}")
        for key, value in (("w_scale", w_scale), ("w_shape", w_shape), ("w_center", w_center)):
            if not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"objective.{key} must be a number >= 0, got {value!r}")
        if not (isinstance(num_slices, int) and num_slices >= 1):
            raise ValueError(f"objective.num_slices must be a positive int (the paper: 4096), got {num_slices!r}")
        if not eps > 0:
            raise ValueError(f"objective.eps must be > 0, got {eps!r}")
        if num_global_views is not None and not (isinstance(num_global_views, int) and num_global_views >= 1):
            raise ValueError(
                f"objective.num_global_views must be a positive int or null (= all views), got {num_global_views!r}"
            )
        if ddp not in DDP_MODES:
            raise ValueError(f"objective.ddp must be one of {DDP_MODES}, got {ddp!r}")
        if not (isinstance(seed, int) and seed >= 0):
            raise ValueError(f"objective.seed must be a non-negative int, got {seed!r}")
        self.lam = float(lam)
        self.w_scale, self.w_shape, self.w_center = float(w_scale), float(w_shape), float(w_center)
        self.num_slices, self.eps = num_slices, float(eps)
        self.num_global_views, self.ddp, self.seed = num_global_views, ddp, seed

    @classmethod
    def from_context(cls, ctx: BuildContext, **kwargs: Any) -> VISRegObjective:
        """The run seed seeds the directions unless the config sets ``seed``."""
        return cls(**{"seed": ctx.seed, **kwargs})

    def draw_directions(self, step: int, dim: int, device: torch.device) -> Tensor:
        """This step's unit directions ``[dim, num_slices]`` (float32).

        Seeded with ``mix_seed(seed, step, rank)``, ``rank`` being 0 in ``global`` mode (every rank draws the
        same directions) and this process's rank in ``per_device`` mode.
        """
        if not (isinstance(step, int) and step >= 0):
            raise ValueError(f"step must be a non-negative int, got {step!r}")
        rank = get_rank() if self.ddp == "per_device" else 0
        gen = torch.Generator(device=device).manual_seed(mix_seed(self.seed, step, rank))
        a = torch.randn(dim, self.num_slices, generator=gen, device=device, dtype=torch.float32)
        return a / a.norm(dim=0, keepdim=True)

    def draw(self, step: int, z_shape: tuple[int, int, int], device: torch.device) -> StepContext:
        """This step's directions ``[D, num_slices]`` (host side, see :meth:`Objective.draw`)."""
        return StepContext(step, {"directions": self.draw_directions(step, z_shape[-1], device)})

    def combine(self, terms: dict[str, Tensor]) -> Tensor:
        """The total loss from :func:`visreg_terms`' terms: ``(1 - lam) pred + lam (w_scale scale + w_shape shape
        + w_center center)``."""
        reg = self.w_scale * terms["scale"] + self.w_shape * terms["shape"] + self.w_center * terms["center"]
        return (1.0 - self.lam) * terms["pred"] + self.lam * reg

    def forward(self, z: Tensor, ctx: StepContext, z_target: Tensor | None = None) -> ObjectiveOutput:
        """Args: z ``[V, B, D]`` (this rank's batch); ctx: from :meth:`draw` (the step's directions)."""
        self.check_no_target(z_target, type(self).__name__)
        self.check_views(z)
        directions = ctx.draw("directions", type(self).__name__)
        batch = all_gather_cat(z, dim=1) if self.ddp == "global" else z
        if batch.shape[1] < 2:
            raise ValueError(f"VISReg needs a batch of at least 2 samples, got z of shape {tuple(batch.shape)}")
        terms = visreg_terms(batch, directions, num_global_views=self.num_global_views, eps=self.eps)
        terms["total"] = self.combine(terms)
        return ObjectiveOutput(terms["total"], {k: t.detach() for k, t in terms.items()})

    def extra_repr(self) -> str:
        return (
            f"lam={self.lam}, w_scale={self.w_scale}, w_shape={self.w_shape}, w_center={self.w_center}, "
            f"num_slices={self.num_slices}, eps={self.eps}, ddp={self.ddp!r}, seed={self.seed}"
        )
