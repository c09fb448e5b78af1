"""`hamjepa data imagenet100`: the shipped class list, the accepted layouts (fake trees of tiny JPEGs), errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torchvision.io import encode_jpeg

from hamjepa.cli import main
from hamjepa.data.imagefolder import ImageFolderSource
from hamjepa.data.imagenet100 import imagenet100_classes, make_imagenet100
from hamjepa.data.sources import DataError

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

WNIDS = imagenet100_classes()
JPEG = encode_jpeg(torch.full((3, 8, 8), 120, dtype=torch.uint8)).numpy().tobytes()
FOREIGN = "n09999999"  # an ImageNet-1k class outside the subset


def _write(path: Path, data: bytes = JPEG) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _ilsvrc(root: Path, wnids: list[str], n_train: int = 2, n_val: int = 1) -> Path:
    for w in [*wnids, FOREIGN]:
        for i in range(n_train):
            _write(root / "train" / w / f"{w}_{i}.JPEG")
        for i in range(n_val):
            _write(root / "val" / w / f"ILSVRC2012_val_{w}_{i}.JPEG")
    return root


def _kaggle(root: Path, wnids: list[str]) -> Path:
    for k, w in enumerate(wnids):
        _write(root / f"train.X{1 + k * 4 // len(wnids)}" / w / f"{w}_0.JPEG")
        _write(root / "val.X" / w / f"{w}_v.JPEG")
    return root


def test_shipped_class_list_is_the_100_wnids() -> None:
    assert len(WNIDS) == 100 == len(set(WNIDS))
    assert all(re.fullmatch(r"n\d{8}", w) for w in WNIDS)
    assert FOREIGN not in WNIDS


def test_shipped_list_matches_the_shared_copy(shared_data: Path) -> None:
    shared = (shared_data / "imagenet100" / "classes.txt").read_text().split()
    assert shared == WNIDS


def test_ilsvrc_layout_symlinks_the_100_classes(tmp_path: Path) -> None:
    src = _ilsvrc(tmp_path / "imagenet", WNIDS)
    report = make_imagenet100(src, tmp_path / "in100", progress=False)
    out = tmp_path / "in100"
    assert sorted(d.name for d in (out / "train").iterdir()) == sorted(WNIDS)  # the foreign class is left out
    link = out / "train" / WNIDS[3] / f"{WNIDS[3]}_1.JPEG"
    assert link.is_symlink() and link.resolve() == (src / "train" / WNIDS[3] / f"{WNIDS[3]}_1.JPEG").resolve()
    assert set(report.counts["train"].values()) == {2} and set(report.counts["val"].values()) == {1}
    assert report.linked == 300 and report.bad == []
    assert "train: 100 classes, 200 images" in report.summary()
    train = ImageFolderSource(out, "train")
    assert train.num_classes == 100 and len(train) == 200
    # a repeated run keeps what exists
    assert make_imagenet100(src, out, progress=False).linked == 0


def test_copy_and_kaggle_layout(tmp_path: Path) -> None:
    wnids = WNIDS[:8]
    src = _kaggle(tmp_path / "kaggle", wnids)
    assert len(list(src.glob("train.X*"))) == 4
    report = make_imagenet100(src, tmp_path / "out", copy=True, classes=wnids, progress=False)
    f = tmp_path / "out" / "train" / wnids[7] / f"{wnids[7]}_0.JPEG"
    assert f.is_file() and not f.is_symlink() and f.read_bytes() == JPEG
    assert report.counts["val"] == dict.fromkeys(wnids, 1)


def test_missing_class_is_one_clear_error(tmp_path: Path) -> None:
    src = _ilsvrc(tmp_path / "imagenet", WNIDS[:99])
    message = f"1 of the 100 ImageNet-100 classes have no images in the train split .*{WNIDS[99]}"
    with pytest.raises(DataError, match=message) as info:
        make_imagenet100(src, tmp_path / "out", progress=False)
    assert "\n" not in str(info.value) and "expected" in str(info.value)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda r: _write(r / "images" / "a.JPEG"), "no train split under .*expected .*train/<wnid>/"),
        (
            lambda r: (
                _ilsvrc(r, WNIDS[:2]),
                [p.unlink() for p in (r / "val").rglob("*.JPEG")],
                [d.rmdir() for d in (r / "val").iterdir()],
                _write(r / "val" / "ILSVRC2012_val_1.JPEG"),
            ),
            "has no class folders .*flat",
        ),
    ],
)
def test_foreign_layouts_name_what_was_expected(tmp_path: Path, build, message: str) -> None:
    root = tmp_path / "src"
    build(root)
    with pytest.raises(DataError, match=message) as info:
        make_imagenet100(root, tmp_path / "out", classes=WNIDS[:2], progress=False)
    assert "\n" not in str(info.value)


def test_cli_reports_unreadable_files_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _ilsvrc(tmp_path / "imagenet", WNIDS, n_train=1)
    _write(src / "train" / WNIDS[0] / "empty.JPEG", b"")
    _write(src / "val" / WNIDS[1] / "notes.JPEG", b"this is not an image")
    code = main(
        ["data", "imagenet100", "--imagenet", str(src), "--out", str(tmp_path / "o"), "--workers", "0", "--no-progress"]
    )
    out = capsys.readouterr()
    assert code == 1
    assert "empty.JPEG: empty file" in out.out and "notes.JPEG: not an image" in out.out
    assert "2 unreadable file(s)" in out.out and "data.on_corrupt=skip" in out.err


def test_cli_foreign_layout_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x").mkdir()
    assert main(["data", "imagenet100", "--imagenet", str(tmp_path / "x"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("error: data: no train split")


def test_out_with_foreign_class_folders_is_refused_before_linking(tmp_path: Path) -> None:
    src = _ilsvrc(tmp_path / "imagenet", WNIDS[:2])
    (tmp_path / "out" / "train" / "cats").mkdir(parents=True)
    with pytest.raises(DataError, match="outside ImageNet-100 \\(cats\\)"):
        make_imagenet100(src, tmp_path / "out", classes=WNIDS[:2], progress=False)
    assert not (tmp_path / "out" / "train" / WNIDS[0]).exists()
