"""Regression tests from the data review: config/stream size agreement and a sync-free device hot path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hamjepa.components import config_from_dict
from hamjepa.data.augment import cifar100_augment, imagenet_augment
from hamjepa.data.from_config import train_stream_from_config
from hamjepa.data.sources import ArraySplits, save_packed

# encode_jpeg (used to make test files) is flagged deprecated in torchvision 0.29
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")


def _packed(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    y = np.arange(20, dtype=np.int64) % 4
    return save_packed(ArraySplits(x, y, x[:8], y[:8], [f"c{i}" for i in range(4)]), tmp_path / "tiny.npz")


def _cfg(path: Path, image_size: int):
    return config_from_dict(
        {
            "data": {
                "dataset": "cifar100",
                "source": "packed",
                "path": str(path),
                "batch_size": 4,
                "image_size": image_size,
            }
        }
    )


def test_train_stream_refuses_image_size_the_preset_does_not_make(tmp_path: Path) -> None:
    path = _packed(tmp_path)
    with pytest.raises(ValueError, match=r"data\.image_size.*set data\.image_size=32"):
        _cfg(path, 64)  # refused when the config is loaded, before any data is read
    stream = train_stream_from_config(_cfg(path, 32), device=torch.device("cpu"))
    views, labels = next(iter(stream))
    assert tuple(views.shape) == (2, 4, 3, 32, 32) and labels.shape == (4,)


@pytest.mark.parametrize("preset,side", [(cifar100_augment, 32), (imagenet_augment, 40)])
def test_device_ops_have_no_data_dependent_host_syncs(preset, side: int) -> None:
    """On the meta device every value is unknown: any .item()/.tolist()/nonzero()/mask indexing or Python
    branch on a tensor value would raise, so this proves ``apply``/``apply_after_crop`` never sync."""
    aug = preset()
    params = aug.sample_params(3, side, side, torch.Generator().manual_seed(0)).to("meta")
    images = torch.empty(3, 3, side, side, dtype=torch.uint8, device="meta")
    (views,) = aug.apply(images, params)
    size = aug.groups[0].size
    assert views.device.type == "meta" and tuple(views.shape) == (2, 3, 3, size, size)
    crops = torch.empty(2, 3, 3, size, size, dtype=torch.uint8, device="meta")
    (after,) = aug.apply_after_crop([crops], params)
    assert after.dtype == torch.float32 and tuple(after.shape) == (2, 3, 3, size, size)


def test_folder_stream_keeps_persistent_workers_and_matches_in_process_decoding(tmp_path: Path) -> None:
    """Spec A.3: persistent workers (one DataLoader reused across epochs), same batches as num_workers=0."""
    from torchvision.io import encode_jpeg

    from hamjepa.data.folder_stream import ImageFolderStream
    from hamjepa.data.imagefolder import ImageFolderSource

    for c in range(2):
        for i in range(3):
            img = torch.randint(0, 256, (3, 30, 26), dtype=torch.uint8, generator=torch.Generator().manual_seed(i))
            p = tmp_path / "train" / f"c{c}" / f"{i}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(encode_jpeg(img).numpy().tobytes())
    src = ImageFolderSource(tmp_path, "train")
    aug = imagenet_augment()
    aug.groups[0] = type(aug.groups[0])(2, 16, (0.4, 1.0))
    aug.blur_kernel = 3

    def epochs(num_workers: int) -> tuple[ImageFolderStream, list[torch.Tensor]]:
        s = ImageFolderStream(src, 3, aug, seed=5, device="cpu", num_workers=num_workers)
        out = []
        for e in (1, 2):
            s.set_epoch(e)
            out += [v for v, _ in s]
        return s, out

    s1, with_workers = epochs(1)
    loader = s1._loader()
    assert loader.persistent_workers and s1._loader() is loader
    _, in_process = epochs(0)
    assert len(with_workers) == 4
    assert all(torch.equal(a, b) for a, b in zip(with_workers, in_process, strict=True))
