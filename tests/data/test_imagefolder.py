"""ImageFolder listing validation, JPEG decoding (real Imagenette-mini files) and the error lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.data._folder_testutils import make_tree, write_jpeg

from hamjepa.data.eval_data import build_eval_data
from hamjepa.data.imagefolder import ImageFolderSource, decode_rgb
from hamjepa.data.sources import DataError

# encode_jpeg (used to make test files) is flagged deprecated in torchvision 0.29
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")


def test_listing_labels_and_decoding(tmp_path: Path) -> None:
    src = ImageFolderSource(make_tree(tmp_path), "train")
    assert src.classes == ["cat", "dog"] and len(src) == 6
    assert src.targets.tolist() == [0, 0, 0, 1, 1, 1]
    img = src.decode(4)
    assert img.dtype == torch.uint8 and img.shape == (3, 20, 24)


def test_grayscale_jpeg_becomes_three_channels(tmp_path: Path) -> None:
    write_jpeg(tmp_path / "g.jpg", channels=1)
    img = decode_rgb(tmp_path / "g.jpg")
    assert img.shape == (3, 20, 24) and torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda r: r.mkdir(exist_ok=True), "image folder .*train does not exist"),
        (lambda r: (r / "train").mkdir(parents=True), "has no class folders"),
        (lambda r: (make_tree(r), (r / "train" / "empty").mkdir()), "class folder .*empty holds no images"),
    ],
)
def test_bad_layouts_give_one_clear_line(tmp_path: Path, setup, message: str) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    setup(root)
    with pytest.raises(DataError, match=message) as info:
        ImageFolderSource(root, "train")
    assert "\n" not in str(info.value)


def test_missing_root_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        ImageFolderSource(tmp_path / "absent", "train")


def test_truncated_jpeg_names_the_file_and_fix(tmp_path: Path) -> None:
    make_tree(tmp_path)
    bad = tmp_path / "train" / "dog" / "1.JPEG"
    bad.write_bytes(bad.read_bytes()[:100])
    src = ImageFolderSource(tmp_path, "train")
    with pytest.raises(DataError, match="cannot decode image") as info:
        src.decode(4)
    assert str(bad) in str(info.value) and "re-download or delete it" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.realdata
def test_real_imagenette_mini_listing_and_decode(shared_data: Path) -> None:
    root = shared_data / "imagenette-mini"
    train, val = ImageFolderSource(root, "train"), ImageFolderSource(root, "val")
    assert (len(train), len(val), train.num_classes) == (2600, 1000, 10)
    assert val.classes == train.classes and np.bincount(train.targets.numpy()).tolist() == [260] * 10
    for i in (0, 1300, 2599):
        img = train.decode(i)
        assert img.dtype == torch.uint8 and img.shape[0] == 3 and min(img.shape[1:]) >= 64


@pytest.mark.realdata
def test_real_imagenette_eval_batches_are_224_crops(shared_data: Path) -> None:
    data = build_eval_data("imagefolder", shared_data / "imagenette-mini", batch_size=4, num_workers=0, subset=6)
    x, y = next(iter(data.test()))
    assert x.dtype == torch.uint8 and x.shape == (4, 3, 224, 224)
    assert y.tolist() == [0, 1, 2, 3]  # stratified subset, one per class first
    assert data.num_classes == 10 and data.mean == (0.485, 0.456, 0.406)
