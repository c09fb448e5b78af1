"""HamJEPA objective: symplectic (Hamiltonian) prediction between two views + anti-collapse regularisers.

Spec sections D.1-D.8 and C.4. Paper CIFAR-100 defaults (docs/spec.md §D.7) are the constructor defaults.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from hamjepa.distributed import all_reduce_sum
from hamjepa.numerics import upcast
from hamjepa.objectives.base import BuildContext, Objective, ObjectiveOutput, StepContext
from hamjepa.objectives.floors import ProjectedLogDetFloor, SpectralMethod
from hamjepa.objectives.registry import register_objective
from hamjepa.objectives.regularizers import Hinge, MeanPenalty, ScaleBudget, VarianceFloor, check_hinge, column_moments

MatchMode = Literal["q", "qp", "p"]
MATCH_MODES: tuple[str, ...] = ("q", "qp", "p")


def _check_weight(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and value >= 0):
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


@register_objective("hamjepa")
class HamJEPAObjective(Objective):
    """HamJEPA loss (docs/spec.md §D.7): ``L = L_pred + w_bud L_bud + w_var L_var + w_ld L_logdet + w_mean L_mean``.

    ``z [V, B, D]`` with ``D = 2d`` (``q = z[..., :d]``, ``p = z[..., d:]``), ``V >= 2``. The prediction
    uses views 0 and 1 (the two global views); the regularisers act on all ``V`` views stacked
    (``Z [V*B, D]``, fp32).

    Prediction (docs/spec.md §D.1/§D.2), in fp32 (the predictor receives ``z.float()``; [D] the reference evaluated
    the MSE on bf16 tensors): forward ``m(Psi(z_0, +1), sg z_1)``; if ``bidirectional`` also
    ``m(Psi(z_1, backward_direction), sg z_0)`` and the two are averaged. ``backward_direction=-1`` is the
    exact inverse map (paper, CIFAR script); ``+1`` is the ImageNet-script variant [D]. Matching ``m``:

    * ``match='q'``: ``mse(q_hat, q*) + p_weight * mse(p_hat, p*)`` (CIFAR, ``p_weight=0.2``);
    * ``match='qp'``: ``mse(z_hat, z*)`` over all ``2d`` coordinates ``= (mse_q + mse_p) / 2`` (ImageNet);
    * ``match='p'``: ``mse(p_hat, p*)`` only (not implemented in the reference code) [I].

    Every MSE is a global mean: squared-error sums and element counts are all-reduced (see
    :mod:`hamjepa.objectives.base` for the DDP gradient convention). The optional energy term
    (``energy_weight > 0``, off in all paper configs) adds ``energy_weight * mean_b (H(z_hat_b) -
    sg H(z_src_b))^2`` to each direction's ``m`` before the two directions are averaged [I]; it needs a
    predictor with ``energy(z) -> [B]``.

    Regularisers: D.3 :class:`ScaleBudget` on (Q, P); D.4 :class:`VarianceFloor` on Q (if ``std_floor_q``)
    and on P (if ``std_floor_p``); D.5 one :class:`ProjectedLogDetFloor` on Q and one on P (seeds ``seed``
    and ``seed + 1``), the PR/eigmax terms sharing ``logdet_weight``; D.6 :class:`MeanPenalty` on ``Z``.
    ``logdet_method`` selects how the log-det module evaluates its spectrum: ``"sync_free"`` (default;
    Cholesky log-det, trace/Frobenius PR, power-iterated top eigenvalue, no host synchronisation) or
    ``"exact"`` (``slogdet`` + ``eigvalsh`` as in the reference code); same values to round-off
    (``eigmax`` to ~1e-4 relative or better).

    Residual-scale warm-up (C.4): with ``residual_scale_warmup_epochs = E_w > 0``,
    :meth:`on_epoch_start` sets ``predictor.residual_scale = s * min(1, epoch / E_w)`` where ``s`` is
    the predictor's ``residual_scale`` at construction (so ``s/E_w`` at epoch 1 — the reference code —
    not 0 as the paper text says).

    Terms (detached 0-d): ``pred, budget, var, logdet, mean, total`` and monitoring ``q2, p2, q_std_min,
    pr_q, pr_p, logdet_q, logdet_p, eigmax_q, eigmax_p, z_mean2`` (``z_mean2 = ||mean(Z)||^2``);
    ``energy`` too when ``energy_weight > 0``; ``cholesky_info_q, cholesky_info_p`` (the Cholesky status
    of each projected covariance, 0 = factorised) with ``logdet_method="sync_free"``.

    Args:
        predictor: the phase-space predictor ``Psi`` (built by the engine from the ``predictor:`` section).
        match: matching of the prediction: ``q`` (CIFAR), ``qp`` (ImageNet) or ``p`` (see above).
        p_weight: weight of the ``p`` MSE in ``match='q'`` (0.2 on CIFAR).
        bidirectional: also predict view 0 from view 1 and average the two directions.
        backward_direction: direction of that backward prediction: -1 (exact inverse map, paper) or +1
            (ImageNet-script variant).
        detach_target: stop the gradient through the target embedding (``sg z``).
        energy_weight: weight of the optional energy-conservation term (0 = off, every paper config).
        budget_weight: weight ``w_bud`` of the scale budget (docs/spec.md §D.3).
        target_q, target_p: target mean squared value of the ``q`` and ``p`` coordinates in the scale budget.
        var_weight: weight ``w_var`` of the variance floors (docs/spec.md §D.4).
        std_floor_q, std_floor_p: per-dimension standard-deviation floor of ``q`` / ``p`` (null = no floor).
        logdet_weight: weight ``w_ld`` of the log-det floors of ``q`` and ``p`` with their PR and top-eigenvalue
            terms (docs/spec.md §D.5).
        logdet_proj_dim: dimension of the random projection the log-det floor is evaluated in.
        logdet_floor: floor on the per-dimension log-determinant of the projected covariance.
        logdet_eps: ridge added to the projected covariance.
        logdet_refresh: redraw the random projection every this many calls of the floor (one per training step).
        logdet_method: ``sync_free`` (Cholesky, power iteration, no host synchronisation) or ``exact``
            (``slogdet`` + ``eigvalsh``, the reference code's); same values to round-off.
        pr_floor_q, pr_floor_p: floor on the normalised participation ratio of ``q`` / ``p`` (null = off).
        eigmax_ceiling_q, eigmax_ceiling_p: ceiling on the top eigenvalue's share of the spectrum of ``q`` /
            ``p`` (null = off).
        mean_weight: weight ``w_mean`` of the mean penalty (docs/spec.md §D.6).
        hinge: ``squared`` (reference code) or ``linear`` (paper text) hinge of the floors.
        residual_scale_warmup_epochs: epochs ``E_w`` of the predictor's residual-scale warm-up (0 = none;
            docs/spec.md §C.4).
        seed: seed of the log-det projections (default: the run's ``seed``).
    """

    predictor_kind: ClassVar[Literal["hamiltonian", "mlp"] | None] = "hamiltonian"
    needs_phase_split: ClassVar[bool] = True
    description: ClassVar[str] = (
        "HamJEPA: phase-space embedding z = [q; p], symplectic (leapfrog) Hamiltonian predictor, "
        "non-isotropic anti-collapse floors"
    )

    def __init__(
        self,
        *,
        predictor: nn.Module,
        match: MatchMode = "q",
        p_weight: float = 0.2,
        bidirectional: bool = True,
        backward_direction: int = -1,
        detach_target: bool = True,
        energy_weight: float = 0.0,
        budget_weight: float = 0.2,
        target_q: float = 1.0,
        target_p: float = 1.0,
        var_weight: float = 0.5,
        std_floor_q: float | None = 0.2,
        std_floor_p: float | None = 0.2,
        logdet_weight: float = 0.5,
        logdet_proj_dim: int = 128,
        logdet_floor: float = -1.5,
        logdet_eps: float = 1e-4,
        logdet_refresh: int = 16,
        logdet_method: SpectralMethod = "sync_free",
        pr_floor_q: float | None = 0.12,
        pr_floor_p: float | None = 0.16,
        eigmax_ceiling_q: float | None = 0.35,
        eigmax_ceiling_p: float | None = 0.30,
        mean_weight: float = 0.05,
        hinge: Hinge = "squared",
        residual_scale_warmup_epochs: int = 10,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(predictor, nn.Module):
            raise ValueError(
                f"predictor must be an nn.Module with forward(z, direction), got {type(predictor).__name__}"
            )
        if match not in MATCH_MODES:
            raise ValueError(f"match must be one of {MATCH_MODES} ('q' CIFAR, 'qp' ImageNet), got {match!r}")
        if backward_direction not in (-1, 1):
            raise ValueError(
                f"backward_direction must be -1 (exact inverse, paper) or +1 (ImageNet-script variant), "
                f"got {backward_direction!r}"
            )
        if not (isinstance(residual_scale_warmup_epochs, int) and residual_scale_warmup_epochs >= 0):
            raise ValueError(
                "residual_scale_warmup_epochs must be an int >= 0 (0 = no warm-up), got "
                f"{residual_scale_warmup_epochs!r}"
            )
        if residual_scale_warmup_epochs > 0 and not hasattr(predictor, "residual_scale"):
            raise ValueError(
                f"residual_scale_warmup_epochs={residual_scale_warmup_epochs} needs a predictor with a "
                f"residual_scale attribute ({type(predictor).__name__} has none); set it to 0"
            )
        energy_weight = _check_weight("energy_weight", energy_weight)
        if energy_weight > 0 and not callable(getattr(predictor, "energy", None)):
            raise ValueError(
                f"energy_weight > 0 needs a predictor with energy(z) -> [B] ({type(predictor).__name__} has "
                "none); "
                "set energy_weight=0"
            )
        for name, value in (("std_floor_q", std_floor_q), ("std_floor_p", std_floor_p)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 or None (off), got {value!r}")
        if not (isinstance(seed, int) and seed >= 0):
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")

        self.predictor = predictor
        self.match = match
        self.p_weight = _check_weight("p_weight", p_weight)
        self.bidirectional = bool(bidirectional)
        self.backward_direction = int(backward_direction)
        self.detach_target = bool(detach_target)
        self.energy_weight = energy_weight
        self.budget_weight = _check_weight("budget_weight", budget_weight)
        self.var_weight = _check_weight("var_weight", var_weight)
        self.logdet_weight = _check_weight("logdet_weight", logdet_weight)
        self.mean_weight = _check_weight("mean_weight", mean_weight)
        self.hinge = check_hinge(hinge)
        self.residual_scale_warmup_epochs = residual_scale_warmup_epochs
        self.base_residual_scale: float | None = (
            float(predictor.residual_scale) if hasattr(predictor, "residual_scale") else None
        )

        self.budget = ScaleBudget(target_q, target_p)
        # The q floor is always built (it also provides the q_std_min statistic); gamma 0 => zero loss.
        self.var_q = VarianceFloor(std_floor_q if std_floor_q is not None else 0.0, hinge=hinge)
        self.var_p = VarianceFloor(std_floor_p, hinge=hinge) if std_floor_p is not None else None
        self.use_var_q = std_floor_q is not None
        logdet_common = dict(
            proj_dim=logdet_proj_dim,
            floor=logdet_floor,
            eps=logdet_eps,
            refresh_interval=logdet_refresh,
            hinge=hinge,
            method=logdet_method,
        )
        self.logdet_q = ProjectedLogDetFloor(
            pr_floor=pr_floor_q, eigmax_ceiling=eigmax_ceiling_q, seed=seed, **logdet_common
        )
        self.logdet_p = ProjectedLogDetFloor(
            pr_floor=pr_floor_p, eigmax_ceiling=eigmax_ceiling_p, seed=seed + 1, **logdet_common
        )
        self.mean_penalty = MeanPenalty()
        self._direction_cache: dict[tuple[int, torch.dtype, torch.device], Tensor] = {}

    @classmethod
    def from_context(cls, ctx: BuildContext, **kwargs: Any) -> HamJEPAObjective:
        """The engine's predictor (from the config's ``predictor:`` section) and the run seed (unless the
        config sets ``seed``)."""
        return cls(**{"seed": ctx.seed, **kwargs, "predictor": ctx.predictor})

    def predictors(self) -> dict[str, nn.Module]:
        """``{"predictor": the phase-space predictor}``."""
        return {"predictor": self.predictor}

    def predict(self, z: Tensor, direction: int = 1) -> Tensor:
        """``z [B, 2d] -> [B, 2d]``: the predictor's map in ``direction`` (+1 forward, -1 backward)."""
        return self.predictor(z, direction=direction)

    # ------------------------------------------------------------------ hooks
    def on_epoch_start(self, epoch: int) -> None:
        """Residual-scale warm-up (docs/spec.md §C.4): ``s_e = s * min(1, epoch / E_w)`` (1-indexed ``epoch``)."""
        super().on_epoch_start(epoch)
        if self.residual_scale_warmup_epochs > 0 and self.base_residual_scale is not None:
            factor = min(1.0, epoch / self.residual_scale_warmup_epochs)
            self.predictor.residual_scale = self.base_residual_scale * factor

    # ------------------------------------------------------------------ loss pieces
    def _direction_column(self, b: int, like: Tensor) -> Tensor:
        """``[2B, 1]`` per-row signs: ``+1`` for the first ``B`` rows, ``backward_direction`` for the rest
        (cached per shape, dtype and device)."""
        key = (b, like.dtype, like.device)
        column = self._direction_cache.get(key)
        if column is None:
            column = torch.ones(2 * b, 1, dtype=like.dtype, device=like.device)
            column[b:] = float(self.backward_direction)
            self._direction_cache = {key: column}
        return column

    def _predict(self, z0: Tensor, z1: Tensor) -> Tensor:
        """Predictions from ``z0`` (``+1``) and, when bidirectional, from ``z1`` (``backward_direction``),
        stacked on the batch axis: ``[n_dir * B, 2d]`` fp32. A predictor with ``per_row_direction`` gets
        both directions in one call (rows never interact, so this equals two calls)."""
        if not self.bidirectional:
            pred = upcast(self.predictor(z0, direction=+1))
        elif getattr(self.predictor, "per_row_direction", False):
            src = torch.cat([z0, z1])
            pred = upcast(self.predictor(src, direction=self._direction_column(z0.shape[0], src)))
        else:
            pred = torch.cat(
                [
                    upcast(self.predictor(z0, direction=+1)),
                    upcast(self.predictor(z1, direction=self.backward_direction)),
                ]
            )
        expected = (z0.shape[0] * (2 if self.bidirectional else 1), z0.shape[1])
        if tuple(pred.shape) != expected:
            raise ValueError(f"predictor returned shape {tuple(pred.shape)}, expected {expected}")
        return pred

    def _match(self, sse_q: Tensor, sse_p: Tensor, count: Tensor) -> Tensor:
        """Matching loss ``m`` from global sums; ``count`` = global ``B * d``."""
        if self.match == "q":
            return sse_q / count + self.p_weight * sse_p / count
        if self.match == "qp":
            return (sse_q + sse_p) / (2 * count)
        return sse_p / count

    def prediction_loss(self, z: Tensor) -> tuple[Tensor, Tensor | None]:
        """``L_pred`` (docs/spec.md §D.1/§D.2) as a global mean; returns ``(loss, energy_term_or_None)``.

        Args: z ``[V, B, 2d]`` (views 0 and 1 are used).
        """
        z0, z1 = upcast(z[0]), upcast(z[1])
        b, d = z0.shape[0], z0.shape[1] // 2
        n_dir = 2 if self.bidirectional else 1
        pred = self._predict(z0, z1)
        target = torch.cat([z1, z0]) if self.bidirectional else z1
        if self.detach_target:
            target = target.detach()
        sums = (pred - target).square().reshape(n_dir, b, 2, d).sum((1, 3))  # [n_dir, (sse_q, sse_p)]
        if self.energy_weight > 0:
            src = torch.cat([z0, z1]) if self.bidirectional else z0
            energy_err = upcast(self.predictor.energy(pred) - self.predictor.energy(src).detach())
            sums = torch.cat([sums, energy_err.square().reshape(n_dir, b).sum(1, keepdim=True)], dim=1)
        local = torch.cat([sums.reshape(-1), z0.new_full((1,), float(b))])
        s = all_reduce_sum(local)
        per_dir = s[:-1].reshape(n_dir, -1)
        batch = s[-1].detach()  # a count: no gradient to carry
        matches = self._match(per_dir[:, 0], per_dir[:, 1], batch * d)  # [n_dir]
        energy = None
        if self.energy_weight > 0:
            energies = per_dir[:, 2] / batch
            energy = energies.mean()
            matches = matches + self.energy_weight * energies
        return matches.mean(), energy

    # ------------------------------------------------------------------ forward
    def draw(self, step: int, z_shape: tuple[int, int, int], device: torch.device) -> StepContext:
        """Count the log-det floors' calls and fetch their projections (host side, see :meth:`Objective.draw`)."""
        v, b, dim = self.check_view_shape(tuple(z_shape))
        projection_q = self.logdet_q.draw(dim // 2, v * b, device)
        projection_p = self.logdet_p.draw(dim - dim // 2, v * b, device)
        return StepContext(step, {"logdet_projection_q": projection_q, "logdet_projection_p": projection_p})

    def forward(self, z: Tensor, ctx: StepContext, z_target: Tensor | None = None) -> ObjectiveOutput:
        """Args: z ``[V, B, 2d]`` encoder outputs (view-major); ctx: from :meth:`draw` (the log-det projections)."""
        self.check_no_target(z_target, type(self).__name__)
        v, b, dim = self.check_views(z)
        if dim % 2:
            raise ValueError(
                f"HamJEPA needs an even embedding dimension D = 2d (q = z[..., :d], p = z[..., d:]), got "
                f"z of shape {tuple(z.shape)}"
            )
        d = dim // 2
        pred, energy = self.prediction_loss(z)

        flat = upcast(z.reshape(v * b, dim))
        q, p = flat[:, :d], flat[:, d:]
        moments = column_moments(flat)  # one all-reduce for the budget, floors, mean penalty and centring
        moments_q, moments_p = moments.columns(0, d), moments.columns(d, dim)
        bud = self.budget.from_moments(moments_q, moments_p)
        vq = self.var_q.from_moments(moments_q)
        var = vq.loss if self.use_var_q else flat.new_zeros(())
        if self.var_p is not None:
            var = var + self.var_p.from_moments(moments_p).loss
        name = type(self).__name__
        ldq = self.logdet_q(q, moments_q, projection=ctx.draw("logdet_projection_q", name))
        ldp = self.logdet_p(p, moments_p, projection=ctx.draw("logdet_projection_p", name))
        logdet = ldq.loss + ldp.loss
        mean = self.mean_penalty.from_moments(moments)

        total = (
            pred
            + self.budget_weight * bud.loss
            + self.var_weight * var
            + self.logdet_weight * logdet
            + self.mean_weight * mean.loss
        )
        terms = {
            "pred": pred,
            "budget": bud.loss,
            "var": var,
            "logdet": logdet,
            "mean": mean.loss,
            "total": total,
            "q2": bud.q2,
            "p2": bud.p2,
            "q_std_min": vq.std.min(),
            "pr_q": ldq.pr_norm,
            "pr_p": ldp.pr_norm,
            "logdet_q": ldq.logdet,
            "logdet_p": ldp.logdet,
            "eigmax_q": ldq.eigmax,
            "eigmax_p": ldp.eigmax,
            "z_mean2": mean.mean.square().sum(),
        }
        if energy is not None:
            terms["energy"] = energy
        if ldq.cholesky_info is not None and ldp.cholesky_info is not None:
            status = torch.stack([ldq.cholesky_info, ldp.cholesky_info]).to(total.dtype).unbind()
            terms["cholesky_info_q"], terms["cholesky_info_p"] = status
        values = torch.stack(list(terms.values())).detach().unbind()  # one stack + detach for all the terms
        return ObjectiveOutput(total, dict(zip(terms, values, strict=True)))
