"""``hamjepa reproduce cpu-demo``: trained runs and the untrained encoder under one kNN protocol, in one table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hamjepa.cli import main
from hamjepa.reproduce.cpu_demo import DEMO_K, DemoOptions, demo_config

TINY = ["data.subset=64", "data.eval_subset=100", "data.batch_size=32", "train.epochs=1"]


def test_demo_config_is_the_shipped_config_made_cpu_sized() -> None:
    cfg = demo_config("hamjepa", DemoOptions(data_path="DATA/cifar100.npz", overrides=("train.epochs=2",)))
    assert cfg.objective["name"] == "hamjepa" and cfg.train.device == "cpu"
    assert cfg.data.subset == 20000 and cfg.train.epochs == 2 and not cfg.train.eval_at_end
    assert cfg.model.kwargs["stem"] == "imagenet" and cfg.model.kwargs["token_layer"] == "layer2"
    with pytest.raises(ValueError, match=r"choose from .*hamjepa"):
        demo_config("nope", DemoOptions(data_path="x.npz"))


@pytest.mark.realdata
@pytest.mark.slow
def test_cpu_demo_tabulates_a_trained_run_beside_the_untrained_encoder(tmp_path: Path, cifar100_npz: Path) -> None:
    out = tmp_path / "demo"
    argv = ["reproduce", "cpu-demo", "--data", str(cifar100_npz), "--out", str(out), "--methods", "hamjepa"]
    assert main([*argv, "--no-progress", *TINY]) == 0
    table = json.loads((out / "table.json").read_text())
    assert table["kind"] == "cpu_demo" and table["provenance"]["commit"]
    assert [row["run"] for row in table["rows"]] == ["hamjepa", "random_init"]
    assert table["settings"]["data.subset"] == 64 and table["settings"]["train.epochs"] == 1
    for row in table["rows"]:
        assert set(row["scores"]) == {"q", "p", "qp", "pooled (standard)"}
        for scores in row["scores"].values():
            assert set(scores) == {*(f"knn@{k}" for k in DEMO_K), "linear"}
            assert all(v is None or 0.0 <= v <= 100.0 for v in scores.values())
        # The standard protocol's sweep (10, 20, 100, 200) has kNN@20 but no kNN@50.
        standard = row["scores"]["pooled (standard)"]
        assert standard["knn@20"] is not None and standard["knn@50"] is None
    assert (out / "random_init" / "eval" / "metrics.json").is_file()
    text = (out / "table.md").read_text()
    assert "not the paper's protocol" in text and "untrained encoder (random init)" in text
    assert "| pooled (standard) |" in text and "resnet18_tokens (imagenet stem, layer2 tokens)" in text
    # Finished runs are reused: a second call trains and evaluates nothing.
    assert main([*argv, "--no-progress", *TINY]) == 0
    assert json.loads((out / "table.json").read_text())["timings_s"] == {}
