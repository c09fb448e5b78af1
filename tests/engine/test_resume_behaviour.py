"""``train --resume`` of a finished run, a resume that changes the schedule, and the logged lr (issue 22)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests.engine.helpers import REPO, tiny_overrides, write_tiny_cifar

from hamjepa.cli import main
from hamjepa.engine.schedule import warmup_cosine_lr

pytestmark = pytest.mark.slow  # tiny trainings, a few seconds each on 2 cores

CONFIG = str(REPO / "configs" / "cifar100_sigreg.yaml")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("resume")
    data = write_tiny_cifar(root / "tiny.npz")
    run = root / "run"
    overrides = tiny_overrides(data, **{"train.epochs": 1, "optim.warmup_epochs": 0.5})
    assert main(["train", CONFIG, *overrides, "--run-dir", str(run)]) == 0
    return run


def _rows(run: Path, kind: str) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("kind") == kind]


def test_logged_lr_is_the_rate_the_step_used(finished_run: Path) -> None:
    rows = _rows(finished_run, "train")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]  # 32 images / batch 8, log_every 1
    cfg = yaml.safe_load((finished_run / "config.yaml").read_text())
    base, floor = cfg["optim"]["lr"], cfg["optim"]["lr"] * cfg["optim"]["min_lr_ratio"]
    for row in rows:
        used = warmup_cosine_lr(row["step"] - 1, base_lr=base, floor_lr=floor, warmup_steps=2, total_steps=4)
        assert row["lr"] == pytest.approx(used, rel=1e-12), row


def test_resume_of_a_finished_run_does_nothing(finished_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["train", "--resume", str(finished_run)]) == 0
    out = capsys.readouterr().out
    assert "already finished" in out and "nothing to do" in out
    assert "trained 1 epochs" not in out
    after = {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()}
    assert after == before  # no eval/, no new metrics rows, no new checkpoint


def test_resume_that_changes_the_schedule_needs_the_flag(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "train.epochs=2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert "train.epochs: 1 -> 2" in err and "--replan-schedule" in err
    assert main(["train", "--resume", str(run), "train.epochs=2", "--replan-schedule"]) == 0
    captured = capsys.readouterr()
    assert "re-planned at step 4" in captured.err and "train.epochs: 1 -> 2" in captured.err
    assert "trained 2 epochs (8 steps)" in captured.out
    assert [r["step"] for r in _rows(run, "train")][-1] == 8


def test_replan_flag_needs_resume(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", CONFIG, "--replan-schedule"]) == 2
    assert "only applies with --resume" in capsys.readouterr().err


def test_resume_of_a_folder_that_is_no_run_names_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--resume", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "not a run folder" in err and "configs/" not in err
