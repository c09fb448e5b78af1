"""A tiny ViT (timm) trains a few steps on real CIFAR-100 with HamJEPA and SIGReg, evaluates, exports, loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.engine.helpers import REPO, tiny_overrides

import hamjepa
from hamjepa.cli import main

pytest.importorskip("timm", reason="the ViT encoder needs timm (pip install hamjepa[vit])")

TINY_VIT = {"model.depth": 2, "model.embed_dim": 48, "model.num_heads": 3}


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "readouts"), [("cifar100_vit_hamjepa", {"q", "p", "qp"}), ("cifar100_vit_sigreg", {"z"})]
)
def test_tiny_vit_trains_evaluates_exports_and_loads(
    config: str, readouts: set[str], tmp_path: Path, cifar100_npz: Path
) -> None:
    run = tmp_path / "run"
    extra = {**TINY_VIT, "train.epochs": 1, "train.max_steps": 3, "data.subset": 64, "data.eval_subset": 200}
    argv = ["train", str(REPO / "configs" / f"{config}.yaml"), *tiny_overrides(cifar100_npz, **extra)]
    assert main([*argv, "--run-dir", str(run)]) == 0
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 3 and state["config"]["model"]["name"] == "vit"
    assert main(["eval", str(run), "--probe-epochs", "1", "--k", "1", "5", "--device", "cpu", "--no-progress"]) == 0
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert set(metrics["readouts"]) == readouts
    assert max(b["feature_dim"] for b in metrics["readouts"].values()) == 2048
    out = tmp_path / "export"
    assert main(["export", str(run), "--out", str(out)]) == 0
    assert (out / "vit_backbone.safetensors").is_file()
    from_run, from_export = hamjepa.load(run, device="cpu"), hamjepa.load(out, device="cpu")
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(from_run.embed(images), from_export.embed(images))
