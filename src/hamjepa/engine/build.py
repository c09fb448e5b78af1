"""Build the encoder, predictor and objective of a run from its :class:`~hamjepa.config.Config`.

:func:`build_model` is the one construction path of the trainer, the checkpoint loader and the export loader:
the encoder first, then (if the objective class declares a ``predictor_kind``) the predictor, then the
objective, in that order of global-RNG use, so a run seeded the same way builds the same initial weights.
"""

from __future__ import annotations

from torch import nn

from hamjepa.config import Config
from hamjepa.dynamics.predictors import HamiltonianPredictor, MLPPredictor
from hamjepa.models.protocol import Encoder
from hamjepa.models.registry import get_encoder_class
from hamjepa.objectives.base import BuildContext, Objective
from hamjepa.objectives.registry import get_objective_class


def build_encoder(cfg: Config) -> Encoder:
    """The registered encoder ``cfg.model.name`` with its arguments (random init; seed the global RNG first)."""
    return get_encoder_class(cfg.model.name)(**cfg.model.kwargs)


def build_predictor(cfg: Config, dim: int) -> nn.Module | None:
    """The predictor of ``cfg.predictor`` acting on ``[B, dim]`` states (None for ``kind=none``)."""
    p = cfg.predictor
    if p.kind == "none":
        return None
    if p.kind == "mlp":
        return MLPPredictor(
            dim, dt=p.dt, steps=p.steps, hidden_dim=p.hidden_dim, depth=p.depth, activation=p.activation
        )
    return HamiltonianPredictor(
        dim,
        hamiltonian=p.hamiltonian,
        integrator=p.integrator,
        dt=p.dt,
        steps=p.steps,
        base_coeff=p.base_coeff,
        residual_scale=p.residual_scale,
        hidden_dim=p.hidden_dim,
        depth=p.depth,
        activation=p.activation,
        force=p.force,
        integrate_fp32=p.integrate_fp32,
        learn_dt=p.learn_dt,
    )


def objective_class(cfg: Config) -> type[Objective]:
    """The registered objective class of ``cfg.objective['name']``."""
    return get_objective_class(cfg.objective["name"])


def build_context(cfg: Config, *, dim: int, token_channels: int | None = None, split_qp: bool = False) -> BuildContext:
    """The :class:`BuildContext` of ``cfg``'s objective for embeddings of width ``dim``.

    The predictor of ``cfg.predictor`` is built here (global-RNG use: call it after the encoder is built)
    exactly when the objective class declares a ``predictor_kind``; otherwise the context carries None.
    Use it directly where there is no image encoder (the dynamics benchmark's embeddings); with an encoder,
    :func:`build_model` makes it.
    """
    cls = objective_class(cfg)
    predictor = build_predictor(cfg, dim) if cls.predictor_kind is not None else None
    return BuildContext(dim=dim, seed=cfg.seed, token_channels=token_channels, split_qp=split_qp, predictor=predictor)


def encoder_context(cfg: Config, encoder: Encoder) -> BuildContext:
    """:func:`build_context` for ``encoder``: its output width, token channels and phase split at
    ``data.image_size``."""
    layout = encoder.token_layout(cfg.data.image_size)
    return build_context(
        cfg,
        dim=encoder.output_dim(cfg.data.image_size),
        token_channels=layout.channels if layout is not None else None,
        split_qp=encoder.split_qp,
    )


def build_objective(cfg: Config, ctx: BuildContext) -> Objective:
    """The registered objective ``cfg.objective['name']``: ``cls.from_context(ctx, **config kwargs)``."""
    kwargs = {k: v for k, v in cfg.objective.items() if k != "name"}
    return objective_class(cfg).from_context(ctx, **kwargs)


def build_model(cfg: Config) -> tuple[Encoder, Objective]:
    """The run's encoder and objective (random init; seed the global RNG first): the encoder, then the
    predictor (if the objective takes one), then the objective."""
    encoder = build_encoder(cfg)
    return encoder, build_objective(cfg, encoder_context(cfg, encoder))
