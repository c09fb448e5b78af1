"""Cosine kNN classifier on frozen features (docs/spec.md §H.2).

Train and test features are L2-normalised (no centring); similarity is their dot product. For every test
row the top-``k_max`` train neighbours are found once and every ``k`` of the sweep reads a prefix of that
one sorted list.

Neighbour order (deterministic): descending similarity, ties broken by the lower train index -- the
order a stable sort by descending similarity gives. It is implemented exactly by packing each float32
similarity (mapped to an order-preserving int32) and the train index into one unique int64 key, so
``torch.topk`` on the keys has no ties; ``-0.0`` is canonicalised to ``+0.0`` first.

Votes: unweighted majority among the first ``k`` neighbours (spec default) or, optionally, weights
``exp(sim / T)``; the prediction is the class with the most votes, ties to the smallest class index;
top-5 are the first 5 classes of a stable descending sort of the vote counts (same tie rule) **among the
classes that received at least one vote** from the ``k`` neighbours. A class no neighbour voted for is never
a guess, so with fewer than 5 voted classes (always at ``k < 5``) the top-5 set is smaller: at ``k = 1``
top-5 equals top-1. Without this rule, zero-vote classes would fill the set in class-index order.

Memory is bounded by chunking test rows (``test_chunk``) and train rows (``train_chunk``, with a running
top-``k_max`` merge across train chunks), so at most ``test_chunk * train_chunk`` similarities exist at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

DEFAULT_K_VALUES: tuple[int, ...] = (1, 5, 10, 20, 50, 100, 200)
_LOW32 = (1 << 32) - 1


@dataclass
class KNNResult:
    """kNN sweep result; accuracies are fractions in [0, 1]."""

    k_values: list[int]
    top1: list[float]
    top5: list[float]
    nn20: float | None  # top-1 at k = 20 when 20 is in the sweep
    best_k: int
    best_top1: float
    weighted: bool
    temperature: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def _sort_keys(sims: Tensor, train_index: Tensor) -> Tensor:
    """Unique int64 keys, ordered like (similarity descending, train index ascending) when sorted descending.

    sims: float32 ``[t, n]``; train_index: int64 ``[n]`` (global train indices, < 2**32).
    """
    s = (sims.float() + 0.0).contiguous()  # -0.0 + 0.0 == +0.0: equal similarities get equal keys
    bits = s.view(torch.int32)
    ordered = torch.where(bits >= 0, bits, bits ^ 0x7FFFFFFF).to(torch.int64)
    return ordered * (1 << 32) + (_LOW32 - train_index)


def _keys_to_index(keys: Tensor) -> Tensor:
    return _LOW32 - (keys & _LOW32)


def _keys_to_sims(keys: Tensor) -> Tensor:
    ordered = (keys >> 32).to(torch.int32)  # arithmetic shift: the high word, sign included
    return torch.where(ordered >= 0, ordered, ordered ^ 0x7FFFFFFF).view(torch.float32)


def knn_neighbours(
    train_feats: Tensor,
    test_feats: Tensor,
    k_max: int,
    *,
    test_chunk: int = 1024,
    train_chunk: int = 32768,
) -> tuple[Tensor, Tensor]:
    """Top-``k_max`` cosine neighbours of each test row.

    Args:
        train_feats: ``[N_train, D]``; test_feats: ``[N_test, D]`` (same device; normalised here).

    Returns:
        ``(sims float32 [N_test, k_max], index int64 [N_test, k_max])`` sorted by descending similarity,
        ties by lower train index.
    """
    n_train = train_feats.shape[0]
    if train_feats.ndim != 2 or test_feats.ndim != 2 or train_feats.shape[1] != test_feats.shape[1]:
        raise ValueError(
            f"train/test features must be [N, D] with the same D, got {tuple(train_feats.shape)} "
            f"and {tuple(test_feats.shape)}"
        )
    if n_train == 0 or test_feats.shape[0] == 0:
        raise ValueError("empty feature set: kNN needs at least one train and one test feature")
    if not 1 <= k_max <= n_train:
        raise ValueError(f"k_max={k_max} must be in [1, N_train={n_train}]; drop the larger k values")
    if test_chunk < 1 or train_chunk < 1:
        raise ValueError(f"test_chunk and train_chunk must be >= 1, got {test_chunk} and {train_chunk}")
    train_n = F.normalize(train_feats.float(), dim=1)
    test_n = F.normalize(test_feats.float(), dim=1)
    device = train_n.device
    all_index = torch.arange(n_train, device=device, dtype=torch.int64)
    out_sims, out_idx = [], []
    for t0 in range(0, test_n.shape[0], test_chunk):
        q = test_n[t0 : t0 + test_chunk]
        best: Tensor | None = None
        for s0 in range(0, n_train, train_chunk):
            keys = _sort_keys(q @ train_n[s0 : s0 + train_chunk].T, all_index[s0 : s0 + train_chunk])
            if best is not None:
                keys = torch.cat([best, keys], dim=1)
            best = keys.topk(min(k_max, keys.shape[1]), dim=1, sorted=True).values
        assert best is not None
        out_idx.append(_keys_to_index(best))
        out_sims.append(_keys_to_sims(best))
    return torch.cat(out_sims), torch.cat(out_idx)


def vote_counts(neighbour_labels: Tensor, weights: Tensor, num_classes: int) -> Tensor:
    """``[t, k]`` labels and weights -> ``[t, num_classes]`` summed votes."""
    counts = torch.zeros(neighbour_labels.shape[0], num_classes, device=weights.device, dtype=weights.dtype)
    return counts.scatter_add_(1, neighbour_labels, weights)


def ranked_classes(counts: Tensor, top: int) -> Tensor:
    """First ``top`` classes by descending votes, ties to the smaller class index: ``[t, top]``."""
    return torch.sort(counts, dim=1, descending=True, stable=True).indices[:, :top]


def voted_classes(neighbour_labels: Tensor, num_classes: int) -> Tensor:
    """``[t, k]`` labels -> bool ``[t, num_classes]``: whether any of the ``k`` neighbours has the class."""
    voted = torch.zeros(neighbour_labels.shape[0], num_classes, dtype=torch.bool, device=neighbour_labels.device)
    return voted.scatter_(1, neighbour_labels, True)


def knn_classify(
    train_feats: Tensor,
    train_labels: Tensor,
    test_feats: Tensor,
    test_labels: Tensor,
    num_classes: int,
    *,
    k_values: Sequence[int] = DEFAULT_K_VALUES,
    weighted: bool = False,
    temperature: float = 0.07,
    test_chunk: int = 1024,
    train_chunk: int = 32768,
) -> KNNResult:
    """kNN top-1 / top-5 for every ``k`` of the sweep from one sorted neighbour list.

    Top-5 counts a hit when the true class is among the 5 best *voted* classes (never a class with no vote
    among the ``k`` neighbours), so it is well defined for every ``k``; at ``k = 1`` it equals top-1.

    Args:
        train_feats: ``[N_train, D]``, train_labels: int ``[N_train]`` in ``[0, num_classes)``.
        test_feats: ``[N_test, D]``, test_labels: int ``[N_test]``.
        k_values: the sweep (positive, distinct, each <= N_train).
        weighted: vote with weights ``exp(sim / temperature)`` instead of 1.
    """
    ks = [int(k) for k in k_values]
    if not ks or len(set(ks)) != len(ks) or min(ks) < 1:
        raise ValueError(f"k_values must be distinct positive integers, got {list(k_values)}")
    if weighted and temperature <= 0:
        raise ValueError(f"temperature must be > 0 for the weighted vote, got {temperature}")
    if train_labels.shape != (train_feats.shape[0],) or test_labels.shape != (test_feats.shape[0],):
        raise ValueError("labels must be 1-D with one entry per feature row")
    sims, idx = knn_neighbours(train_feats, test_feats, max(ks), test_chunk=test_chunk, train_chunk=train_chunk)
    nlab = train_labels.to(idx.device, torch.int64)[idx]  # [N_test, k_max]
    weights = torch.exp(sims / temperature) if weighted else torch.ones_like(sims)
    target = test_labels.to(idx.device, torch.int64).unsqueeze(1)
    top = min(5, num_classes)
    correct1, correct5 = [], []
    for k in ks:
        ranked = ranked_classes(vote_counts(nlab[:, :k], weights[:, :k], num_classes), top)
        # A class enters the top-5 only with at least one vote (see the module docstring).
        hits = (ranked == target) & voted_classes(nlab[:, :k], num_classes).gather(1, ranked)
        correct1.append(hits[:, 0].sum())
        correct5.append(hits.any(dim=1).sum())
    n_test = test_feats.shape[0]
    top1 = [c / n_test for c in torch.stack(correct1).tolist()]  # one host sync for the whole sweep
    top5 = [c / n_test for c in torch.stack(correct5).tolist()]
    best = max(range(len(ks)), key=lambda i: (top1[i], -ks[i]))  # first best in ascending k
    return KNNResult(
        k_values=ks,
        top1=top1,
        top5=top5,
        nn20=top1[ks.index(20)] if 20 in ks else None,
        best_k=ks[best],
        best_top1=top1[best],
        weighted=weighted,
        temperature=temperature if weighted else None,
    )
