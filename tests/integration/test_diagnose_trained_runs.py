"""`hamjepa diagnose RUN_DIR` on tiny trained CPU runs: HamJEPA at round-off, MLP-HJEPA clearly not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.engine.helpers import REPO, tiny_overrides, write_tiny_cifar

from hamjepa.cli import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("diag")
    data = write_tiny_cifar(tmp / "tiny.npz", n_train=16, n_test=16)
    out = {}
    for name in ("cifar100_hamjepa", "cifar100_mlp_hjepa"):
        run = tmp / name
        argv = [
            "train",
            str(REPO / "configs" / f"{name}.yaml"),
            *tiny_overrides(data, **{"train.epochs": 1, "optim.warmup_epochs": 0}),
            "--run-dir",
            str(run),
        ]
        assert main(argv) == 0
        out[name] = run
    return out


def _diagnose(run: Path) -> dict:
    argv = ["diagnose", str(run), "--num-states", "8", "--steps", "20", "--probes", "2", "--dense-samples", "0"]
    assert main([*argv, "--rollout-samples", "6", "--directions", "4"]) == 0
    result = json.loads((run / "diagnostics" / "predictor_diagnostics.json").read_text())
    sliced = result["rollout"]["sliced"]  # the sliced view of the rollout of 6 encoded test images
    assert sliced["directions"] == 4 and sliced["steps"] == 20 and len(sliced["curves"]["sliced_w1_rel"]) == 21
    assert (run / "diagnostics" / "sliced_projections.png").is_file()
    return result


def test_hamiltonian_predictor_is_symplectic_and_exactly_invertible(runs: dict[str, Path]) -> None:
    result = _diagnose(runs["cifar100_hamjepa"])
    assert result["dim"] == 2048 and result["predictor"] == "HamiltonianPredictor"
    assert result["symplecticity"]["relative_defect"]["max"] < 1e-10
    assert result["reconstruction"]["relative_error"]["max"] < 1e-10


def test_mlp_predictor_is_not(runs: dict[str, Path]) -> None:
    result = _diagnose(runs["cifar100_mlp_hjepa"])
    assert result["predictor"] == "MLPPredictor"
    assert result["symplecticity"]["relative_defect"]["median"] > 1e-6
    assert result["reconstruction"]["relative_error"]["median"] > 1e-8
