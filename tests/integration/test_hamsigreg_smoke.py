"""End to end on CPU at toy scale: train with configs/cifar100_hamsigreg.yaml, resume the engine's H-optimiser
from the checkpoint, evaluate with the extra "ham" readout, and run ``hamjepa diagnose toy`` with the sliced view."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from tests.engine.helpers import REPO, tiny_config, tiny_overrides, write_tiny_cifar
from tests.objectives._objectives_testutils import at_step

from hamjepa.cli import main

pytestmark = pytest.mark.slow  # one tiny ResNet-18 training run (4 CPU steps) shared by the module


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("hamsigreg")
    data = write_tiny_cifar(tmp / "tiny.npz", n_train=16)  # batch 8 -> 2 steps per epoch, 4 steps
    run_dir = tmp / "run"
    extra = {"objective.h_update_interval": 2, "objective.h_lr": 0.05, "objective.alpha_ramp_epochs": 2}
    argv = ["train", str(REPO / "configs" / "cifar100_hamsigreg.yaml"), *tiny_overrides(data, **extra)]
    assert main([*argv, "--run-dir", str(run_dir)]) == 0
    return run_dir


def test_training_updates_the_spectrum_and_checkpoints_its_optimizer(run: Path) -> None:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r.get("kind") == "train"]
    assert train and all(math.isfinite(r["loss"]) and "h_penalty" in r and "h_log_cond" in r for r in train)
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 4 and state["objective"]["_extra_state"] == {"epoch": 2}
    aux = state["auxiliary_optimizer"]
    assert [g["name"] for g in aux["param_groups"]] == ["metric"]
    assert [float(aux["state"][i]["step"]) for i in (0, 1)] == [2.0, 2.0]  # updated at steps 0 and 2
    assert state["objective"]["metric.raw_increments"].abs().max() > 0  # the spectrum moved


def test_resume_restores_the_h_optimizer_apart_from_the_main_one(run: Path) -> None:
    from hamjepa.components import load_config
    from hamjepa.engine.trainer import Trainer

    trainer = Trainer(load_config(run / "config.yaml"), run_dir=run, resume=True)
    trainer.load()
    saved = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["auxiliary_optimizer"]
    got = trainer.auxiliary.state_dict()
    assert got is not None and got["param_groups"] == saved["param_groups"]
    for idx, entry in saved["state"].items():
        for key, value in entry.items():
            assert torch.equal(got["state"][idx][key], value)
    raw = {id(p) for p in trainer.objective.metric.raw_parameters()}
    engine_params = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert raw and not raw & engine_params


def test_eval_has_the_ham_readout(run: Path) -> None:
    argv = ["eval", str(run), "--probe-epochs", "1", "--k", "1", "5", "--no-progress", "--device", "cpu"]
    assert main(argv) == 0
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert list(metrics["readouts"]) == ["z", "ham"]
    assert metrics["readouts"]["ham"]["feature_dim"] == metrics["readouts"]["z"]["feature_dim"] == 2048


def test_tiny_config_with_every_fixed_metric_builds(tmp_path: Path) -> None:
    from hamjepa.engine.build import build_model

    data = write_tiny_cifar(tmp_path / "tiny.npz", n_train=8, n_test=8)
    for metric in ("identity", "diag", "chain", "grid"):
        cfg = tiny_config("cifar100_hamsigreg", data, **{"objective.metric": metric})
        _, obj = build_model(cfg)
        z = torch.randn(2, 4, 2048)
        assert math.isfinite(float(at_step(obj, z, 0).loss)), metric


def test_diagnose_toy_writes_the_sliced_view(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    argv = ["diagnose", "toy", "--system", "pendulum", "--grid", "9", "--steps", "20", "--blob", "5"]
    assert main([*argv, "--ensemble", "16", "--samples", "8", "--directions", "8", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())["systems"]["pendulum"]
    assert (out / "pendulum" / "sliced_projections.png").is_file()
    for row in summary["integrators"].values():
        assert row["sliced"]["directions"] == 8 and row["sliced"]["sliced_w1_rel_final"] > 0
