"""VICReg: variance-invariance-covariance regularisation (Bardes, Ponce, LeCun, ICLR 2022).

The maths and defaults are on the docs page ``docs/regularisers.md`` ("VICReg and VISReg").

The terms are :func:`vicreg_terms` (a pure function of ``z``); :class:`VICRegObjective` is the registered
wrapper (``objective.name: vicreg``) that adds the optional expander and the weights.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from hamjepa.distributed import all_reduce_sum, get_world_size
from hamjepa.numerics import upcast
from hamjepa.objectives.base import BuildContext, Objective, ObjectiveOutput, StepContext
from hamjepa.objectives.registry import register_objective


def vicreg_terms(z: Tensor, *, gamma: float = 1.0, eps: float = 1e-4) -> dict[str, Tensor]:
    """The unweighted VICReg terms of ``z [V, N, D]`` over the global batch.

    For each view ``Z_v`` with column means ``m`` and covariance ``C = (Z - m)^T (Z - m) / (N - 1)``
    (``N`` the global batch size):

    * ``variance``   ``= mean_v (1/D) sum_j max(0, gamma - sqrt(C_jj + eps))`` (unbiased variance);
    * ``covariance`` ``= (2/V) sum_v (1/D) sum_{i != j} C_ij^2`` (the sum over the two views at ``V = 2``);
    * ``invariance`` ``= mean over unordered view pairs (a, b) of (1/(N D)) sum_n ||z_an - z_bn||^2``.

    Under a process group the column sums, the centred second moments, the squared differences and the
    counts are summed over ranks with the autograd-aware :func:`~hamjepa.distributed.all_reduce_sum`
    (two collectives: the mean first, then the centred moments, which does not cancel in float32), so the
    values equal one process on the concatenated batch (see :mod:`hamjepa.objectives.base`).

    Args:
        z: embeddings ``[V, N, D]``, ``V >= 2``, global ``N >= 2``.
        gamma: target standard deviation of every column.
        eps: added to the variance under the square root.

    Returns:
        ``{"invariance", "variance", "covariance"}``: 0-d tensors (float32, or float64 for float64 input).
    """
    v, n, d = z.shape
    zf = upcast(z)
    pairs = list(itertools.combinations(range(v), 2))
    sq = torch.stack([(zf[a] - zf[b]).square().sum() for a, b in pairs]).sum()
    first = all_reduce_sum(torch.cat([zf.sum(1).reshape(-1), sq.reshape(1), zf.new_full((1,), float(n))]))
    n_global = first[-1]
    mean = first[: v * d].reshape(v, 1, d) / n_global
    centred = zf - mean
    cov = all_reduce_sum(torch.einsum("vnd,vne->vde", centred, centred)) / (n_global - 1)
    var = torch.diagonal(cov, dim1=-2, dim2=-1)  # [V, D]
    variance = torch.relu(gamma - torch.sqrt(var + eps)).mean()
    off_diagonal = cov.square().sum((-2, -1)) - var.square().sum(-1)  # [V]
    covariance = (2.0 / v) * (off_diagonal / d).sum()
    invariance = first[v * d] / (len(pairs) * n_global * d)
    return {"invariance": invariance, "variance": variance, "covariance": covariance}


def build_expander(dim: int, widths: tuple[int, ...]) -> nn.Sequential:
    """VICReg's expander: ``Linear -> BatchNorm1d -> ReLU`` for every width but the last, then ``Linear``
    without bias.

    ``widths = (2048, 2048, 2048)`` is the 3-layer expander common on CIFAR (8192 on ImageNet).
    """
    layers: list[nn.Module] = []
    sizes = (dim, *widths)
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        last = i == len(widths) - 1
        layers.append(nn.Linear(a, b, bias=not last))
        if not last:
            layers += [nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


@register_objective("vicreg")
class VICRegObjective(Objective):
    """VICReg: ``L = lam * invariance + mu * variance + nu * covariance`` of :func:`vicreg_terms`.

    Headless by default: the terms act on the encoder output ``z`` itself, the protocol of the paper's
    SIGReg baseline. With ``expander_widths`` (e.g. ``[2048, 2048, 2048]``) every view first goes through
    the 3-layer MLP expander of the VICReg paper (:func:`build_expander`), whose parameters train with the
    encoder. The published weights ``lam = mu = 25``, ``nu = 1``, ``gamma = 1``, ``eps = 1e-4`` are the
    defaults. Statistics are global-batch ones under DDP, the expander's BatchNorm layers included (the
    engine converts them with the encoder's when ``model.sync_batchnorm`` is on, the default).

    Terms (detached 0-d): ``invariance``, ``variance``, ``covariance`` (unweighted) and ``total``.

    Args:
        lam: weight of the invariance term (mean squared difference between the views).
        mu: weight of the variance term (hinge on every column's standard deviation).
        nu: weight of the covariance term (squared off-diagonal covariances).
        gamma: target standard deviation of every column in the variance term.
        eps: added to the variance under the square root.
        expander_widths: layer widths of the MLP expander applied to every view first (e.g.
            ``[2048, 2048, 2048]``); null = headless (the terms act on the encoder output).
        dim: input width of the expander (default: the encoder's output width, filled in by the engine).
    """

    description: ClassVar[str] = "VICReg: invariance + variance + covariance terms (no predictor)"

    def __init__(
        self,
        *,
        lam: float = 25.0,
        mu: float = 25.0,
        nu: float = 1.0,
        gamma: float = 1.0,
        eps: float = 1e-4,
        expander_widths: list[int] | None = None,
        dim: int | None = None,
    ) -> None:
        super().__init__()
        for key, value in (("lam", lam), ("mu", mu), ("nu", nu)):
            if not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"objective.{key} must be a number >= 0, got {value!r}")
        if not gamma > 0 or not eps > 0:
            raise ValueError(f"objective.gamma and objective.eps must be > 0, got gamma={gamma!r}, eps={eps!r}")
        widths = tuple(expander_widths or ())
        if any(not (isinstance(w, int) and w >= 1) for w in widths):
            raise ValueError(
                f"objective.expander_widths must be a list of positive ints (e.g. [2048, 2048, 2048]) or null "
                f"for headless, got {expander_widths!r}"
            )
        if widths and not (isinstance(dim, int) and dim >= 1):
            raise ValueError(f"objective.expander_widths needs the input width dim (the encoder's), got dim={dim!r}")
        self.lam, self.mu, self.nu = float(lam), float(mu), float(nu)
        self.gamma, self.eps = float(gamma), float(eps)
        self.expander = build_expander(dim, widths) if widths else None

    @classmethod
    def from_context(cls, ctx: BuildContext, **kwargs: Any) -> VICRegObjective:
        """The encoder width fills ``dim`` (the expander's input) unless the config sets it."""
        return cls(**{"dim": ctx.dim, **kwargs})

    def forward(self, z: Tensor, ctx: StepContext, z_target: Tensor | None = None) -> ObjectiveOutput:
        """Args: z ``[V, B, D]``; ctx: the step (VICReg draws nothing)."""
        self.check_no_target(z_target, type(self).__name__)
        v, b, d = self.check_views(z)
        if b * get_world_size() < 2:
            raise ValueError(f"VICReg needs a global batch of at least 2 samples, got z of shape {tuple(z.shape)}")
        if self.expander is not None:
            z = self.expander(z.reshape(v * b, d)).reshape(v, b, -1)
        terms = vicreg_terms(z, gamma=self.gamma, eps=self.eps)
        total = self.lam * terms["invariance"] + self.mu * terms["variance"] + self.nu * terms["covariance"]
        terms["total"] = total
        return ObjectiveOutput(total, {k: t.detach() for k, t in terms.items()})

    def extra_repr(self) -> str:
        return f"lam={self.lam}, mu={self.mu}, nu={self.nu}, gamma={self.gamma}, eps={self.eps}"
