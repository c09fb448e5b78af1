"""HamSIGReg: LeJEPA with SIGReg applied in the metric ``H`` (docs/spec.md §E.4, "metric isotropy", Prop. 3.5).

``L = L_inv / 2 + lambda * SIGReg(H^{1/2} z)`` (``combination='paper_code'``; ``'upstream'`` as in LeJEPA),
so the regulariser's target is ``z ~ N(0, H^{-1})`` instead of ``N(0, I)``. ``H`` is a
:class:`~hamjepa.objectives.ham_metric.HamMetric` (identity, diag, chain, grid or learnable spectrum).

Learnable spectrum (``metric='learnable'``). The raw spectrum parameters are *not* trained by the
returned loss (they do not require gradients, so the engine's optimiser and DDP ignore them, and the
encoder's loss sees ``H`` as a constant). The objective owns a separate AdamW (lr ``h_lr``, no weight
decay) that, on training calls with ``step % h_update_interval == 0``, takes one step on the current batch
(``z`` detached), before the loss is formed:

* ``h_mode='min'``: minimise ``lambda * SIGReg(H_phi^{1/2} z) + spectral penalty``;
* ``h_mode='max'`` (adversarial): maximise ``lambda * SIGReg`` while still minimising the spectral penalty
  (``- lambda * SIGReg + penalty``) [I: the ``max`` mode of docs/spec.md §E.4.1 is read as ascending the SIGReg
  part only].

``h_grad_clip`` clips the norm of that gradient. Under DDP the H-gradient is averaged over ranks (the
SIGReg statistics are all-reduced as in :class:`~hamjepa.objectives.sigreg.SIGReg`), so every rank takes
the same step and the spectra stay identical. A repeated call at the same step does not update twice.
The H-optimiser state and the update counter are part of the objective's ``state_dict`` (extra state of
tensors and plain types, loadable with ``weights_only=True``), so a resumed run continues exactly.

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

from hamjepa.distributed import all_reduce_sum, get_world_size
from hamjepa.numerics import upcast
from hamjepa.objectives.base import ObjectiveOutput
from hamjepa.objectives.ham_metric import Gauge, HamMetric, MetricKind
from hamjepa.objectives.lejepa import Combination, LeJEPAObjective
from hamjepa.objectives.registry import register_objective
from hamjepa.objectives.sigreg import SIGRegWeight

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
        kappa, eps, beta, gauge, alpha, num_bins, span_max, log_clip: spectrum settings
            (:class:`~hamjepa.objectives.ham_metric.HamMetric`).
        smooth_weight, delta_weight, cond_max, cond_weight: spectral penalty
            (:meth:`~hamjepa.objectives.ham_metric.HamMetric.spectral_penalty`).
        h_lr: learning rate of the H-optimiser (``reg_lr`` in docs/spec.md §E.4.1).
        h_update_interval: update the spectrum on steps divisible by this.
        h_mode: ``min`` or ``max`` (adversarial).
        h_grad_clip: clip the H-gradient norm to this (None = no clipping).
        alpha_ramp_epochs, beta_ramp_epochs: linear epoch ramps of ``alpha`` / ``beta`` (0 = none).
    """

    # The H-optimiser steps on the host inside ``forward`` (at its interval): not one static graph.
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
        smooth_weight: float = 1e-3,
        delta_weight: float = 1e-4,
        cond_max: float | None = None,
        cond_weight: float = 1.0,
        h_lr: float = 1e-3,
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
        if not h_lr > 0:
            raise ValueError(f"h_lr must be > 0, got {h_lr}")
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
        )
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
        self.epoch: int | None = None
        self.h_updates = 0
        self.last_h_step = -1
        raw = self.metric.raw_parameters()
        self.h_optimizer = torch.optim.AdamW(raw, lr=h_lr, weight_decay=0.0) if raw else None

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
        """H-optimiser state, update counters and the ramp epoch (tensors and plain types only)."""
        return {
            "h_optimizer": None if self.h_optimizer is None else self.h_optimizer.state_dict(),
            "h_updates": self.h_updates,
            "last_h_step": self.last_h_step,
            "epoch": self.epoch,
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if (state.get("h_optimizer") is None) != (self.h_optimizer is None):
            raise ValueError("HamSIGReg state: the checkpoint's metric kind differs (learnable vs fixed spectrum)")
        if self.h_optimizer is not None:
            self.h_optimizer.load_state_dict(state["h_optimizer"])
        self.h_updates = int(state["h_updates"])
        self.last_h_step = int(state["last_h_step"])
        self.epoch = None if state.get("epoch") is None else int(state["epoch"])

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
        """What the H-optimiser minimises: ``+-lambda * SIGReg(H_raw^{1/2} z) + penalty(raw)``."""
        alpha, beta = self.current_alpha_beta()
        log_lam = self.metric.log_spectrum(raw, alpha=alpha, beta=beta)
        sig = self.sigreg(self.metric.apply_sqrt(z, log_lam), step=step)
        sign = 1.0 if self.h_mode == "min" else -1.0
        penalty = self.metric.spectral_penalty(raw, alpha=alpha, beta=beta, **self.penalty_kwargs)
        return sign * self.lambda_reg * sig + penalty

    def update_spectrum(self, z: Tensor, step: int) -> None:
        """One H-optimiser step on the batch ``z [V, B, D]`` (detached inside)."""
        assert self.h_optimizer is not None
        params = self.metric.raw_parameters()
        with torch.enable_grad():
            leaves = [p.detach().clone().requires_grad_(True) for p in params]
            grads = torch.autograd.grad(self.spectrum_objective(upcast(z.detach()), step, leaves), leaves)
        with torch.no_grad():
            flat = torch.cat([g.reshape(-1) for g in grads])
            # Each rank's gradient is world_size x its share (see objectives.base); the mean is the global one.
            flat = all_reduce_sum(flat) / get_world_size()
            if self.h_grad_clip is not None:
                flat = flat * torch.clamp(self.h_grad_clip / (flat.norm() + 1e-12), max=1.0)
            offset = 0
            for p in params:
                p.grad = flat[offset : offset + p.numel()].reshape(p.shape).to(p.dtype)
                offset += p.numel()
        self.h_optimizer.step()
        for p in params:
            p.grad = None
        self.h_updates += 1
        self.last_h_step = step

    def forward(self, z: Tensor, *, step: int, z_target: Tensor | None = None) -> ObjectiveOutput:
        """Args: z ``[V, B, D]``; step: training step (seeds SIGReg, schedules the H-updates)."""
        self.check_no_target(z_target, type(self).__name__)
        self.check_views(z)
        if (
            self.h_optimizer is not None
            and self.training
            and torch.is_grad_enabled()
            and step % self.h_update_interval == 0
            and step != self.last_h_step
        ):
            self.update_spectrum(z, step)
        inv = self.invariance_loss(z)
        log_lam = self.log_spectrum()
        sig = self.sigreg(self.metric.apply_sqrt(upcast(z), log_lam), step=step)
        total = self.combine(inv, sig)
        if self.metric.learnable:
            alpha, beta = self.current_alpha_beta()
            with torch.no_grad():
                penalty = self.metric.spectral_penalty(alpha=alpha, beta=beta, **self.penalty_kwargs)
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
