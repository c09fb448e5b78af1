"""Packed .npz loading (real CIFAR-100 and error cases), the packer, and the CLI parser."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from hamjepa.data.cli import add_parser
from hamjepa.data.sources import ArraySplits, DataError, load_packed, save_packed


def _splits(n_train: int = 6, n_test: int = 4) -> ArraySplits:
    rng = np.random.default_rng(0)
    return ArraySplits(
        x_train=rng.integers(0, 256, (n_train, 8, 8, 3), dtype=np.uint8),
        y_train=np.arange(n_train) % 3,
        x_test=rng.integers(0, 256, (n_test, 8, 8, 3), dtype=np.uint8),
        y_test=np.arange(n_test) % 3,
        class_names=["a", "b", "c"],
    )


def test_save_load_roundtrip(tmp_path: Path) -> None:
    s = _splits()
    out = save_packed(s, tmp_path / "small.npz")
    got = load_packed(out)
    assert np.array_equal(got.x_train, s.x_train) and np.array_equal(got.x_test, s.x_test)
    assert got.y_train.dtype == np.int64 and np.array_equal(got.y_test, s.y_test)
    assert got.class_names == ["a", "b", "c"] and got.num_classes == 3


def _write(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("y_test"), "is missing key 'y_test'"),
        (lambda d: d.update(x_train=d["x_train"].astype(np.float32)), "'x_train' must be uint8"),
        (lambda d: d.update(x_test=d["x_test"][..., 0]), "'x_test' must be uint8"),
        (lambda d: d.update(y_train=d["y_train"][:-1]), "6 images in 'x_train' but 5 labels"),
        (lambda d: d.update(y_test=d["y_test"].astype(np.float64)), "'y_test' must be integer labels"),
    ],
)
def test_malformed_npz_gives_one_clear_line(tmp_path: Path, mutate, message: str) -> None:
    s = _splits()
    d = {"x_train": s.x_train, "y_train": s.y_train, "x_test": s.x_test, "y_test": s.y_test}
    mutate(d)
    path = _write(tmp_path / "bad.npz", **d)
    with pytest.raises(DataError, match=message) as info:
        load_packed(path)
    text = str(info.value)
    assert "\n" not in text and str(path) in text and "hamjepa data cifar100" in text


def test_missing_file_names_the_path_and_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as info:
        load_packed(tmp_path / "nope.npz")
    assert "nope.npz" in str(info.value) and "hamjepa data cifar100 --root" in str(info.value)


def test_not_an_npz_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"junk\.npz"):
        load_packed(path)


def test_cli_registers_data_cifar100() -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "cifar100", "--root", "/tmp/x", "--out", "/tmp/x/c.npz", "--no-download"])
    assert args.root == "/tmp/x" and args.out == "/tmp/x/c.npz" and args.no_download and callable(args.func)


def test_cli_without_download_reports_missing_data(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "cifar100", "--root", str(tmp_path), "--no-download"])
    assert args.func(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path) in err


@pytest.mark.realdata
def test_real_cifar100_loads_with_expected_statistics(cifar100_npz: Path) -> None:
    s = load_packed(cifar100_npz)
    assert s.x_train.shape == (50000, 32, 32, 3) and s.x_test.shape == (10000, 32, 32, 3)
    assert s.num_classes == 100 and len(np.unique(s.y_train)) == 100
    assert np.bincount(s.y_test).tolist() == [100] * 100
    mean = s.x_train.reshape(-1, 3).mean(0, dtype=np.float64) / 255.0
    np.testing.assert_allclose(mean, [0.5071, 0.4865, 0.4409], atol=1e-3)
