"""The library's one MLP builder (learned potentials, MLP predictor, BiJEPA predictors, the dynamics benchmark's
encoders and decoder probe), and the closed-form input gradient of a scalar MLP (the analytic force of the
separable Hamiltonian)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.autograd.forward_ad as forward_ad
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ACTIVATIONS", "NORMS", "analytic_force", "build_mlp", "make_activation"]

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


NORMS = ("layer", "batch")
"""Valid ``norm`` names of :func:`build_mlp`: ``layer`` (LayerNorm), ``batch`` (BatchNorm1d)."""


def build_mlp(
    in_dim: int,
    out_dim: int,
    *,
    hidden_dims: Sequence[int],
    activation: str,
    norm: Literal["layer", "batch"] | None = None,
) -> nn.Sequential:
    """``[Linear(width, hidden) -> (norm) -> act] for hidden in hidden_dims -> Linear(width, out)``.

    The one MLP builder of the library: the learned potentials and the MLP predictor (no norm, GELU), the
    BiJEPA predictors and benchmark encoders (LayerNorm, ReLU) and the benchmark's decoder probe (BatchNorm,
    ReLU) all use it. Layer ``i`` of the returned ``nn.Sequential`` keeps the position it always had, so
    state-dict keys (``0.weight``, ``1.weight`` for a norm, ...) are stable. PyTorch's default ``nn.Linear``
    initialisation is kept; the last layer has no norm and no activation. Shapes: ``[..., in_dim] ->
    [..., out_dim]`` (``norm="batch"``: ``[N, in_dim]``).
    """
    hidden_dims = list(hidden_dims)
    if not hidden_dims:
        raise ValueError("build_mlp: hidden_dims must name at least one hidden width, e.g. [256, 256]")
    for label, value in (("in_dim", in_dim), ("out_dim", out_dim), *(("hidden_dims", h) for h in hidden_dims)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"build_mlp: {label} must hold positive ints, got {value!r}")
    if norm is not None and norm not in NORMS:
        raise ValueError(f"build_mlp: unknown norm={norm!r}; valid: {', '.join(NORMS)} or None")
    make_activation(activation)  # validate the name before building anything
    layers: list[nn.Module] = []
    width = in_dim
    for hidden in hidden_dims:
        layers.append(nn.Linear(width, hidden))
        if norm == "layer":
            layers.append(nn.LayerNorm(hidden))
        elif norm == "batch":
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(make_activation(activation))
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def _activation_kind(act: nn.Module) -> str:
    """``"gelu"`` (exact), ``"relu"`` or ``"silu"``; anything else has no closed-form force here."""
    if isinstance(act, nn.GELU) and act.approximate == "none":
        return "gelu"
    if isinstance(act, nn.ReLU):
        return "relu"
    if isinstance(act, nn.SiLU):
        return "silu"
    raise ValueError(
        f"analytic force: no closed-form derivative for activation {act!r}; "
        f"use one of {', '.join(ACTIVATIONS)} (exact GELU) or force='autograd'"
    )


def _activation_parts(kind: str, a: Tensor, *, need_value: bool) -> tuple[Tensor | None, Tensor, Tensor | None]:
    """``(act(a) or None, act'(a), aux)`` elementwise; ``aux`` is what :func:`_second_derivative` reuses.

    The derivatives are the ones PyTorch's autograd uses: exact GELU ``Phi(a) + a phi(a)``; ReLU
    ``1[a > 0]`` (0 at ``a = 0``, and a zero second derivative); SiLU ``s (1 + a (1 - s))`` with
    ``s = sigmoid(a)``.
    """
    if kind == "gelu":
        cdf = torch.special.ndtr(a)
        gauss = torch.exp(a.square() * -0.5)  # phi(a) * sqrt(2 pi)
        slope = torch.addcmul(cdf, a, gauss, value=_INV_SQRT_2PI)
        return (a * cdf if need_value else None), slope, gauss
    if kind == "relu":
        return (torch.relu(a) if need_value else None), (a > 0).to(a.dtype), None
    sig = torch.sigmoid(a)
    return (a * sig if need_value else None), sig * (1.0 + a * (1.0 - sig)), sig


def _second_derivative(kind: str, a: Tensor, aux: Tensor | None) -> Tensor | None:
    """``act''(a)`` (None for ReLU, whose second derivative is 0 wherever autograd looks)."""
    if kind == "gelu":  # phi(a) (2 - a^2)
        assert aux is not None
        return aux * (2.0 - a.square()) * _INV_SQRT_2PI
    if kind == "silu":  # s (1 - s) (2 + a (1 - 2 s))
        assert aux is not None
        return aux * (1.0 - aux) * (2.0 + a * (1.0 - 2.0 * aux))
    return None


def _check_scalar_mlp(mlp: nn.Sequential) -> tuple[list[nn.Linear], tuple[str, ...], nn.Linear]:
    """The hidden Linear layers, the activation kinds and the output layer of a :func:`build_mlp` net."""
    layers = list(mlp)
    *hidden, last = layers
    linears, acts = hidden[0::2], hidden[1::2]
    if (
        len(layers) < 3
        or len(layers) % 2 == 0
        or not all(isinstance(m, nn.Linear) and m.bias is not None for m in (*linears, last))
        or last.out_features != 1
    ):
        raise ValueError(f"analytic force: expected Linear -> act -> ... -> Linear(_, 1) with biases, got {mlp!r}")
    return linears, tuple(_activation_kind(act) for act in acts), last  # type: ignore[return-value]


class _AnalyticForce(torch.autograd.Function):
    """``F(q) = beta q + scale * grad f(q)`` for a scalar MLP ``f``, with a closed-form backward.

    Inputs: ``q [B, n]``, the activation kinds, the constants ``beta, scale``, then per hidden layer
    ``W_i, b_i``, then the output weight ``w [1, H]``. The forward back-propagates through the
    layers by hand (``D_L = w * act'(A_L)``, ``D_{i-1} = (D_i W_i) * act'(A_{i-1})``, ``grad f = D_1 W_1``).
    The backward is the vector-Jacobian product of that expression (Pearlmutter: ``<U, grad f>`` is the
    forward-mode tangent of ``f`` along ``U``, reverse-differentiated), written with ordinary tensor ops so
    it is itself differentiable. It needs ``act''``, which :func:`_second_derivative` gives in closed form.
    """

    @staticmethod
    def forward(ctx: Any, q: Tensor, kinds: tuple[str, ...], beta: float, scale: float, *params: Tensor) -> Tensor:
        return _force_forward(ctx, q, kinds, beta, scale, params, jvp=False)

    @staticmethod
    def backward(ctx: Any, grad: Tensor | None) -> tuple[Tensor | None, ...]:
        if grad is None:
            return (None,) * (4 + 2 * ctx.depth + 1)
        grad_q, params = _force_vjp(ctx, grad, need_params=True)
        return (grad_q, None, None, None, *params)


class _AnalyticForceWithJvp(_AnalyticForce):
    """:class:`_AnalyticForce` plus forward-mode AD (used only inside a ``forward_ad.dual_level``: dynamo
    cannot trace Functions that define ``jvp``, so the training path uses the plain class)."""

    @staticmethod
    def forward(ctx: Any, q: Tensor, kinds: tuple[str, ...], beta: float, scale: float, *params: Tensor) -> Tensor:
        return _force_forward(ctx, q, kinds, beta, scale, params, jvp=True)

    @staticmethod
    def jvp(ctx: Any, tangent: Tensor | None, _kinds: None, _beta: None, _scale: None, *param_tangents: Any) -> Tensor:
        """Forward-mode derivative along ``q`` (the Jacobian ``beta I + scale Hess f`` is symmetric)."""
        if any(t is not None for t in param_tangents):
            raise NotImplementedError("analytic force: forward-mode AD w.r.t. the MLP parameters; use force='autograd'")
        if tangent is None:
            raise NotImplementedError("analytic force: forward-mode AD needs a tangent for q")
        grad_q, _ = _force_vjp(ctx, tangent, need_params=False)
        return grad_q


def _force_forward(
    ctx: Any, q: Tensor, kinds: tuple[str, ...], beta: float, scale: float, params: tuple[Tensor, ...], *, jvp: bool
) -> Tensor:
    """The forward of the analytic force Functions (``jvp``: also keep the tensors for forward-mode AD)."""
    *hidden, w_out = params
    weights, biases = hidden[0::2], hidden[1::2]
    h = q
    inputs, pres, slopes, auxes = [], [], [], []
    for i, (weight, bias, kind) in enumerate(zip(weights, biases, kinds, strict=True)):
        inputs.append(h)
        pre = F.linear(h, weight, bias)
        value, slope, aux = _activation_parts(kind, pre, need_value=i < len(kinds) - 1)
        pres.append(pre)
        slopes.append(slope)
        auxes.append(aux)
        if value is not None:
            h = value
    deltas = [w_out * slopes[-1]]  # D_L, then D_{L-1} .. D_1 (prepended)
    back_props = []  # D_i W_i for i = L .. 2 (what D_{i-1} multiplies act'(A_{i-1}) by)
    for weight, slope in zip(reversed(weights[1:]), reversed(slopes[:-1]), strict=True):
        prop = deltas[0] @ weight
        back_props.insert(0, prop)
        deltas.insert(0, prop * slope)
    ctx.kinds, ctx.beta, ctx.scale, ctx.depth = kinds, beta, scale, len(weights)
    saved = (w_out, *weights, *inputs, *pres, *auxes, *slopes, *deltas, *back_props)
    ctx.save_for_backward(*saved)
    if jvp:
        ctx.save_for_forward(*saved)
    ctx.set_materialize_grads(False)  # absent tangents / gradients arrive as None, not as zeros
    return torch.addmm(q, deltas[0], weights[0], beta=beta, alpha=scale)


def _force_vjp(ctx: Any, grad: Tensor, *, need_params: bool) -> tuple[Tensor, list[Tensor | None]]:
    """``(d<grad, F>/dq, [dW_1, db_1, .., dW_L, db_L, dw_out])`` from what the forward saved."""
    depth = ctx.depth
    w_out, *rest = ctx.saved_tensors
    weights, inputs, pres, auxes, slopes, deltas = (rest[j * depth : (j + 1) * depth] for j in range(6))
    back_props = rest[6 * depth :]
    curv_second = [_second_derivative(*args) for args in zip(ctx.kinds, pres, auxes, strict=True)]
    u = grad * ctx.scale
    # Forward-mode tangents along u: dA_1 = u W_1^T, dH_i = act'(A_i) dA_i, dA_{i+1} = dH_i W_{i+1}^T.
    tangents_in = [u]  # dH_0 .. dH_{L-1}
    tangents_pre = []  # dA_1 .. dA_L
    for i, weight in enumerate(weights):
        d_pre = F.linear(tangents_in[i], weight)
        tangents_pre.append(d_pre)
        if i < depth - 1:
            tangents_in.append(d_pre * slopes[i])
    # Adjoint of the primal pre-activations A_i (through act'(A_i) and, below, through H_i = act(A_i)).
    second = curv_second[-1]
    adj_pre = None if second is None else tangents_pre[-1] * (w_out * second)
    params: list[Tensor | None] = [None] * (2 * depth) + [None]
    if need_params:
        params[-1] = (tangents_pre[-1] * slopes[-1]).sum(0, keepdim=True)
    for i in range(depth - 1, -1, -1):
        if need_params:  # dW_i = D_i^T dH_{i-1} + adj(A_i)^T H_{i-1}; db_i = sum adj(A_i)
            gw = deltas[i].t() @ tangents_in[i]
            if adj_pre is not None:
                gw = torch.addmm(gw, adj_pre.t(), inputs[i])
                params[2 * i + 1] = adj_pre.sum(0)
            params[2 * i] = gw
        if i == 0:
            break
        adj_in = None if adj_pre is None else adj_pre @ weights[i]  # adjoint of H_{i-1}
        second = curv_second[i - 1]
        curvature = None if second is None else back_props[i - 1] * second
        if adj_in is not None and curvature is not None:
            adj_pre = torch.addcmul(adj_in * slopes[i - 1], curvature, tangents_pre[i - 1])
        elif adj_in is not None:
            adj_pre = adj_in * slopes[i - 1]
        elif curvature is not None:
            adj_pre = curvature * tangents_pre[i - 1]
        else:
            adj_pre = None
    grad_q = grad * ctx.beta if adj_pre is None else torch.addmm(grad, adj_pre, weights[0], beta=ctx.beta)
    return grad_q, params


def analytic_force(mlp: nn.Sequential, q: Tensor, *, beta: float, scale: float) -> Tensor:
    """``beta * q + scale * d/dq sum(mlp(q))`` with closed-form forward and backward (no double backward).

    ``mlp`` is a :func:`build_mlp` network with ``out_dim = 1``; ``q [..., n] -> [..., n]``. Gradients reach
    ``q`` and every parameter except the output bias (a constant shift of ``f`` exerts no force). Under
    ``torch.no_grad()`` no graph is recorded.
    """
    linears, kinds, last = _check_scalar_mlp(mlp)
    params: list[Tensor] = []
    for linear in linears:
        params += [linear.weight, linear.bias]
    function = _AnalyticForceWithJvp if forward_ad._current_level >= 0 else _AnalyticForce
    if q.ndim == 2:
        return function.apply(q, kinds, float(beta), float(scale), *params, last.weight)
    flat = q.reshape(-1, q.shape[-1])
    return function.apply(flat, kinds, float(beta), float(scale), *params, last.weight).reshape(q.shape)
