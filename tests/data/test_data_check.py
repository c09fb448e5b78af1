"""`hamjepa data check DIR`: decodes every file, lists the bad ones (truncated, empty, not an image), exit status."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.data._folder_testutils import break_files, make_tree

from hamjepa.cli import main
from hamjepa.data.check import check_image_folder, probe_file

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")


def _break(root: Path) -> dict[str, Path]:
    return break_files(
        truncated=root / "train" / "cat" / "1.JPEG",
        empty=root / "train" / "dog" / "0.JPEG",
        not_an_image=root / "val" / "dog" / "2.JPEG",
    )


def test_probe_file_reasons(tmp_path: Path) -> None:
    bad = _break(make_tree(tmp_path))
    assert probe_file(tmp_path / "train" / "cat" / "0.JPEG") is None
    assert probe_file(bad["truncated"]) == "Image is incomplete or truncated"
    assert probe_file(bad["truncated"], decode=False) is None  # the header alone does not show it
    assert probe_file(bad["empty"]) == "empty file" == probe_file(bad["empty"], decode=False)
    assert probe_file(bad["not an image"]).startswith("not an image")
    assert probe_file(bad["not an image"], decode=False) == "not an image"


def test_check_lists_every_bad_file_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _break(make_tree(tmp_path))
    report = check_image_folder(tmp_path, progress=False)
    assert report.splits == {"train": 6, "val": 6} and report.classes == {"train": 2, "val": 2}
    assert {b.path for b in report.bad} == set(bad.values())
    assert main(["data", "check", str(tmp_path), "--workers", "1"]) == 1
    captured = capsys.readouterr()
    for path in bad.values():
        assert f"bad: {path}: " in captured.out
    assert "checked 12 files (train: 6 files in 2 classes, val: 6 files in 2 classes): 3 bad" in captured.out
    assert "checking train" in captured.err  # the progress bar


def test_clean_folder_and_single_split_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_tree(tmp_path)
    assert main(["data", "check", str(tmp_path), "--workers", "0", "--no-progress"]) == 0
    assert main(["data", "check", str(tmp_path / "val"), "--workers", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "checked 12 files" in out and "checked 6 files (val: 6 files in 2 classes): 0 bad" in out


def test_not_an_image_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", str(tmp_path / "absent")]) == 2
    assert capsys.readouterr().err.startswith("error: data:")


def test_evaluation_data_honours_on_corrupt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from hamjepa.data.eval_data import eval_data_from_imagefolder
    from hamjepa.data.imagefolder import CorruptImageError

    bad = _break(make_tree(tmp_path))
    strict = eval_data_from_imagefolder(tmp_path, batch_size=4, num_workers=0, resize=32, crop=24)
    with pytest.raises(CorruptImageError, match=r"2\.JPEG"):
        list(strict.test())
    lenient = eval_data_from_imagefolder(tmp_path, batch_size=4, num_workers=0, resize=32, crop=24, on_corrupt="skip")
    with caplog.at_level("WARNING", logger="hamjepa.data.eval_data"):
        test = list(lenient.test())
        train = list(lenient.train())
    assert sum(len(y) for _, y in test) == 5 and sum(len(y) for _, y in train) == 4
    assert all(x.shape[1:] == (3, 24, 24) for x, _ in test)
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert all(str(p) in logged for p in bad.values())
