"""The metric ``H`` of HamSIGReg and its square root ``z -> H^{1/2} z`` (docs/spec.md §E.4).

HamSIGReg tests ``H^{1/2} z`` against ``N(0, I)``, i.e. it targets ``z ~ N(0, H^{-1})`` ("metric isotropy",
Prop. 3.5). Every ``H`` here is diagonal in a fixed orthonormal basis, so ``H^{1/2}`` is "transform, multiply
by ``sqrt(lambda)``, transform back". Kinds (``lambda`` = the eigenvalues, ``D`` = embedding dimension):

* ``identity``: ``H = I`` (HamSIGReg == SIGReg exactly; ``apply_sqrt`` returns its input).
* ``diag``: ``lambda = linspace(1, 2, D)`` on the coordinates.
* ``chain``: the periodic 1-D chain Laplacian on the flattened vector, a circulant matrix diagonalised by the
  DFT: ``lambda_k = kappa (2 - 2 cos(2 pi k / D)) + eps``; applied with a real FFT along ``D``.
* ``grid``: the periodic 2-D Laplacian on the ``h x w`` token grid, the same for every channel:
  ``lambda(f_y, f_x) = eps + kappa (4 sin^2(pi f_x) + 4 sin^2(pi f_y))``; applied with an orthonormal real
  FFT2 over the grid axes of each channel.
* ``learnable``: the ``grid`` spectrum times a learnable monotone radial profile,
  ``log lambda = log lambda_base + alpha g[bin(r)]``, ``r = |(f_y, f_x)|`` bucketed into ``num_bins`` equal-width
  bins over ``[0, r_max]``; ``g_0 = 0``, ``g_{b+1} = span * sum_{i <= b} w_i`` with ``w = softplus(raw)``
  normalised to sum 1 and ``span = span_max * sigmoid(raw_span)`` (so ``0 = g_0 <= g_1 <= ... <= span``).

The base spectrum of every non-identity kind is blended ``lambda <- (1 - beta) + beta lambda`` and then
gauge-normalised: divided by its geometric mean (``gauge='logdet'``, ``det H = 1``) or its mean
(``gauge='trace'``, ``tr H = D``). For ``learnable`` the gauged ``log lambda`` is finally clipped to
``[-log_clip, log_clip]`` (the gauge is exact whenever the clip is inactive).

Token layout (see :mod:`hamjepa.models.phase_space`): without the q/p split ``z`` is the token map flattened
channel-last, ``[h, w, C]``; with it ``z = [q; p]`` with each half ``[h, w, C/2]``. Both are read as
``[G, h, w, c]`` with ``G = 1, c = C`` or ``G = 2, c = C/2``, and the grid operator acts on every
``(g, channel)`` slice. The grid is square: ``h = w = sqrt(D / C)``.

The learnable raw parameters are ``nn.Parameter`` s with ``requires_grad=False``: the training engine's
optimiser (which collects parameters that require gradients) never sees them. The objective that owns the
metric updates them with its own optimiser (:class:`~hamjepa.objectives.hamsigreg.HamSIGRegObjective`).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MetricKind = Literal["identity", "diag", "chain", "grid", "learnable"]
METRIC_KINDS: tuple[str, ...] = ("identity", "diag", "chain", "grid", "learnable")
Gauge = Literal["logdet", "trace"]
GAUGES: tuple[str, ...] = ("logdet", "trace")
_GRID_KINDS = ("grid", "learnable")

__all__ = [
    "GAUGES",
    "METRIC_KINDS",
    "Gauge",
    "HamMetric",
    "MetricKind",
    "TokenLayout",
    "chain_spectrum",
    "grid_spectrum",
    "radial_bins",
]


class TokenLayout:
    """How a flattened embedding ``[..., D]`` maps onto a square token grid ``[..., G, h, w, c]``.

    Args:
        dim: ``D``.
        token_channels: channels per token ``C`` (``model.token_dim``).
        split_qp: whether ``z = [q; p]`` with ``C/2`` channels of every token in each half.
    """

    def __init__(self, dim: int, token_channels: int, split_qp: bool) -> None:
        if not (isinstance(token_channels, int) and token_channels >= 1):
            raise ValueError(f"token_channels must be a positive int (model.token_dim), got {token_channels!r}")
        blocks = 2 if split_qp else 1
        if token_channels % blocks:
            raise ValueError(f"split_qp=True needs an even token_channels, got {token_channels}")
        tokens = dim // token_channels
        side = math.isqrt(tokens)
        if tokens * token_channels != dim or side * side != tokens:
            raise ValueError(
                f"embedding dim {dim} is not a square token grid of {token_channels}-channel tokens "
                f"(D = h * w * C with h = w); the grid metrics need a tokens-mode encoder with an identity projector"
            )
        self.blocks, self.side, self.channels = blocks, side, token_channels // blocks

    def to_grid(self, z: Tensor) -> Tensor:
        """``[..., D] -> [..., G, h, w, c]`` (a view)."""
        return z.reshape(*z.shape[:-1], self.blocks, self.side, self.side, self.channels)

    def from_grid(self, x: Tensor) -> Tensor:
        """``[..., G, h, w, c] -> [..., D]``."""
        return x.reshape(*x.shape[:-4], -1)


def chain_spectrum(dim: int, kappa: float, eps: float) -> Tensor:
    """Eigenvalues ``kappa (2 - 2 cos(2 pi k / D)) + eps``, ``k = 0 .. D-1``, of the periodic chain (float64)."""
    k = torch.arange(dim, dtype=torch.float64)
    return kappa * (2.0 - 2.0 * torch.cos(2.0 * math.pi * k / dim)) + eps


def grid_spectrum(side: int, kappa: float, eps: float) -> Tensor:
    """Eigenvalues ``eps + kappa (4 sin^2(pi f_x) + 4 sin^2(pi f_y))`` on the ``side x side`` FFT grid (float64).

    Entry ``[k, l]`` belongs to frequencies ``(f_y, f_x) = (k / side, l / side)`` (``torch.fft.fft2`` order).
    """
    f = torch.fft.fftfreq(side, dtype=torch.float64)
    s = 4.0 * torch.sin(math.pi * f).square()
    return eps + kappa * (s[:, None] + s[None, :])


def radial_bins(side: int, num_bins: int) -> Tensor:
    """Bin index ``[side, side]`` (int64) of the radial frequency ``|(f_y, f_x)|`` in ``num_bins`` equal-width bins."""
    f = torch.fft.fftfreq(side, dtype=torch.float64)
    r = torch.sqrt(f[:, None].square() + f[None, :].square())
    r_max = float(r.max())
    if r_max == 0.0:
        return torch.zeros(side, side, dtype=torch.int64)
    return torch.clamp(torch.floor(r / r_max * num_bins), max=num_bins - 1).to(torch.int64)


class HamMetric(nn.Module):
    """A positive-definite metric ``H`` and ``z -> H^{1/2} z`` (see the module docstring).

    Args:
        dim: embedding dimension ``D``.
        kind: one of :data:`METRIC_KINDS`.
        token_channels, split_qp: the token layout (required for ``grid`` / ``learnable``).
        kappa, eps: Laplacian scale and ridge (``chain``, ``grid``, ``learnable`` base).
        beta: blend ``(1 - beta) + beta lambda`` of the base spectrum, in ``[0, 1]``.
        gauge: ``'logdet'`` (geometric mean 1) or ``'trace'`` (mean 1).
        alpha: weight of the learnable radial profile ``g`` in ``log lambda``.
        num_bins: radial bins of the learnable profile (>= 2).
        span_max: bound of the profile, ``g in [0, span_max]``.
        log_clip: clip of the gauged ``|log lambda|`` (``learnable`` only).
    """

    base: Tensor
    bins: Tensor

    def __init__(
        self,
        dim: int,
        kind: MetricKind = "learnable",
        *,
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
    ) -> None:
        super().__init__()
        if not (isinstance(dim, int) and dim >= 1):
            raise ValueError(f"dim must be a positive int, got {dim!r}")
        if kind not in METRIC_KINDS:
            raise ValueError(f"metric kind must be one of {', '.join(METRIC_KINDS)}, got {kind!r}")
        if gauge not in GAUGES:
            raise ValueError(f"gauge must be 'logdet' (geometric mean 1) or 'trace' (mean 1), got {gauge!r}")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta (blend of the base spectrum) must lie in [0, 1], got {beta}")
        if not (kappa > 0 and eps > 0):
            raise ValueError(f"kappa and eps must be > 0 (H must be positive definite), got {kappa}, {eps}")
        if not (isinstance(num_bins, int) and num_bins >= 2):
            raise ValueError(f"num_bins must be an int >= 2, got {num_bins!r}")
        if not (span_max > 0 and log_clip > 0 and alpha >= 0):
            raise ValueError(f"need span_max > 0, log_clip > 0, alpha >= 0; got {span_max}, {log_clip}, {alpha}")
        self.dim, self.kind, self.gauge = dim, kind, gauge
        self.beta, self.alpha = float(beta), float(alpha)
        self.span_max, self.log_clip, self.num_bins = float(span_max), float(log_clip), num_bins
        self.layout: TokenLayout | None = None
        if kind in _GRID_KINDS:
            if token_channels is None:
                raise ValueError(f"the '{kind}' metric needs token_channels (the encoder's channels per token)")
            self.layout = TokenLayout(dim, token_channels, split_qp)
        if kind == "diag":
            base = torch.linspace(1.0, 2.0, dim, dtype=torch.float64)
        elif kind == "chain":
            base = chain_spectrum(dim, kappa, eps)
        elif kind in _GRID_KINDS:
            base = grid_spectrum(self.layout.side, kappa, eps)  # type: ignore[union-attr]
        else:
            base = torch.ones(1, dtype=torch.float64)
        self.register_buffer("base", base, persistent=False)  # float64 until the module is cast
        side = self.layout.side if self.layout is not None else 1
        self.register_buffer("bins", radial_bins(side, num_bins), persistent=False)
        if kind == "learnable":
            self.raw_increments = nn.Parameter(torch.zeros(num_bins - 1), requires_grad=False)
            self.raw_span = nn.Parameter(torch.zeros(()), requires_grad=False)

    @property
    def learnable(self) -> bool:
        """Whether the spectrum has learnable raw parameters."""
        return self.kind == "learnable"

    def raw_parameters(self) -> list[nn.Parameter]:
        """The learnable raw parameters ``[raw_increments, raw_span]`` (empty unless ``learnable``)."""
        return [self.raw_increments, self.raw_span] if self.learnable else []

    def profile(self, raw: list[Tensor] | None = None) -> Tensor:
        """The monotone radial profile ``g [num_bins]`` (``g_0 = 0``, non-decreasing, ``g <= span_max``).

        Args:
            raw: ``[raw_increments, raw_span]`` to use instead of the module's (for gradients w.r.t. copies).
        """
        if not self.learnable:
            raise ValueError(f"the '{self.kind}' metric has no learnable profile")
        inc, span_raw = raw if raw is not None else self.raw_parameters()
        w = F.softplus(inc)
        steps = self.span_max * torch.sigmoid(span_raw) * torch.cumsum(w / w.sum(), 0)
        return torch.cat([steps.new_zeros(1), steps])

    def log_spectrum(
        self, raw: list[Tensor] | None = None, *, alpha: float | None = None, beta: float | None = None
    ) -> Tensor:
        """``log lambda`` on the full basis (``[D]`` for diag/chain, ``[h, w]`` for grid/learnable), gauged.

        Args:
            raw: learnable raw parameters to use instead of the module's (see :meth:`profile`).
            alpha, beta: override the module's ``alpha`` / ``beta`` (the objective passes ramped values).
        """
        a = self.alpha if alpha is None else alpha
        b = self.beta if beta is None else beta
        if self.kind == "identity":
            return torch.zeros_like(self.base)
        log_lam = torch.log((1.0 - b) + b * self.base)
        if self.learnable:
            g = self.profile(raw)
            log_lam = log_lam + a * g[self.bins]
        if self.gauge == "logdet":
            log_lam = log_lam - log_lam.mean()
        else:
            log_lam = log_lam - (torch.logsumexp(log_lam.reshape(-1), 0) - math.log(log_lam.numel()))
        if self.learnable:
            log_lam = log_lam.clamp(-self.log_clip, self.log_clip)
        return log_lam

    def apply_sqrt(self, z: Tensor, log_lam: Tensor | None = None) -> Tensor:
        """``H^{1/2} z`` for ``z [..., D]`` (returned as is for ``identity``).

        Args:
            log_lam: a :meth:`log_spectrum` to use (default: the module's current one). Gradients flow
                to ``z`` and to ``log_lam``.
        """
        if z.shape[-1] != self.dim:
            raise ValueError(f"the metric was built for dim {self.dim}, got z of shape {tuple(z.shape)}")
        if self.kind == "identity":
            return z
        if log_lam is None:
            log_lam = self.log_spectrum()
        scale = torch.exp(0.5 * log_lam).to(z.dtype)
        if self.kind == "diag":
            return z * scale
        if self.kind == "chain":
            half = torch.fft.rfft(z, dim=-1, norm="ortho") * scale[: self.dim // 2 + 1]
            return torch.fft.irfft(half, n=self.dim, dim=-1, norm="ortho")
        layout = self.layout
        assert layout is not None
        side = layout.side
        x = layout.to_grid(z)
        spec = torch.fft.rfft2(x, dim=(-3, -2), norm="ortho")  # [..., G, h, w//2+1, c]
        spec = spec * scale[:, : side // 2 + 1, None]
        return layout.from_grid(torch.fft.irfft2(spec, s=(side, side), dim=(-3, -2), norm="ortho"))

    def spectral_penalty(
        self,
        raw: list[Tensor] | None = None,
        *,
        alpha: float | None = None,
        beta: float | None = None,
        smooth_weight: float = 1e-3,
        delta_weight: float = 1e-4,
        cond_max: float | None = None,
        cond_weight: float = 1.0,
    ) -> Tensor:
        """Smoothness regulariser of the learnable spectrum (docs/spec.md §E.4).

        ``smooth_weight * sum (second differences of g)^2 + delta_weight * mean(delta^2)`` where
        ``delta = alpha g[bin(r)]`` is the learned log-perturbation on every frequency [I], plus, with
        ``cond_max``, ``cond_weight * relu(log(lambda_max / lambda_min) - log(cond_max))^2``. ``alpha`` / ``beta``
        override the module's values (the objective passes ramped ones).
        """
        g = self.profile(raw)
        a = self.alpha if alpha is None else alpha
        second = g[2:] - 2.0 * g[1:-1] + g[:-2]
        pen = smooth_weight * second.square().sum() + delta_weight * (a * g[self.bins]).square().mean()
        if cond_max is not None:
            log_lam = self.log_spectrum(raw, alpha=a, beta=beta)
            pen = pen + cond_weight * F.relu(log_lam.max() - log_lam.min() - math.log(cond_max)).square()
        return pen

    def extra_repr(self) -> str:
        grid = "" if self.layout is None else f", grid={self.layout.side}x{self.layout.side}x{self.layout.channels}"
        return f"dim={self.dim}, kind={self.kind!r}, gauge={self.gauge!r}, beta={self.beta}, alpha={self.alpha}{grid}"
