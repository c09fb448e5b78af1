"""Phase-space split and token-flatten layout (docs/spec.md §B.2 step 6, docs/spec.md §M first bullet)."""

from __future__ import annotations

import pytest
import torch

from hamjepa.models import flatten_tokens, merge_qp, split_qp


def test_split_qp_returns_halves_and_merge_inverts() -> None:
    z = torch.randn(3, 5, 10)
    q, p = split_qp(z)
    assert q.shape == p.shape == (3, 5, 5)
    assert torch.equal(q, z[..., :5])
    assert torch.equal(p, z[..., 5:])
    assert torch.equal(merge_qp(q, p), z)


@pytest.mark.parametrize("shape", [(4, 7), (7,)])
def test_split_qp_rejects_odd_last_dim(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="even"):
        split_qp(torch.zeros(shape))


def test_split_qp_rejects_scalar_and_merge_rejects_mismatch() -> None:
    with pytest.raises(ValueError, match="at least one dimension"):
        split_qp(torch.tensor(1.0))
    with pytest.raises(ValueError, match="same shape"):
        merge_qp(torch.zeros(2, 3), torch.zeros(2, 4))


def _layout_indices(h: int, w: int, c: int, *, split: bool) -> list[tuple[int, int, int, int]]:
    """(z index, channel, i, j) for every token entry, written from the spec's index formulas."""
    out = []
    half = c // 2
    d = h * w * half
    for i in range(h):
        for j in range(w):
            for ch in range(c):
                if split:
                    index = (i * w + j) * half + ch if ch < half else d + (i * w + j) * half + (ch - half)
                else:
                    index = (i * w + j) * c + ch
                out.append((index, ch, i, j))
    return out


@pytest.mark.parametrize("split", [True, False])
@pytest.mark.parametrize("channels_last", [False, True])
def test_flatten_tokens_matches_documented_indices(split: bool, channels_last: bool) -> None:
    n, c, h, w = 2, 32, 8, 8
    # Every entry distinct, so a wrong placement cannot go unnoticed.
    tokens = torch.arange(n * c * h * w, dtype=torch.float64).reshape(n, c, h, w)
    if channels_last:
        tokens = tokens.to(memory_format=torch.channels_last)
    z = flatten_tokens(tokens, split_qp=split)
    assert z.shape == (n, 2048)
    entries = _layout_indices(h, w, c, split=split)
    index = torch.tensor([e[0] for e in entries])
    expected = torch.stack([tokens[:, ch, i, j] for _, ch, i, j in entries], dim=1)
    assert torch.equal(z[:, index], expected)
    assert sorted(index.tolist()) == list(range(2048))  # a permutation: nothing lost or duplicated
    if split:
        q, p = split_qp(z)
        # q holds channels 0..15 of token (i, j) at (i*w + j)*16 + c.
        assert q[1, (3 * w + 5) * 16 + 7] == tokens[1, 7, 3, 5]
        assert p[0, (2 * w + 1) * 16 + 4] == tokens[0, 16 + 4, 2, 1]


def test_flatten_tokens_errors() -> None:
    with pytest.raises(ValueError, match="even number of token channels"):
        flatten_tokens(torch.zeros(1, 3, 2, 2), split_qp=True)
    with pytest.raises(ValueError, match=r"\[N, C, h, w\]"):
        flatten_tokens(torch.zeros(3, 2, 2), split_qp=False)
