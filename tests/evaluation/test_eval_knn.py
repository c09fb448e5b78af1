"""kNN: neighbour order, tie rules and accuracies against independent NumPy / scikit-learn computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hamjepa.evaluation.knn import knn_classify, knn_neighbours


def ternary_features(n: int, dim: int, nonzero: int, rng: np.random.Generator) -> np.ndarray:
    """Rows with exactly ``nonzero`` entries in {-1, +1}: after L2 normalisation every entry is
    +-1/sqrt(nonzero) and with nonzero=4 all cosines are exact multiples of 1/4 (massive exact ties)."""
    x = np.zeros((n, dim), dtype=np.float32)
    for i in range(n):
        cols = rng.choice(dim, size=nonzero, replace=False)
        x[i, cols] = rng.choice([-1.0, 1.0], size=nonzero)
    return x


def numpy_knn(train, ytr, test, yte, num_classes, ks, weighted=False, temperature=0.07):
    """Reference: float64 cosine, stable order (similarity desc, train index asc), bincount votes."""
    a = train.astype(np.float64) / np.linalg.norm(train, axis=1, keepdims=True)
    b = test.astype(np.float64) / np.linalg.norm(test, axis=1, keepdims=True)
    sims = b @ a.T
    kmax = max(ks)
    order = np.stack([np.lexsort((np.arange(a.shape[0]), -row))[:kmax] for row in sims])
    top1, top5 = [], []
    for k in ks:
        c1 = c5 = 0
        for i in range(b.shape[0]):
            nb = order[i, :k]
            w = np.exp(sims[i, nb] / temperature) if weighted else np.ones(k)
            votes = np.bincount(ytr[nb], weights=w, minlength=num_classes)
            voted = set(ytr[nb].tolist())  # only classes with a vote can be guessed
            ranked = [c for c in np.argsort(-votes, kind="stable") if c in voted][:5]
            c1 += int(np.argmax(votes) == yte[i])
            c5 += int(yte[i] in ranked)
        top1.append(c1 / b.shape[0])
        top5.append(c5 / b.shape[0])
    return order, np.take_along_axis(sims, order, axis=1), top1, top5


def test_neighbour_order_with_exact_ties_matches_numpy_stable_sort() -> None:
    rng = np.random.default_rng(0)
    train = ternary_features(150, 8, 4, rng)
    train[100:110] = train[0]  # duplicated rows: identical similarity to every test row
    test = ternary_features(30, 8, 4, rng)
    ref_order, ref_sims, _, _ = numpy_knn(train, np.zeros(150, int), test, np.zeros(30, int), 1, [40])
    sims, idx = knn_neighbours(torch.from_numpy(train), torch.from_numpy(test), 40, test_chunk=7, train_chunk=33)
    np.testing.assert_array_equal(idx.numpy(), ref_order)
    np.testing.assert_allclose(sims.numpy(), ref_sims, rtol=0, atol=1e-6)
    assert len(np.unique(ref_sims)) < 20  # the data really is tie-heavy


@pytest.mark.parametrize("weighted", [False, True])
def test_knn_sweep_matches_numpy_on_tied_data(weighted: bool) -> None:
    rng = np.random.default_rng(1)
    train = ternary_features(200, 8, 4, rng)
    test = ternary_features(60, 8, 4, rng)
    ytr = rng.integers(0, 7, size=200)
    yte = rng.integers(0, 7, size=60)
    ks = [1, 2, 4, 5, 10, 20, 50]
    _, _, ref1, ref5 = numpy_knn(train, ytr, test, yte, 7, ks, weighted=weighted)
    res = knn_classify(
        torch.from_numpy(train),
        torch.from_numpy(ytr),
        torch.from_numpy(test),
        torch.from_numpy(yte),
        7,
        k_values=ks,
        weighted=weighted,
        test_chunk=16,
        train_chunk=64,
    )
    assert res.k_values == ks
    assert res.top1 == ref1
    assert res.top5 == ref5
    assert res.nn20 == ref1[ks.index(20)]
    best = int(np.argmax(ref1))  # first maximum = smallest k among equally good ones
    assert (res.best_k, res.best_top1) == (ks[best], ref1[best])
    assert res.weighted is weighted


def test_vote_ties_go_to_smallest_class_index() -> None:
    # test point (1, 0); neighbours in order: class 3 (sim 1), class 1 (sim 0.8), then a far class 0.
    train = torch.tensor([[1.0, 0.0], [0.8, 0.6], [-1.0, 0.0]])
    ytr = torch.tensor([3, 1, 0])
    test = torch.tensor([[1.0, 0.0]])
    res = knn_classify(train, ytr, test, torch.tensor([1]), 4, k_values=(1, 2, 3))
    # k=1: class 3 wins (wrong); k=2: 1-1 tie between classes 1 and 3 -> class 1 (right);
    # k=3: three-way tie 0/1/3 -> class 0 (wrong)
    assert res.top1 == [0.0, 1.0, 0.0]
    # k=1: only class 3 has a vote, so the true class 1 is not among the guesses.
    assert res.top5 == [0.0, 1.0, 1.0]
    assert res.nn20 is None
    assert (res.best_k, res.best_top1) == (2, 1.0)


def test_top5_never_counts_a_class_without_votes() -> None:
    """At k = 1 a single class has a vote: top-5 must equal top-1, not add the lowest-index classes."""
    # Every test point's nearest neighbour has class 9; its true class is one of 0..3 (the classes a
    # class-index tie-break among zero-vote classes would have listed first).
    rng = np.random.default_rng(3)
    train = torch.from_numpy(rng.normal(size=(40, 6)).astype(np.float32))
    ytr = torch.full((40,), 9)
    test = train[:12] + 1e-3
    yte = torch.arange(12) % 4
    res = knn_classify(train, ytr, test, yte, 10, k_values=(1, 3, 10))
    assert res.top1 == [0.0, 0.0, 0.0]
    assert res.top5 == [0.0, 0.0, 0.0]
    # and on mixed labels top-5 at k = 1 is exactly top-1 (one voted class)
    ymix = torch.from_numpy(rng.integers(0, 10, size=40))
    mixed = knn_classify(train, ymix, test, ymix[:12].roll(1), 10, k_values=(1, 2))
    assert mixed.top5[0] == mixed.top1[0]
    assert mixed.top5[1] >= mixed.top1[1]


def test_majority_vote_matches_sklearn_on_continuous_data() -> None:
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(2)
    centers = rng.normal(size=(5, 12))
    ytr = rng.integers(0, 5, size=300)
    yte = rng.integers(0, 5, size=80)
    train = (centers[ytr] + 1.2 * rng.normal(size=(300, 12))).astype(np.float32)
    test = (centers[yte] + 1.2 * rng.normal(size=(80, 12))).astype(np.float32)
    ks = [1, 5, 10, 20]
    res = knn_classify(
        torch.from_numpy(train), torch.from_numpy(ytr), torch.from_numpy(test), torch.from_numpy(yte), 5,
        k_values=ks, train_chunk=50,
    )  # fmt: skip
    for k, acc in zip(ks, res.top1, strict=True):
        clf = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute").fit(train, ytr)
        assert acc == pytest.approx(float(np.mean(clf.predict(test) == yte)), abs=0)
    assert 0.2 < max(res.top1) <= 1.0  # far above the 1/5 chance level on these blobs


def test_chunking_does_not_change_results() -> None:
    g = torch.Generator().manual_seed(3)
    train, test = torch.randn(257, 6, generator=g), torch.randn(41, 6, generator=g)
    ytr, yte = torch.randint(0, 3, (257,), generator=g), torch.randint(0, 3, (41,), generator=g)
    a = knn_neighbours(train, test, 30, test_chunk=1000, train_chunk=100000)
    b = knn_neighbours(train, test, 30, test_chunk=5, train_chunk=31)
    assert torch.equal(a[1], b[1])
    np.testing.assert_allclose(a[0].numpy(), b[0].numpy(), rtol=0, atol=1e-6)  # matmul blocking may change the last bit
    assert bool((a[0][:, :-1] >= a[0][:, 1:]).all())  # descending similarity
    r1 = knn_classify(train, ytr, test, yte, 3, k_values=(1, 10, 30))
    r2 = knn_classify(train, ytr, test, yte, 3, k_values=(1, 10, 30), test_chunk=3, train_chunk=17)
    assert r1 == r2


def test_knn_argument_errors() -> None:
    x, y = torch.randn(10, 4), torch.zeros(10, dtype=torch.int64)
    with pytest.raises(ValueError, match="k_max"):
        knn_classify(x, y, x, y, 1, k_values=(5, 20))
    with pytest.raises(ValueError, match="distinct positive"):
        knn_classify(x, y, x, y, 1, k_values=(1, 1))
    with pytest.raises(ValueError, match="empty feature set"):
        knn_classify(x[:0], y[:0], x, y, 1, k_values=(1,))
