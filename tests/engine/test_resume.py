"""Exact resume: a run killed with SIGKILL mid-epoch and resumed ends bitwise equal to an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from tests.engine.helpers import REPO, tiny_overrides, write_tiny_cifar

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}


def _train_cmd(run_dir: Path, data: Path) -> list[str]:
    overrides = tiny_overrides(data, **{"train.epochs": 3, "train.checkpoint_every_steps": 1})
    return [
        sys.executable,
        "-m",
        "hamjepa",
        "train",
        str(REPO / "configs" / "cifar100_hamjepa.yaml"),
        *overrides,
        "--run-dir",
        str(run_dir),
    ]


def _last_step(metrics: Path) -> int:
    if not metrics.exists():
        return 0
    steps = [json.loads(line).get("step", 0) for line in metrics.read_text().splitlines() if line.strip()]
    return max(steps, default=0)


def test_sigkill_mid_epoch_then_resume_is_bitwise_identical(tmp_path: Path) -> None:
    data = write_tiny_cifar(tmp_path / "tiny.npz")  # 32 images, batch 8 -> 4 steps per epoch, 12 steps
    ref_dir, killed_dir = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(_train_cmd(ref_dir, data), check=True, env=ENV, capture_output=True, timeout=600)

    proc = subprocess.Popen(_train_cmd(killed_dir, data), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while _last_step(killed_dir / "metrics.jsonl") < 6 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = torch.load(killed_dir / "checkpoints" / "last.pt", weights_only=True)
    assert partial["step"] < 12, "the kill must land before the end of the run"

    subprocess.run(
        [sys.executable, "-m", "hamjepa", "train", "--resume", str(killed_dir)],
        check=True,
        env=ENV,
        capture_output=True,
        timeout=600,
    )
    ref = torch.load(ref_dir / "checkpoints" / "last.pt", weights_only=True)
    got = torch.load(killed_dir / "checkpoints" / "last.pt", weights_only=True)
    assert got["step"] == ref["step"] == 12 and got["epoch"] == ref["epoch"] == 3
    for part in ("encoder", "objective"):
        assert ref[part].keys() == got[part].keys()
        for name, tensor in ref[part].items():
            assert torch.equal(tensor, got[part][name]), f"{part}.{name} differs after resume"
    ref_state, got_state = ref["optimizer"]["state"], got["optimizer"]["state"]
    for idx, entry in ref_state.items():
        assert torch.equal(entry["exp_avg"], got_state[idx]["exp_avg"])
