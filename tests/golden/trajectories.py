"""Float64 20-step training trajectories of every objective on real CIFAR-100 (the "numbers unchanged" proof).

:func:`record` trains each case below for :data:`STEPS` optimiser steps in float64 (tokens from layer2, batch
4, real CIFAR-100 images) and returns every logged loss term at every step plus, for every tensor of the
final encoder and objective state, its sum and its sum of squares. ``golden_trajectories.json`` beside this
file is that record, made at the commit named in it; ``test_golden_trajectories.py`` trains again and
compares to 1e-12. Regenerate only for a deliberate change of the maths (say which in the commit), and only
the cases it changes (``--case``, repeatable: the other cases stay byte-identical; a regenerated case records
the commit it was made at):

    python -m tests.golden.trajectories ../shared/data/cifar100                 # rewrites every case
    python -m tests.golden.trajectories ../shared/data/cifar100 --case NAME     # rewrites case NAME only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

STEPS = 20
GOLDEN = Path(__file__).with_name("golden_trajectories.json")

CASES: dict[str, tuple[str, dict[str, object]]] = {
    "hamjepa": ("cifar100_hamjepa", {"objective.residual_scale_warmup_epochs": 0}),
    "sigreg": ("cifar100_sigreg", {}),
    "mlp_hjepa": ("cifar100_mlp_hjepa", {}),
    "bijepa": ("cifar100_bijepa", {}),
    "hamsigreg_grid": ("cifar100_hamsigreg", {"objective.metric": "grid"}),
    "hamsigreg_learnable": ("cifar100_hamsigreg", {}),
}
"""Case name -> (shipped config, extra overrides)."""


def _overrides(extra: dict[str, object]) -> dict[str, object]:
    return {
        "train.epochs": 1,
        "train.max_steps": STEPS,
        "data.subset": 4 * STEPS,
        "data.batch_size": 4,
        "model.token_layer": "layer2",
        "train.precision": "fp64",
        "train.checkpoint_every": 1,
        **extra,
    }


def run_case(name: str, data: Path, run_dir: Path) -> dict[str, Any]:
    """Train case ``name`` on the packed CIFAR-100 ``data`` into ``run_dir``; its trajectory record."""
    from tests.engine.helpers import tiny_config

    from hamjepa.engine.trainer import Trainer

    config, extra = CASES[name]
    Trainer(tiny_config(config, data, **_overrides(extra)), run_dir=run_dir).fit()
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [row for row in rows if row.get("kind") == "train"]
    assert [row["step"] for row in train] == list(range(1, STEPS + 1)), "expected one train row per step"
    skip = {"kind", "step", "epoch", "lr", "images_per_s", "time", "elapsed_s", "s_per_step"}
    terms = sorted({k for row in train for k, v in row.items() if k not in skip and isinstance(v, (int, float))})
    state = torch.load(run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    params: dict[str, list[float]] = {}
    for part in ("encoder", "objective"):
        for key, value in state[part].items():
            if torch.is_tensor(value) and value.is_floating_point():
                v = value.detach().double()
                params[f"{part}.{key}"] = [v.sum().item(), (v * v).sum().item()]
    return {
        "terms": {t: [row.get(t) for row in train] for t in terms},
        "params": params,
    }


def _commit() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def record(data: Path) -> dict[str, Any]:
    """Every case's record, keyed by case name, plus the commit it was made at."""
    out: dict[str, Any] = {"commit": _commit(), "steps": STEPS, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            out["cases"][name] = run_case(name, data, Path(tmp) / name)
    return out


def rerecord(data: Path, names: list[str]) -> dict[str, Any]:
    """The committed record with only the cases ``names`` made again (each noting its own commit)."""
    out = json.loads(GOLDEN.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            out["cases"][name] = {**run_case(name, data, Path(tmp) / name), "commit": _commit()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Record the float64 golden trajectories.")
    parser.add_argument("cifar100", type=Path, help="the CIFAR-100 folder with unpack.py (../shared/data/cifar100)")
    parser.add_argument("--case", action="append", choices=list(CASES), help="regenerate only this case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "cifar100.npz"
        src = args.cifar100
        subprocess.run([sys.executable, str(src / "unpack.py"), str(npz), "--src", str(src)], check=True)
        result = rerecord(npz, args.case) if args.case else record(npz)
        GOLDEN.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
