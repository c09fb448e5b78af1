"""Train streams: determinism, exact resume, global-batch sharding; eval batches and subsets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.io import encode_jpeg

from hamjepa.data.augment import cifar100_augment, imagenet_augment
from hamjepa.data.eval_data import build_eval_data, stratified_subset
from hamjepa.data.folder_stream import ImageFolderStream
from hamjepa.data.imagefolder import ImageFolderSource
from hamjepa.data.loader import DeviceResidentStream
from hamjepa.data.sources import ArraySplits, save_packed

# encode_jpeg (used to make test files) is flagged deprecated in torchvision 0.29
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")


def _data(n: int = 40, side: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=g), torch.arange(n) % 5


def _aug():
    aug = cifar100_augment()
    aug.groups[0] = type(aug.groups[0])(2, 16, (0.3, 1.0))
    return aug


def _stream(world_size: int = 1, rank: int = 0, seed: int = 3, batch_size: int = 8) -> DeviceResidentStream:
    x, y = _data()
    return DeviceResidentStream(x, y, batch_size, _aug(), seed, rank=rank, world_size=world_size)


def test_epoch_covers_disjoint_images_and_shapes() -> None:
    s = _stream()
    s.set_epoch(1)
    labels, count = [], 0
    for views, y in s:
        assert views.shape == (2, 8, 3, 16, 16) and views.dtype == torch.float32
        labels.append(y)
        count += 1
    assert count == s.steps_per_epoch == len(s) == 5
    assert torch.cat(labels).sort().values.tolist() == sorted((torch.arange(40) % 5).tolist())
    assert s.state_dict()["position"] == 5


def test_same_seed_same_batches_and_epochs_differ() -> None:
    a, b = _stream(), _stream()
    a.set_epoch(1)
    b.set_epoch(1)
    for (va, ya), (vb, yb) in zip(a, b, strict=True):
        assert torch.equal(va, vb) and torch.equal(ya, yb)
    v1, _ = a.batch_at(1, 0)
    v2, _ = a.batch_at(2, 0)
    assert not torch.allclose(v1, v2)


def test_resume_mid_epoch_is_exact() -> None:
    ref = _stream()
    ref.set_epoch(2)
    uninterrupted = list(ref)
    s = _stream()
    s.set_epoch(2)
    it = iter(s)
    next(it), next(it)
    state = s.state_dict()
    assert (state["seed"], state["epoch"], state["position"]) == (3, 2, 2)
    resumed = _stream(seed=99)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # same epoch keeps the restored position
    rest = list(resumed)
    assert len(rest) == 3
    for (va, ya), (vb, yb) in zip(uninterrupted[2:], rest, strict=True):
        assert torch.equal(va, vb) and torch.equal(ya, yb)


def test_two_ranks_equal_one_rank_on_the_global_batch() -> None:
    full = _stream().batch_at(1, 3)
    parts = [_stream(world_size=2, rank=r).batch_at(1, 3) for r in range(2)]
    torch.testing.assert_close(torch.cat([p[0] for p in parts], dim=1), full[0], atol=1e-6, rtol=0)
    assert torch.equal(torch.cat([p[1] for p in parts]), full[1])


def test_bad_stream_arguments() -> None:
    x, y = _data()
    with pytest.raises(ValueError, match="not divisible by world_size=3"):
        DeviceResidentStream(x, y, 8, _aug(), 0, rank=0, world_size=3)
    with pytest.raises(ValueError, match="uint8"):
        DeviceResidentStream(x.float(), y, 8, _aug(), 0)
    with pytest.raises(ValueError, match="global batch size"):
        _stream().load_state_dict({"seed": 0, "epoch": 1, "position": 0, "batch_size": 16, "num_samples": 40})


def test_stratified_subset_balances_sorted_labels() -> None:
    labels = np.repeat(np.arange(4), 10)  # sorted by class like packed CIFAR
    keep = stratified_subset(labels, 8)
    assert np.bincount(labels[keep]).tolist() == [2, 2, 2, 2]


def test_eval_data_from_packed_arrays(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    splits = ArraySplits(
        rng.integers(0, 256, (10, 8, 8, 3), dtype=np.uint8),
        np.arange(10) % 2,
        rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8),
        np.arange(6) % 2,
        ["a", "b"],
    )
    path = save_packed(splits, tmp_path / "p.npz")
    data = build_eval_data("cifar100", path, batch_size=4)
    batches = list(data.train())
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    x0, y0 = batches[0]
    assert x0.dtype == torch.uint8 and x0.shape == (4, 3, 8, 8)
    assert torch.equal(x0, torch.from_numpy(splits.x_train[:4]).permute(0, 3, 1, 2))
    assert y0.dtype == torch.int64 and data.num_classes == 2 and data.mean == (0.5071, 0.4867, 0.4408)


def _folder(root: Path, n_per_class: int = 4) -> Path:
    for c in range(2):
        for i in range(n_per_class):
            img = torch.randint(0, 256, (3, 40, 30), dtype=torch.uint8, generator=torch.Generator().manual_seed(i))
            p = root / "train" / f"c{c}" / f"{i}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(encode_jpeg(img).numpy().tobytes())
    return root


def test_folder_stream_shapes_and_exact_resume(tmp_path: Path) -> None:
    src = ImageFolderSource(_folder(tmp_path), "train")
    aug = imagenet_augment()
    aug.groups[0] = type(aug.groups[0])(2, 24, (0.4, 1.0))
    aug.blur_kernel = 5

    def stream() -> ImageFolderStream:
        return ImageFolderStream(src, 4, aug, seed=1, device="cpu", num_workers=0)

    ref = stream()
    ref.set_epoch(1)
    full = list(ref)
    assert len(full) == 2 and full[0][0].shape == (2, 4, 3, 24, 24) and full[0][1].shape == (4,)
    s = stream()
    s.set_epoch(1)
    next(iter(s))
    resumed = stream()
    resumed.load_state_dict(s.state_dict())
    ((views, labels),) = list(resumed)
    assert torch.equal(views, full[1][0]) and torch.equal(labels, full[1][1])
