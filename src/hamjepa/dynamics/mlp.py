"""Small MLP builder shared by the learned potentials and the MLP predictor, and the closed-form input
gradient of a scalar MLP (the analytic force of the separable Hamiltonian)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["ACTIVATIONS", "build_mlp", "make_activation", "scalar_mlp_input_gradient"]

ACTIVATIONS = ("gelu", "relu", "silu")
"""Valid activation names: ``gelu`` (exact erf form), ``relu``, ``silu``."""

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


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


def _activation_and_slope(act: nn.Module, a: Tensor, *, need_value: bool) -> tuple[Tensor | None, Tensor]:
    """``(act(a), act'(a))`` elementwise; the value is skipped (None) when not needed.

    The derivatives are the ones PyTorch's autograd uses: exact GELU ``Phi(a) + a phi(a)``; ReLU
    ``1[a > 0]`` (0 at ``a = 0``, and no gradient through the step); SiLU ``s (1 + a (1 - s))`` with
    ``s = sigmoid(a)``.
    """
    if isinstance(act, nn.GELU) and act.approximate == "none":
        cdf = torch.special.ndtr(a)
        pdf = torch.exp(a.square() * -0.5) * _INV_SQRT_2PI
        return (a * cdf if need_value else None), torch.addcmul(cdf, a, pdf)
    if isinstance(act, nn.ReLU):
        return (torch.relu(a) if need_value else None), (a > 0).to(a.dtype)
    if isinstance(act, nn.SiLU):
        sig = torch.sigmoid(a)
        return (a * sig if need_value else None), sig * (1.0 + a * (1.0 - sig))
    raise ValueError(
        f"scalar_mlp_input_gradient: no closed-form derivative for activation {act!r}; "
        f"use one of {', '.join(ACTIVATIONS)} (exact GELU) or the autograd force"
    )


def scalar_mlp_input_gradient(mlp: nn.Sequential, x: Tensor) -> Tensor:
    """``d/dx sum(mlp(x))`` in closed form for a :func:`build_mlp` network with ``out_dim = 1``.

    Back-propagates by hand through ``Linear -> act -> ... -> Linear(hidden, 1)``: one forward pass
    keeps the activation slopes ``act'(a_i)``, then ``g = W_out[0] * act'(a_L)``,
    ``g <- (g @ W_i) * act'(a_{i-1})`` down the layers and ``g @ W_1``. The result is an ordinary
    differentiable expression of ``x`` and the weights, so a loss on it back-propagates with first-order
    autograd (no ``create_graph`` double backward); under ``torch.no_grad()`` it carries no graph.
    The output bias never enters (a constant shift of the potential exerts no force).

    Shapes: ``x [..., in_dim] -> [..., in_dim]``.
    """
    layers = list(mlp)
    if len(layers) < 3 or len(layers) % 2 == 0:
        raise ValueError(f"scalar_mlp_input_gradient: expected Linear -> act -> ... -> Linear, got {mlp!r}")
    *hidden, last = layers
    linears, acts = hidden[0::2], hidden[1::2]
    if not all(isinstance(m, nn.Linear) for m in (*linears, last)) or last.out_features != 1:
        raise ValueError(f"scalar_mlp_input_gradient: expected Linear layers ending in Linear(_, 1), got {mlp!r}")
    slopes: list[Tensor] = []
    h = x
    for i, (linear, act) in enumerate(zip(linears, acts, strict=True)):
        value, slope = _activation_and_slope(act, linear(h), need_value=i < len(linears) - 1)
        slopes.append(slope)
        if value is not None:
            h = value
    grad = last.weight[0] * slopes[-1]
    for linear, slope in zip(reversed(linears[1:]), reversed(slopes[:-1]), strict=True):
        grad = (grad @ linear.weight) * slope
    return grad @ linears[0].weight
