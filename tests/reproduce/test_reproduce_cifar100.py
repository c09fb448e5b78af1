"""`hamjepa reproduce cifar100` end to end at toy scale on a real CIFAR-100 slice (CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hamjepa.cli import main
from hamjepa.reproduce.cifar100 import render_markdown
from hamjepa.reproduce.paper_numbers import paper_reference


def test_paper_reference_rows() -> None:
    assert paper_reference("hamjepa", "q", 30) == (31.45, 33.95)
    assert paper_reference("sigreg", "z", 30) == (26.56, 30.43)
    assert paper_reference("mlp_hjepa", "q", 80) == (28.10, 42.26)
    assert paper_reference("mlp_hjepa", "q", 30) is None


@pytest.mark.realdata
def test_reproduce_toy_scale_on_real_slice(tmp_path: Path, cifar100_npz: Path) -> None:
    out = tmp_path / "repro"
    argv = [
        "reproduce",
        "cifar100",
        "--data",
        str(cifar100_npz),
        "--epochs",
        "1",
        "--seeds",
        "0",
        "--methods",
        "hamjepa",
        "sigreg",
        "--out",
        str(out),
        "--probe-epochs",
        "1",
        "data.subset=32",
        "data.batch_size=8",
        "data.eval_subset=200",
        "optim.warmup_epochs=1",
        "train.progress=false",
        "train.device=cpu",
        "train.tensorboard=false",
        "model.channels_last=false",
    ]
    assert main(argv) == 0
    table = json.loads((out / "table.json").read_text())
    rows = {(r["method"], r["readout"]): r for r in table["rows"]}
    assert set(rows) == {("hamjepa", "q"), ("hamjepa", "p"), ("hamjepa", "qp"), ("sigreg", "z")}
    for r in rows.values():
        assert 0.0 <= r["nn20_mean"] <= 100.0 and 0.0 <= r["linear_mean"] <= 100.0
    md = (out / "table.md").read_text()
    assert md == render_markdown(table) == table["table_md"] and "hamjepa-q" in md and "sigreg-z" in md
    assert table["provenance"]["commit"] and table["provenance"]["device"].startswith("cpu")
    # A second call reuses the finished runs instead of training again.
    before = (out / "hamjepa-e1-seed0" / "checkpoints" / "last.pt").stat().st_mtime_ns
    assert main(argv) == 0
    assert (out / "hamjepa-e1-seed0" / "checkpoints" / "last.pt").stat().st_mtime_ns == before


def test_imagenet100_paper_rows() -> None:
    assert paper_reference("hamjepa", "q", 45, "imagenet100") == (24.92, 31.92)
    assert paper_reference("sigreg", "qp", 45, "imagenet100") == (20.94, 25.54)
    assert paper_reference("sigreg", "q", 30, "imagenet100") is None
