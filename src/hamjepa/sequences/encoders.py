"""Encoders of the BiJEPA benchmark: an MLP for flattened sequence segments, a small ConvNet for image halves.

Both follow ``bijepa_lejepa.md`` Part 1 (Secs. 1.3-1.5) and take the norm mode's settings
(:func:`hamjepa.objectives.bijepa.norm_mode_settings`): LayerNorm after the hidden Linear layers or not,
and an optional L2 normalisation of the output onto the unit sphere ("restrictive" mode). The final Linear
never has a norm, so the embedding magnitude is free in the other modes.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from hamjepa.dynamics.mlp import build_mlp

__all__ = ["HalfImageEncoder", "SequenceEncoder", "has_batch_statistics"]


class SequenceEncoder(nn.Module):
    """MLP ``in -> hidden -> (LN) -> ReLU -> hidden -> (LN) -> ReLU -> out`` on flattened segments.

    Paper sizes: sine 10 -> 64 -> 64 -> 16, Lorenz 60 -> 128 -> 128 -> 32.

    Shapes: ``forward(x [N, in_dim]) -> [N, out_dim]``.
    """

    def __init__(
        self, in_dim: int, hidden_dim: int, out_dim: int, *, layer_norm: bool, unit_sphere: bool = False
    ) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.unit_sphere = in_dim, out_dim, unit_sphere
        norm = "layer" if layer_norm else None
        self.net = build_mlp(in_dim, out_dim, hidden_dims=[hidden_dim, hidden_dim], activation="relu", norm=norm)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"expected flattened segments [N, {self.in_dim}], got shape {tuple(x.shape)}")
        z = self.net(x)
        return F.normalize(z, dim=-1) if self.unit_sphere else z


class HalfImageEncoder(nn.Module):
    """ConvNet for ``[N, 1, 28, 14]`` image halves (paper Sec. 1.5).

    ``Conv(1->32, k3, s2, p1) -> BN -> ReLU -> Conv(32->64, k3, s2, p1) -> BN -> ReLU -> flatten (1792)
    -> Linear 128 -> (LN) -> ReLU -> Linear out_dim``.

    Shapes: ``forward(x [N, 1, 28, 14]) -> [N, out_dim]``.
    """

    def __init__(self, out_dim: int = 64, *, layer_norm: bool, unit_sphere: bool = False, hidden_dim: int = 128):
        super().__init__()
        self.out_dim, self.unit_sphere = out_dim, unit_sphere
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, stride=2, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.Flatten(),
        )
        norm = "layer" if layer_norm else None
        self.head = build_mlp(64 * 7 * 4, out_dim, hidden_dims=[hidden_dim], activation="relu", norm=norm)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 14):
            raise ValueError(f"expected image halves [N, 1, 28, 14], got shape {tuple(x.shape)}")
        z = self.head(self.conv(x))
        return F.normalize(z, dim=-1) if self.unit_sphere else z


def has_batch_statistics(module: nn.Module) -> bool:
    """True when ``module`` contains BatchNorm layers (its output for a sample depends on the batch)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
