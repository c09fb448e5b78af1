"""One training step on 2 gloo ranks x B/2 equals one step on 1 rank x B (loss and gradients).

Run in float64 (``train.precision=fp64``) so that the comparison is exact up to round-off: in float32 the
differently ordered reductions leave ~2-7e-4 relative noise in a ResNet's gradient, while a missing
all-reduce (e.g. per-rank BatchNorm statistics) changes it by O(1) (0.62 measured).
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from tests.engine.helpers import tiny_config, write_tiny_cifar
from tests.ranks import run_on_ranks

# VICReg with a small expander: its BatchNorm layers (in the objective) are synchronised like the encoder's.
EXTRA: dict[str, dict[str, object]] = {"cifar100_vicreg": {"objective.expander_widths": "[16,16,8]"}}


def _one_step(data: Path, run_dir: Path, objective: str) -> dict[str, torch.Tensor]:
    from hamjepa.engine.trainer import Trainer

    torch.set_num_threads(1)
    cfg = tiny_config(objective, data, **{"train.precision": "fp64", **EXTRA.get(objective, {})})
    trainer = Trainer(cfg, run_dir=run_dir)
    trainer.stream.set_epoch(1)
    views, _ = next(iter(trainer.stream))
    loss = trainer.train_step(views, trainer.step).loss
    named = [
        *(("encoder." + n, p) for n, p in trainer.encoder.named_parameters()),
        *(("objective." + n, p) for n, p in trainer.objective.named_parameters()),
    ]
    # A parameter that gets no gradient (the potential MLP's output bias) counts as a zero gradient.
    grads = {n: torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for n, p in named}
    grads["loss"] = loss.detach().clone()
    return grads


def _rank_step(data: Path, out: Path, objective: str, rank: int, world: int) -> dict[str, torch.Tensor]:
    return _one_step(data, out / f"rank{rank}", objective)


@pytest.mark.parametrize("objective", ["cifar100_hamjepa", "cifar100_sigreg", "cifar100_vicreg"])
def test_two_ranks_half_batch_equal_one_rank_full_batch(tmp_path: Path, objective: str) -> None:
    data = write_tiny_cifar(tmp_path / "tiny.npz")
    single = _one_step(data, tmp_path / "single", objective)
    multi = run_on_ranks(functools.partial(_rank_step, data, tmp_path, objective), tmp_path, world=2)[0]
    assert multi.keys() == single.keys()
    torch.testing.assert_close(multi["loss"], single["loss"], rtol=1e-12, atol=1e-12)
    scale = max(float(g.abs().max()) for g in single.values())
    for name, g in single.items():
        # Relative to the parameter's own gradient, floored at 1e-6 of the largest one: some gradients are
        # analytically zero (round-off only), e.g. the token BatchNorm bias under the mean penalty.
        err = float((multi[name] - g).abs().max()) / max(float(g.abs().max()), 1e-6 * scale)
        assert err < 1e-9, f"{name}: relative gradient difference {err:.2e}"
