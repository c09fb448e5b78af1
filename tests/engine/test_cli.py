"""The command line: help texts, one-line errors for bad inputs, and a tiny real-data train + eval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from tests.engine.helpers import REPO, tiny_overrides, write_tiny_cifar

from hamjepa.cli import build_parser, main

SUBCOMMANDS = ["train", "eval", "compare", "bench", "data", "diagnose", "theory", "reproduce"]


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in text
    sub = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in SUBCOMMANDS:
        with pytest.raises(SystemExit) as exc:
            sub[name].parse_args(["--help"])
        assert exc.value.code == 0
        assert len(capsys.readouterr().out.splitlines()) > 3


def _one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str], needle: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err, err
    assert needle in err, err
    return err


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("cli")
    data = write_tiny_cifar(tmp / "tiny.npz")
    run = tmp / "run"
    argv = [
        "train",
        str(REPO / "configs" / "cifar100_hamjepa.yaml"),
        *tiny_overrides(data, **{"train.epochs": 1}),
        "--run-dir",
        str(run),
    ]
    assert main(argv) == 0
    return run


def test_train_writes_run_directory(trained_run: Path) -> None:
    assert (trained_run / "config.yaml").is_file()
    rows = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
    assert all(set(r) >= {"loss", "pred", "budget", "logdet", "lr", "images_per_s"} for r in train_rows)
    state = torch.load(trained_run / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and state["step"] == 4 and state["epoch_complete"]


def test_bad_inputs_give_one_clear_line(tmp_path: Path, trained_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(REPO / "configs" / "cifar100_hamjepa.yaml")
    _one_error_line(capsys, ["train", cfg, "train.epoch=2"], "Did you mean 'epochs'")
    _one_error_line(capsys, ["train", cfg, "data.path=/nonexistent/cifar.npz", "train.device=cpu"], "/nonexistent")

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((trained_run / "checkpoints" / "last.pt").read_bytes()[:5000])
    _one_error_line(capsys, ["eval", str(truncated)], "truncated or corrupt")

    pickled = tmp_path / "pickled.pt"
    torch.save({"encoder": {}, "config": {}, "evil": Path("x")}, pickled)
    _one_error_line(capsys, ["eval", str(pickled)], "refused for safety")

    # A checkpoint of another config: SIGReg weights (no split, no predictor) under a HamJEPA config.
    state = torch.load(trained_run / "checkpoints" / "last.pt", weights_only=True)
    state["objective"] = {"unexpected": torch.zeros(1)}
    foreign = tmp_path / "foreign.pt"
    torch.save(state, foreign)
    _one_error_line(capsys, ["eval", str(foreign)], "another config")

    _one_error_line(capsys, ["eval", str(tmp_path / "nope")], "does not exist")


def test_resume_refuses_a_different_config(trained_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(REPO / "configs" / "cifar100_sigreg.yaml")
    data = yaml.safe_load((trained_run / "config.yaml").read_text())["data"]["path"]
    _one_error_line(capsys, ["train", cfg, f"data.path={data}", "--resume", str(trained_run)], "another config")


@pytest.mark.realdata
def test_real_cifar_slice_trains_and_evaluates(tmp_path: Path, cifar100_npz: Path) -> None:
    run = tmp_path / "real"
    argv = [
        "train",
        str(REPO / "configs" / "cifar100_hamjepa.yaml"),
        *tiny_overrides(cifar100_npz, **{"train.epochs": 1, "data.subset": 32, "data.eval_subset": 200}),
        "--run-dir",
        str(run),
    ]
    assert main(argv) == 0
    assert main(["eval", str(run), "--probe-epochs", "2", "--device", "cpu", "--no-progress"]) == 0
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert set(metrics["readouts"]) == {"q", "p", "qp"}
    for block in metrics["readouts"].values():
        assert 0.0 <= block["knn"]["nn20"] <= 1.0 and 0.0 <= block["linear_probe"]["top1"] <= 1.0
    assert (run / "eval" / "report.md").is_file()
    assert (run / "eval" / "plots" / "summary_q.png").stat().st_size > 10_000


@pytest.mark.realdata
def test_real_imagefolder_imagenet_config_trains_and_evaluates(tmp_path: Path, shared_data: Path) -> None:
    folder = shared_data / "imagenette-mini"
    if not (folder / "train").is_dir():
        pytest.skip(f"{folder} not found")
    run = tmp_path / "inet"
    overrides = tiny_overrides(
        folder,
        **{
            "data.batch_size": 4,
            "data.subset": 8,
            "data.eval_subset": 10,
            "data.num_workers": 0,
            "train.max_steps": 2,
            "train.epochs": 1,
        },
    )
    argv = ["train", str(REPO / "configs" / "imagenet100_hamjepa.yaml"), *overrides, "--run-dir", str(run)]
    assert main(argv) == 0
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 2
    assert main(["eval", str(run), "--probe-epochs", "1", "--k", "1", "5", "--device", "cpu", "--no-progress"]) == 0
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["readouts"]["q"]["feature_dim"] == 1024 and metrics["num_classes"] == 10
