"""Host-dispatched ATen ops of one objective forward + backward (what a GPU step pays ~5-10 us each for).

Usage: python benchmarks/bench_objective_ops.py [--config configs/cifar100_hamjepa.yaml] [key=value ...]
       [--batch N] [--out benchmarks/results/host_ops_cpu_COMMIT.json]

Builds the config's objective (with its predictor) exactly as training does, switches the residual-scale
warm-up to epoch 1 (so the MLP force is live), runs one warm-up call (it draws the log-det projections),
then profiles one step's draws and forward (``objective(z, objective.draw(1, z_shape, device))``, what eager
training runs) and one backward (``loss.backward()``) on CPU with
``torch.profiler`` and counts the *top-level* ``aten::`` ops: those with no ``aten::`` op above them (what
the Python/C++ dispatcher issues, i.e. one host dispatch each; ops nested inside another op are not
counted). The count does not depend on the batch size. ``z`` is a seeded Gaussian ``[V, B, D]``.
Also reports whether any host-synchronising op (``aten::item``, ``aten::_local_scalar_dense``) ran.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from hamjepa.components import load_config
from hamjepa.engine.build import build_model
from hamjepa.provenance import provenance, write_result

ROOT = Path(__file__).resolve().parents[1]
SYNC_OPS = ("aten::item", "aten::_local_scalar_dense")


def _has_aten_ancestor(event: Any) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::"):
            return True
        parent = parent.cpu_parent
    return False


def top_level_aten_ops(prof: profile) -> Counter[str]:
    """Counts of the ``aten::`` events of ``prof`` that have no ``aten::`` ancestor."""
    return Counter(e.name for e in prof.events() if e.name.startswith("aten::") and not _has_aten_ancestor(e))


def all_aten_ops(prof: profile) -> Counter[str]:
    """Counts of every ``aten::`` event of ``prof`` (nested ones included)."""
    return Counter(e.name for e in prof.events() if e.name.startswith("aten::"))


def measure(config: Path, overrides: list[str], batch: int | None) -> dict[str, Any]:
    """Top-level op counts of one forward and one backward of the config's objective (CPU, float32)."""
    cfg = load_config(config, overrides)
    torch.manual_seed(cfg.seed)
    encoder, objective = build_model(cfg)
    dim = encoder.output_dim(cfg.data.image_size)
    objective.on_epoch_start(1)
    views = cfg.data.global_views + cfg.data.local_views
    b = batch or cfg.data.batch_size
    z = torch.randn(views, b, dim, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    objective(z, objective.draw(0, tuple(z.shape), z.device)).loss.backward()  # warm-up: first-call work
    # (the projection draw) is not counted
    objective.zero_grad(set_to_none=True)
    z.grad = None
    with profile(activities=[ProfilerActivity.CPU]) as fwd:
        out = objective(z, objective.draw(1, tuple(z.shape), z.device))
    with profile(activities=[ProfilerActivity.CPU]) as bwd:
        out.loss.backward()
    counts = {"forward": top_level_aten_ops(fwd), "backward": top_level_aten_ops(bwd)}
    every = all_aten_ops(fwd) + all_aten_ops(bwd)
    return {
        "kind": "host_ops",
        "config": str(config),
        "overrides": overrides,
        "batch": b,
        "views": views,
        "dim": dim,
        "forward": sum(counts["forward"].values()),
        "backward": sum(counts["backward"].values()),
        "total": sum(counts["forward"].values()) + sum(counts["backward"].values()),
        "sync_ops": {name: every[name] for name in SYNC_OPS if every[name]},
        "top_ops": {part: dict(counter.most_common(12)) for part, counter in counts.items()},
        "provenance": provenance("cpu"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "cifar100_hamjepa.yaml")
    ap.add_argument("--batch", type=int, default=None, help="per-view batch (default: the config's)")
    ap.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    ap.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. predictor.force=autograd")
    args = ap.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    result = measure(args.config, args.overrides, args.batch)
    print(
        f"objective host ops (top-level aten, CPU): forward {result['forward']}, backward {result['backward']}, "
        f"total {result['total']}; sync ops: {result['sync_ops'] or 'none'} "
        f"[{' '.join(args.overrides) or 'config defaults'}; commit {result['provenance']['commit']}]"
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_result(args.out, result)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
