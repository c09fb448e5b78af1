"""Checkpoints are written whole or not at all, with the permissions of every other file of the run (the umask)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from hamjepa.engine.checkpoint import save_checkpoint


@pytest.fixture(params=[0o022, 0o077])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def test_a_checkpoint_follows_the_umask_like_the_run_files_beside_it(tmp_path: Path, umask: int) -> None:
    path = save_checkpoint({"step": 3, "w": torch.arange(4.0)}, tmp_path / "checkpoints" / "last.pt")
    beside = tmp_path / "metrics.jsonl"
    beside.write_text("{}\n")
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(beside.stat().st_mode) == 0o666 & ~umask
    assert torch.load(path, weights_only=True)["step"] == 3
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_a_failed_save_leaves_the_previous_checkpoint_and_no_temporary_file(tmp_path: Path) -> None:
    path = save_checkpoint({"step": 1}, tmp_path / "last.pt")
    with pytest.raises(Exception, match=r"pickle|Can.t"):
        save_checkpoint({"step": 2, "bad": lambda: None}, path)
    assert torch.load(path, weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
