"""VICReg and VISReg end to end on real CIFAR-100 on CPU: a few training steps with the shipped configs
(shrunk: batch 8, layer2 tokens), evaluation, export, and loading the export back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from tests.engine.helpers import tiny_config

import hamjepa
from hamjepa.engine.trainer import Trainer
from hamjepa.evaluation import EvalOptions
from hamjepa.evaluation.cli import evaluate_run
from hamjepa.inference.export import export_run

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

TERMS = {"vicreg": {"invariance", "variance", "covariance"}, "visreg": {"pred", "center", "scale", "shape"}}
TINY = EvalOptions(k_values=(1, 5), probe_epochs=1, cosine_pairs=200, plots=False, progress=False)


@pytest.mark.parametrize("method", sorted(TERMS))
def test_trains_evaluates_exports_and_loads(method: str, tmp_path: Path, cifar100_npz: Path) -> None:
    overrides = {
        "data.subset": 16,  # batch 8 -> 2 steps
        "data.eval_subset": 100,
        "train.epochs": 1,
        "model.token_layer": "layer2",
        "model.token_dim": 8,  # 16 x 16 tokens x 8 channels: D = 2048 as in the full config
    }
    cfg = tiny_config(f"cifar100_{method}", cifar100_npz, **overrides)
    run = tmp_path / "run"
    Trainer(cfg, run_dir=run).fit()

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r.get("kind") == "train"]
    assert [r["step"] for r in train] == [1, 2]
    for row in train:
        assert TERMS[method] | {"total"} <= set(row)
        assert all(math.isfinite(row[t]) for t in TERMS[method])

    torch.manual_seed(0)
    evaluate_run(run, device="cpu", options=TINY)
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert list(metrics["readouts"]) == ["z"] and metrics["readouts"]["z"]["feature_dim"] == 2048
    z_metrics = metrics["readouts"]["z"]
    assert 0.0 <= z_metrics["knn"]["best_top1"] <= 1.0 and 0.0 <= z_metrics["linear_probe"]["top1"] <= 1.0

    exported = export_run(run, tmp_path / "export")
    from_run, from_export = hamjepa.load(run, device="cpu"), hamjepa.load(exported, device="cpu")
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    z = from_run.embed(x)
    assert z.shape == (3, 2048) and torch.equal(from_export.embed(x), z)
