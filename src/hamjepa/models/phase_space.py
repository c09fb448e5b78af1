"""Phase-space view of an embedding: ``z = [q; p]`` and the token-grid flatten (docs/spec.md §B.2 steps 5-6).

Layout conventions (the rest of the library relies on them):

* ``z`` has an even last dimension ``D = 2 d``; ``q = z[..., :d]`` ("position"), ``p = z[..., d:]``
  ("momentum").
* A token map ``T`` of shape ``[N, C, h, w]`` is flattened channel-last. Without the split,
  ``z[n, (i*w + j)*C + c] = T[n, c, i, j]``. With the split, channels ``0 .. C/2-1`` of every token form
  ``q`` and channels ``C/2 .. C-1`` form ``p``, each flattened token-major:
  ``z[n, (i*w + j)*C/2 + c'] = T[n, c', i, j]`` and ``z[n, d + (i*w + j)*C/2 + c'] = T[n, C/2 + c', i, j]``
  with ``d = h*w*C/2``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["flatten_tokens", "merge_qp", "readouts", "split_qp"]


def split_qp(z: Tensor) -> tuple[Tensor, Tensor]:
    """Split a phase-space vector into position and momentum halves along the last axis.

    Args:
        z: ``[..., 2d]`` tensor (any leading shape).

    Returns:
        ``(q, p)``, each ``[..., d]`` (views of ``z``, no copy).

    Raises:
        ValueError: if ``z`` is 0-d or its last dimension is odd.
    """
    if z.ndim == 0:
        raise ValueError("split_qp: z must have at least one dimension (got a 0-d tensor)")
    size = z.shape[-1]
    if size % 2 != 0:
        raise ValueError(
            f"split_qp: the last dimension of z must be even to split into q and p halves, got {size}; "
            "use an even embedding dimension (e.g. an even token_dim) or disable the phase split"
        )
    d = size // 2
    return z[..., :d], z[..., d:]


def merge_qp(q: Tensor, p: Tensor) -> Tensor:
    """Concatenate ``q [..., d]`` and ``p [..., d]`` into ``z = [q; p]`` of shape ``[..., 2d]``."""
    if q.shape != p.shape:
        raise ValueError(f"merge_qp: q and p must have the same shape, got {tuple(q.shape)} and {tuple(p.shape)}")
    return torch.cat((q, p), dim=-1)


def flatten_tokens(tokens: Tensor, *, split_qp: bool) -> Tensor:
    """Flatten a token map ``[N, C, h, w]`` into ``z`` ``[N, h*w*C]`` (channel-last; docs/spec.md §B.2 steps 5-6).

    Args:
        tokens: ``[N, C, h, w]`` token map (any memory format).
        split_qp: if True, channels ``[0, C/2)`` of each token go to ``q`` and ``[C/2, C)`` to ``p``;
            ``z = [q; p]`` with each half flattened token-major (see the module docstring for the indices).

    Returns:
        ``[N, h*w*C]`` tensor.

    Raises:
        ValueError: if ``tokens`` is not 4-d, or ``split_qp`` is set and ``C`` is odd.
    """
    if tokens.ndim != 4:
        raise ValueError(f"flatten_tokens: expected a [N, C, h, w] token map, got shape {tuple(tokens.shape)}")
    n, c, h, w = tokens.shape
    last = tokens.permute(0, 2, 3, 1)  # [N, h, w, C]
    if not split_qp:
        return last.reshape(n, h * w * c)
    if c % 2 != 0:
        raise ValueError(
            f"flatten_tokens: split_qp=True needs an even number of token channels, got {c}; "
            "use an even token_dim or split_qp=False"
        )
    half = c // 2
    # [N, hw, 2, C/2] -> [N, 2, hw, C/2]: the first block is q, the second p, each token-major.
    return last.reshape(n, h * w, 2, half).transpose(1, 2).reshape(n, h * w * c)


def readouts(feats: Tensor, split_qp: bool) -> dict[str, Tensor]:
    """Slice one forward pass's features ``[N, D]`` into the evaluated readouts (views, no copies).

    ``split_qp=True``: ``{"q": feats[:, :D/2], "p": feats[:, D/2:], "qp": feats}``;
    ``split_qp=False``: ``{"z": feats}``.
    """
    if feats.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {tuple(feats.shape)}")
    if not split_qp:
        return {"z": feats}
    dim = feats.shape[1]
    if dim % 2:
        raise ValueError(f"split_qp=True needs an even feature dimension D = 2d, got D={dim}")
    half = dim // 2
    return {"q": feats[:, :half], "p": feats[:, half:], "qp": feats}
