"""Build the encoder, predictor and objective of a run from its :class:`~hamjepa.config.Config`."""

from __future__ import annotations

import inspect

from torch import nn

from hamjepa.config import Config
from hamjepa.dynamics.predictors import HamiltonianPredictor, MLPPredictor
from hamjepa.models.protocol import Encoder
from hamjepa.models.registry import get_encoder_class
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


def build_objective(cfg: Config, *, encoder: Encoder | None = None, encoder_dim: int | None = None) -> nn.Module:
    """The registered objective ``cfg.objective['name']`` with its keyword arguments from the config.

    Pass the run's ``encoder``, or only ``encoder_dim`` where there is no image encoder (the dynamics
    benchmark's embeddings). A ``predictor`` argument receives :func:`build_predictor`'s module; a ``dim`` /
    ``embed_dim`` argument receives the encoder's output dimension at ``data.image_size`` (or ``encoder_dim``);
    with an encoder, a ``token_channels`` argument receives the channels per token of its declared
    :class:`~hamjepa.models.TokenLayout` (None when ``z`` is not a token grid) and a ``split_qp`` argument its
    ``split_qp``, unless the objective section sets them.
    """
    if (encoder is None) == (encoder_dim is None):
        raise ValueError("build_objective: pass the run's encoder, or encoder_dim when there is no image encoder")
    layout: dict[str, object] = {}
    if encoder is not None:
        encoder_dim = encoder.output_dim(cfg.data.image_size)
        token_layout = encoder.token_layout(cfg.data.image_size)
        layout = {
            "token_channels": token_layout.channels if token_layout is not None else None,
            "split_qp": encoder.split_qp,
        }
    kwargs = {k: v for k, v in cfg.objective.items() if k != "name"}
    cls = get_objective_class(cfg.objective["name"])
    params = inspect.signature(cls.__init__).parameters
    if "predictor" in params:
        kwargs["predictor"] = build_predictor(cfg, encoder_dim)
    for name in ("dim", "embed_dim"):
        if name in params and name not in kwargs:
            kwargs[name] = encoder_dim
    for name, value in layout.items():
        if name in params and name not in kwargs:
            kwargs[name] = value
    if "seed" in params and "seed" not in kwargs:
        kwargs["seed"] = cfg.seed
    return cls(**kwargs)
