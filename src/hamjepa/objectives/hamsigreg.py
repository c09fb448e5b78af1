"""HamSIGReg: LeJEPA with SIGReg applied in the metric ``H`` (docs/spec.md §E.4, "metric isotropy", Prop. 3.5).

``L = L_inv / 2 + lambda * SIGReg(H^{1/2} z)`` (``combination='paper_code'``; ``'upstream'`` as in LeJEPA),
so the regulariser's target is ``z ~ N(0, H^{-1})`` instead of ``N(0, I)``. ``H`` is a
:class:`~hamjepa.objectives.ham_metric.HamMetric` (identity, diag, chain, grid or learnable spectrum).

Learnable spectrum (``metric='learnable'``), as the reference code runs it (docs/spec.md §E.4.1). The raw spectrum
parameters are *not* trained by the returned loss (they do not require gradients, so the encoder's loss sees
``H`` as a constant). They are auxiliary parameters (:meth:`auxiliary_groups`): the engine owns their AdamW
(lr ``h_lr``, by default the run's ``optim.lr``; no weight decay; no schedule), saves it in the checkpoint, and
**after** the encoder's optimiser step, on training steps with ``step % h_update_interval == 0``,
back-propagates :meth:`auxiliary_loss` on the same step's embeddings (detached) into them. That loss evaluates
SIGReg **again with a fresh draw of directions** (a direction stream of its own, independent of the encoder
step's):

* ``h_mode='min'``: minimise ``lambda * SIGReg(H_phi^{1/2} z) + spectral_weight * penalty``;
* ``h_mode='max'`` (adversarial): ``- lambda * SIGReg + spectral_weight * penalty``.

``spectral_weight`` defaults to 0 as in the reference (the penalty is then only logged); it also adds the
(encoder-constant) penalty to the logged ``total``. ``h_grad_clip`` clips the norm of the H-gradient. Under DDP
the engine averages it over ranks (the SIGReg statistics are all-reduced as in
:class:`~hamjepa.objectives.sigreg.SIGReg`), so every rank takes the same step and the spectra stay identical.
H is not updated while the (ramped) ``alpha`` is 0 (the spectrum does not depend on it then).

Departures kept one key away [D]: ``cond_max`` adds a condition-number hinge *with* a gradient to the
penalty (the reference computes its hinge without gradient, so it never acts); ``init_span=0.05`` restores
the start of versions before docs/spec.md §E.4.1 (span 0.05 instead of a flat profile); ``spectral_weight=1`` the
penalty they always used in the H step.

Epoch ramps: with ``alpha_ramp_epochs = E > 0`` the profile weight is ``alpha * min(1, epoch / E)`` after
:meth:`on_epoch_start` (likewise ``beta``); before any epoch hook the full values are used. The epoch is
saved with the objective's state, so a loaded run's ``ham`` readout uses the spectrum it was trained with last.

Terms: ``pred``, ``sigreg`` (of ``H^{1/2} z``, unweighted), ``total``, ``h_penalty`` (spectral penalty,
0 for fixed metrics) and ``h_log_cond`` (``log(lambda_max / lambda_min)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from hamjepa.numerics import upcast
from hamjepa.objectives.base import AuxiliaryGroup, BuildContext, ObjectiveOutput, StepContext
from hamjepa.objectives.ham_metric import Gauge, HamMetric, MetricKind
from hamjepa.objectives.lejepa import Combination, LeJEPAObjective
from hamjepa.objectives.registry import register_objective
from hamjepa.objectives.sigreg import SIGReg, SIGRegWeight
from hamjepa.seeding import mix_seed

H_DIRECTION_STREAM = 1
"""Salt of the seed of the H step's SIGReg directions: a fresh draw, independent of the encoder step's."""

HMode = Literal["min", "max"]
H_MODES: tuple[str, ...] = ("min", "max")

__all__ = ["H_MODES", "HMode", "HamSIGRegObjective"]


def _ramp(value: float, epoch: int | None, ramp_epochs: int) -> float:
    if ramp_epochs <= 0 or epoch is None:
        return value
    return value * min(1.0, epoch / ramp_epochs)


@register_objective("hamsigreg")
class HamSIGRegObjective(LeJEPAObjective):
    """LeJEPA prediction + ``lambda * SIGReg(H^{1/2} z)`` (see the module docstring).

    Args:
        dim: embedding dimension ``D`` (filled in by the engine).
        lambda_reg, combination, num_slices, n_points, t_max, weight, num_global_views, seed: as
            :class:`~hamjepa.objectives.lejepa.LeJEPAObjective`.
        metric: ``identity`` | ``diag`` | ``chain`` | ``grid`` | ``learnable``.
        token_channels, split_qp: token layout for ``grid`` / ``learnable`` (filled in from ``model.token_dim``
            and ``model.split_qp`` by the engine).
        kappa, eps, beta, gauge, alpha, num_bins, span_max, log_clip, init_span: spectrum settings
            (:class:`~hamjepa.objectives.ham_metric.HamMetric`).
        smooth_weight, delta_weight, cond_max, cond_weight: spectral penalty
            (:meth:`~hamjepa.objectives.ham_metric.HamMetric.spectral_penalty`; ``cond_max`` is a [D] departure).
        spectral_weight: weight of that penalty in the H step's loss and the logged total (default 0, the
            reference's; 1 = the H step of versions before docs/spec.md §E.4.1).
        h_lr: learning rate of the H-optimiser (``reg_lr`` in docs/spec.md §E.4.1; None = the run's ``optim.lr``).
        h_update_interval: update the spectrum on steps divisible by this.
        h_mode: ``min`` or ``max`` (adversarial).
        h_grad_clip: clip the H-gradient norm to this (None = no clipping).
        alpha_ramp_epochs, beta_ramp_epochs: linear epoch ramps of ``alpha`` / ``beta`` (0 = none).
    """

    description: ClassVar[str] = (
        "HamSIGReg: LeJEPA prediction + SIGReg of H^{1/2} z under a structured or learnable metric H (no predictor)"
    )
    # The engine's H step (auxiliary parameters) runs eagerly around the step: not one static graph.
    supports_compiled_step: ClassVar[bool] = False

    def __init__(
        self,
        dim: int,
        *,
        lambda_reg: float = 0.02,
        combination: Combination = "paper_code",
        num_slices: int = 64,
        n_points: int = 9,
        t_max: float = 3.0,
        weight: SIGRegWeight = "gaussian",
        num_global_views: int | None = None,
        seed: int = 0,
        metric: MetricKind = "learnable",
        token_channels: int | None = None,
        split_qp: bool = False,
        kappa: float = 1.0,
        eps: float = 1e-3,
        beta: float = 1.0,
        gauge: Gauge = "logdet",
        alpha: float = 1.0,
        num_bins: int = 16,
        span_max: float = 0.1,
        log_clip: float = 3.0,
        init_span: float = 0.0,
        smooth_weight: float = 1e-3,
        delta_weight: float = 1e-4,
        cond_max: float | None = None,
        cond_weight: float = 1.0,
        spectral_weight: float = 0.0,
        h_lr: float | None = None,
        h_update_interval: int = 1,
        h_mode: HMode = "min",
        h_grad_clip: float | None = None,
        alpha_ramp_epochs: int = 0,
        beta_ramp_epochs: int = 0,
    ) -> None:
        super().__init__(
            lambda_reg=lambda_reg,
            combination=combination,
            num_slices=num_slices,
            n_points=n_points,
            t_max=t_max,
            weight=weight,
            num_global_views=num_global_views,
            seed=seed,
        )
        if h_mode not in H_MODES:
            raise ValueError(f"h_mode must be 'min' or 'max' (adversarial), got {h_mode!r}")
        if not (isinstance(h_update_interval, int) and h_update_interval >= 1):
            raise ValueError(f"h_update_interval must be an int >= 1, got {h_update_interval!r}")
        if h_lr is not None and not h_lr > 0:
            raise ValueError(f"h_lr must be > 0 or None (= optim.lr), got {h_lr}")
        if not spectral_weight >= 0:
            raise ValueError(f"spectral_weight must be >= 0 (0 = the reference's H step), got {spectral_weight}")
        if h_grad_clip is not None and not h_grad_clip > 0:
            raise ValueError(f"h_grad_clip must be > 0 or None, got {h_grad_clip}")
        if cond_max is not None and not cond_max > 1:
            raise ValueError(f"cond_max must be > 1 or None, got {cond_max}")
        for name, value in (("alpha_ramp_epochs", alpha_ramp_epochs), ("beta_ramp_epochs", beta_ramp_epochs)):
            if not (isinstance(value, int) and value >= 0):
                raise ValueError(f"{name} must be an int >= 0 (0 = no ramp), got {value!r}")
        self.metric = HamMetric(
            dim,
            metric,
            token_channels=token_channels,
            split_qp=split_qp,
            kappa=kappa,
            eps=eps,
            beta=beta,
            gauge=gauge,
            alpha=alpha,
            num_bins=num_bins,
            span_max=span_max,
            log_clip=log_clip,
            init_span=init_span,
        )
        self.h_sigreg = SIGReg(
            num_slices=num_slices,
            n_points=n_points,
            t_max=t_max,
            weight=weight,
            seed=mix_seed(seed, H_DIRECTION_STREAM),
        )
        self.spectral_weight = float(spectral_weight)
        self.penalty_kwargs: dict[str, Any] = {
            "smooth_weight": float(smooth_weight),
            "delta_weight": float(delta_weight),
            "cond_max": cond_max,
            "cond_weight": float(cond_weight),
        }
        self.h_update_interval = h_update_interval
        self.h_mode = h_mode
        self.h_grad_clip = h_grad_clip
        self.alpha_ramp_epochs = alpha_ramp_epochs
        self.beta_ramp_epochs = beta_ramp_epochs
        self.h_lr = None if h_lr is None else float(h_lr)
        self.epoch: int | None = None

    @classmethod
    def from_context(cls, ctx: BuildContext, **kwargs: Any) -> HamSIGRegObjective:
        """The encoder width, run seed and token layout fill ``dim``, ``seed``, ``token_channels`` and
        ``split_qp`` unless the config sets them."""
        defaults = {"dim": ctx.dim, "seed": ctx.seed, "token_channels": ctx.token_channels, "split_qp": ctx.split_qp}
        return cls(**{**defaults, **kwargs})

    # ------------------------------------------------------------------ schedule and state
    def on_epoch_start(self, epoch: int) -> None:
        """Set the epoch of the ``alpha`` / ``beta`` ramps (1-indexed)."""
        super().on_epoch_start(epoch)
        self.epoch = epoch

    def current_alpha_beta(self) -> tuple[float, float]:
        """The ramped ``(alpha, beta)`` in effect now."""
        return (
            _ramp(self.metric.alpha, self.epoch, self.alpha_ramp_epochs),
            _ramp(self.metric.beta, self.epoch, self.beta_ramp_epochs),
        )

    def get_extra_state(self) -> dict[str, Any]:
        """The ramp epoch (the spectrum's optimiser state is the engine's, saved with the run)."""
        return {"epoch": self.epoch}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.epoch = None if state.get("epoch") is None else int(state["epoch"])

    def auxiliary_groups(self) -> list[AuxiliaryGroup]:
        """The learnable spectrum's raw parameters with their AdamW settings (none for fixed metrics)."""
        raw = self.metric.raw_parameters()
        if not raw:
            return []
        return [
            AuxiliaryGroup(
                "metric",
                tuple(raw),
                lr=self.h_lr,
                weight_decay=0.0,
                update_interval=self.h_update_interval,
                grad_clip=self.h_grad_clip,
            )
        ]

    # ------------------------------------------------------------------ maths
    def log_spectrum(self) -> Tensor:
        """The current gauged ``log lambda`` (ramped ``alpha`` / ``beta``), without gradient."""
        alpha, beta = self.current_alpha_beta()
        with torch.no_grad():
            return self.metric.log_spectrum(alpha=alpha, beta=beta)

    def ham_coordinates(self, z: Tensor) -> Tensor:
        """``H^{1/2} z`` with the current spectrum, for ``z [..., D]`` (the "ham" evaluation readout)."""
        return self.metric.apply_sqrt(upcast(z), self.log_spectrum())

    def feature_readouts(self) -> dict[str, Callable[[Tensor], Tensor]]:
        """Extra evaluation readouts: ``{"ham": H^{1/2} z}``."""
        return {"ham": self.ham_coordinates}

    def spectrum_objective(self, z: Tensor, step: int, raw: list[Tensor]) -> Tensor:
        """What the H-optimiser minimises: ``+-lambda * SIGReg(H_raw^{1/2} z) + spectral_weight * penalty(raw)``,
        SIGReg with the H step's own (fresh) directions of ``step``."""
        alpha, beta = self.current_alpha_beta()
        log_lam = self.metric.log_spectrum(raw, alpha=alpha, beta=beta)
        sig = self.h_sigreg(self.metric.apply_sqrt(z, log_lam), self.h_sigreg.directions(z.shape[-1], step, z.device))
        sign = 1.0 if self.h_mode == "min" else -1.0
        loss = sign * self.lambda_reg * sig
        if self.spectral_weight:
            penalty = self.metric.spectral_penalty(raw, alpha=alpha, beta=beta, **self.penalty_kwargs)
            loss = loss + self.spectral_weight * penalty
        return loss

    def auxiliary_loss(self, z: Tensor, step: int) -> Tensor | None:
        """What the engine's H step minimises on the step's embeddings ``z [V, B, D]`` (see
        :meth:`spectrum_objective`); None (no update) while the ramped ``alpha`` is 0."""
        if self.current_alpha_beta()[0] == 0.0:
            return None
        return self.spectrum_objective(upcast(z), step, self.metric.raw_parameters())

    def forward(self, z: Tensor, ctx: StepContext, z_target: Tensor | None = None) -> ObjectiveOutput:
        """Args: z ``[V, B, D]``; ctx: from :meth:`draw` (the step's SIGReg directions). ``H`` is a constant here."""
        self.check_no_target(z_target, type(self).__name__)
        self.check_views(z)
        inv = self.invariance_loss(z)
        log_lam = self.log_spectrum()
        sig = self.sigreg(
            self.metric.apply_sqrt(upcast(z), log_lam), ctx.draw("sigreg_directions", type(self).__name__)
        )
        total = self.combine(inv, sig)
        if self.metric.learnable:
            alpha, beta = self.current_alpha_beta()
            with torch.no_grad():
                penalty = self.metric.spectral_penalty(alpha=alpha, beta=beta, **self.penalty_kwargs)
            if self.spectral_weight:
                total = total + self.spectral_weight * penalty.to(total.dtype)
        else:
            penalty = torch.zeros((), device=z.device)
        terms = {
            "pred": inv,
            "sigreg": sig,
            "total": total,
            "h_penalty": penalty.float(),
            "h_log_cond": (log_lam.max() - log_lam.min()).float(),
        }
        return ObjectiveOutput(total, {k: t.detach() for k, t in terms.items()})
