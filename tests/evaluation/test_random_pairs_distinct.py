"""Random-pair cosine statistics pair two distinct rows (issue 22, item 3)."""

from __future__ import annotations

import pytest
import torch

from hamjepa.evaluation import random_pair_cosines


def test_no_row_is_paired_with_itself() -> None:
    # Orthonormal rows: every cosine of two distinct rows is 0, a row with itself gives 1.
    feats = torch.eye(200, dtype=torch.float64)
    cos = random_pair_cosines(feats, num_pairs=20000, seed=0)
    assert cos.shape == (20000,)
    assert float(cos.abs().max()) == 0.0
    # The spec-H.4 draw (with replacement) does meet itself: about 1/200 of the pairs.
    with_replacement = random_pair_cosines(feats, num_pairs=20000, seed=0, distinct=False)
    assert 50 < int((with_replacement == 1).sum()) < 150


def test_every_other_row_is_drawn_about_equally() -> None:
    n = 5
    feats = torch.eye(n, dtype=torch.float64)
    feats[:, 0] = 1.0  # row 0 = e_0, row j > 0 = e_0 + e_j: cos(0, j) = 1/sqrt(2), cos(i, j) = 1/2 (i, j > 0)
    cos = random_pair_cosines(feats, num_pairs=40000, seed=1)
    with_zero = (cos - 2**-0.5).abs() < 1e-6
    between_others = (cos - 0.5).abs() < 1e-6
    assert bool((with_zero | between_others).all())
    # 2 (n - 1) of the n (n - 1) ordered pairs involve row 0.
    assert float(with_zero.double().mean()) == pytest.approx(2 / n, abs=0.01)


def test_distinct_pairs_need_two_rows() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        random_pair_cosines(torch.ones(1, 3))
    assert random_pair_cosines(torch.ones(1, 3), num_pairs=4, distinct=False).tolist() == pytest.approx([1.0] * 4)
