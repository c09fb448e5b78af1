"""Build the encoder, predictor and objective of a run from its :class:`~hamjepa.config.Config`."""

from __future__ import annotations

import inspect

from torch import nn

from hamjepa.config import Config
from hamjepa.dynamics.predictors import HamiltonianPredictor, MLPPredictor
from hamjepa.models import TokenEncoder
from hamjepa.objectives.registry import get_objective_class


def build_encoder(cfg: Config) -> TokenEncoder:
    """The encoder of docs/spec.md §B from ``cfg.model`` (random init; seed the global RNG first)."""
    m = cfg.model
    return TokenEncoder(
        stem=m.stem,
        mode=m.mode,
        token_layer=m.token_layer,
        token_hw=m.token_hw,
        token_dim=m.token_dim,
        split_qp=m.split_qp,
        projector=m.projector,
        global_out_dim=m.global_out_dim,
    )


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


def build_objective(cfg: Config, *, encoder_dim: int) -> nn.Module:
    """The registered objective ``cfg.objective['name']`` with its keyword arguments from the config.

    A ``predictor`` argument receives :func:`build_predictor`'s module; a ``dim`` / ``embed_dim`` argument
    receives the encoder's output dimension; a ``token_channels`` argument receives ``model.token_dim`` when
    ``z`` is a flattened token grid (tokens mode, identity projector; else None) and a ``split_qp`` argument
    receives ``model.split_qp`` (the layout of that grid), unless the objective section sets them.
    """
    kwargs = {k: v for k, v in cfg.objective.items() if k != "name"}
    cls = get_objective_class(cfg.objective["name"])
    params = inspect.signature(cls.__init__).parameters
    if "predictor" in params:
        kwargs["predictor"] = build_predictor(cfg, encoder_dim)
    for name in ("dim", "embed_dim"):
        if name in params and name not in kwargs:
            kwargs[name] = encoder_dim
    layout = {
        "token_channels": cfg.model.token_dim
        if cfg.model.mode == "tokens" and cfg.model.projector == "identity"
        else None,
        "split_qp": cfg.model.split_qp,
    }
    for name, value in layout.items():
        if name in params and name not in kwargs:
            kwargs[name] = value
    if "seed" in params and "seed" not in kwargs:
        kwargs["seed"] = cfg.seed
    return cls(**kwargs)
