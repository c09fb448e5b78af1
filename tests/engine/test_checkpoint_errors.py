"""Bad checkpoint files get one line that says what is wrong with them (issue 17, item 2)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from hamjepa.engine.checkpoint import load_checkpoint
from hamjepa.errors import CheckpointError


def _error(path: Path) -> str:
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    message = str(exc.value)
    assert "\n" not in message and message.startswith("checkpoint: ")
    return message


def _real_checkpoint(path: Path) -> Path:
    torch.save({"encoder": {"w": torch.ones(64, 64)}, "config": {"seed": 1}}, path)
    return path


def test_a_real_checkpoint_loads(tmp_path: Path) -> None:
    state = load_checkpoint(_real_checkpoint(tmp_path / "good.pt"))
    assert state["config"] == {"seed": 1}


def test_random_bytes_are_not_a_checkpoint_rather_than_unsafe(tmp_path: Path) -> None:
    path = tmp_path / "random.pt"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    message = _error(path)
    assert "not a PyTorch checkpoint" in message
    assert "safety" not in message


def test_text_and_empty_files_are_named_as_such(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("hello, not a checkpoint\n")
    assert "not a PyTorch checkpoint" in _error(text)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    assert "is empty" in _error(empty)


def test_a_truncated_checkpoint_is_reported_as_truncated(tmp_path: Path) -> None:
    data = _real_checkpoint(tmp_path / "good.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    message = _error(truncated)
    assert "truncated or corrupt" in message and "safety" not in message


class Foreign:
    """A class the safe unpickler does not allow."""


def test_a_pickle_with_foreign_objects_is_refused_for_safety_and_names_the_object(tmp_path: Path) -> None:
    path = tmp_path / "foreign.pt"
    torch.save({"encoder": {}, "config": {}, "evil": Foreign()}, path)
    message = _error(path)
    assert "refused for safety" in message and "Foreign" in message
    legacy = tmp_path / "legacy.pt"
    with open(legacy, "wb") as fh:
        pickle.dump({"encoder": {}, "config": {}, "evil": Path("x")}, fh, protocol=2)
    assert "refused for safety" in _error(legacy)
