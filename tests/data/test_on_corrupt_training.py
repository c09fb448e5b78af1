"""`data.on_corrupt` in a training run: `error` stops with one line naming the file; `skip` trains on and logs
every skipped file to metrics.jsonl (truncated JPEG, zero-byte file, non-image file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.data._folder_testutils import break_files, make_tree

from hamjepa.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")
REPO = Path(__file__).resolve().parents[2]


def _tree(root: Path) -> dict[str, Path]:
    make_tree(root, classes=("a", "b"), per_split={"train": 4, "val": 2}, h=40, w=48)
    return break_files(
        truncated=root / "train" / "a" / "1.JPEG",
        empty=root / "train" / "b" / "0.JPEG",
        not_an_image=root / "train" / "b" / "3.JPEG",
    )


def _argv(data: Path, run: Path, policy: str, **extra: object) -> list[str]:
    overrides = {
        "data.path": data,
        "data.batch_size": 8,
        "data.num_workers": 0,
        "data.on_corrupt": policy,
        "train.epochs": 1,
        "train.max_steps": 1,
        "train.log_every": 1,
        "train.progress": False,
        "train.tensorboard": False,
        "train.device": "cpu",
        "optim.warmup_epochs": 1,
        "model.channels_last": False,
        **extra,
    }
    config = str(REPO / "configs" / "imagenet100_sigreg.yaml")
    return ["train", config, *[f"{k}={v}" for k, v in overrides.items()], "--run-dir", str(run)]


@pytest.mark.slow
def test_on_corrupt_error_and_skip_in_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _tree(tmp_path / "data")
    assert main(_argv(tmp_path / "data", tmp_path / "strict", "error")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: data: cannot decode image ")
    assert any(str(p) in err[0] for p in bad.values()) and "data.on_corrupt=skip" in err[0]

    # The online kNN monitor reads the same folder (train/ holds the bad files) under the same policy.
    monitor = {"train.monitor_every": 1, "train.monitor_train_size": 8, "train.monitor_test_size": 4}
    assert main(_argv(tmp_path / "data", tmp_path / "lenient", "skip", **monitor)) == 0
    rows = [json.loads(line) for line in (tmp_path / "lenient" / "metrics.jsonl").read_text().splitlines()]
    skips = {r["path"]: r["reason"] for r in rows if r["kind"] == "data_skip"}
    assert skips == {
        str(bad["truncated"]): "Image is incomplete or truncated",
        str(bad["empty"]): "empty file",
        str(bad["not an image"]): "not an image",
    }
    assert any(r["kind"] == "train" for r in rows)


def test_on_corrupt_is_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = _argv(tmp_path, tmp_path / "run", "ignore")
    assert main(argv) == 2
    assert "on_corrupt" in capsys.readouterr().err
