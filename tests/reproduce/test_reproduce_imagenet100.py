"""`hamjepa reproduce imagenet100` end to end on real JPEGs (imagenette-mini): a few 224 px steps per method,
evaluation with resize 256 + centre crop 224 (kNN, probe, geometry), and the table beside the paper's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hamjepa.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")


@pytest.mark.realdata
@pytest.mark.slow
def test_reproduce_imagenet100_few_steps_on_imagenette_mini(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "repro"
    argv = [
        "reproduce",
        "imagenet100",
        "--data",
        str(shared_data / "imagenette-mini"),
        "--epochs",
        "1",
        "--seeds",
        "0",
        "--out",
        str(out),
        "--probe-epochs",
        "1",
        "data.subset=8",
        "data.batch_size=4",
        "data.num_workers=0",
        "data.eval_subset=30",
        "data.eval_batch_size=30",
        "optim.warmup_epochs=1",
        "train.progress=false",
        "train.device=cpu",
        "train.tensorboard=false",
        "model.channels_last=false",
        "--k",  # the kNN sweep last: nargs="+" would swallow the overrides
        "1",
        "20",
    ]
    assert main(argv) == 0
    table = json.loads((out / "table.json").read_text())
    assert table["kind"] == "reproduce_imagenet100" and table["epochs"] == 1
    rows = {(r["method"], r["readout"]): r for r in table["rows"]}
    assert set(rows) == {(m, r) for m in ("hamjepa", "sigreg") for r in ("q", "p", "qp")}
    for r in rows.values():
        assert 0.0 <= r["nn20_mean"] <= 100.0 and 0.0 <= r["linear_mean"] <= 100.0
        assert r["paper_nn20"] is None  # the paper's rows are for 45 epochs
    assert table["table_md"].startswith("ImageNet-100, 1 epochs")
    for method in ("hamjepa", "sigreg"):
        metrics = json.loads((out / f"{method}-e1-seed0" / "eval" / "metrics.json").read_text())
        assert metrics["n_train"] == metrics["n_test"] == 30 and metrics["num_classes"] == 10
        dims = {name: block["feature_dim"] for name, block in metrics["readouts"].items()}
        assert dims == {"q": 1024, "p": 1024, "qp": 2048}
        for block in metrics["readouts"].values():
            assert block["geometry"]["spectrum"]["effective_rank"] > 0
