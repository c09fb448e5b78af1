"""Small MLP builder shared by the learned potentials and the MLP predictor."""

from __future__ import annotations

from torch import nn

__all__ = ["ACTIVATIONS", "build_mlp", "make_activation"]

ACTIVATIONS = ("gelu", "relu", "silu")
"""Valid activation names: ``gelu`` (exact erf form), ``relu``, ``silu``."""


def make_activation(name: str) -> nn.Module:
    """Return a fresh activation module for ``name`` (one of :data:`ACTIVATIONS`)."""
    if name == "gelu":
        return nn.GELU(approximate="none")
    if name == "relu":
        return nn.ReLU()
    if name == "silu":
        return nn.SiLU()
    raise ValueError(f"unknown activation={name!r}; valid: {', '.join(ACTIVATIONS)}")


def build_mlp(in_dim: int, out_dim: int, *, hidden_dim: int, depth: int, activation: str) -> nn.Sequential:
    """``Linear(in, hidden) -> act -> [Linear(hidden, hidden) -> act] * (depth - 1) -> Linear(hidden, out)``.

    ``depth`` counts hidden layers (each followed by the activation). PyTorch's default ``nn.Linear``
    initialisation is kept. Shapes: ``[..., in_dim] -> [..., out_dim]``.
    """
    for label, value in (("in_dim", in_dim), ("out_dim", out_dim), ("hidden_dim", hidden_dim), ("depth", depth)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"build_mlp: {label} must be a positive int, got {value!r}")
    make_activation(activation)  # validate the name before building anything
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden_dim), make_activation(activation)]
        width = hidden_dim
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)
