"""The engine owns the optimiser of an objective's auxiliary parameters (HamSIGReg's learnable spectrum): it
builds it from :meth:`Objective.auxiliary_groups`, keeps it apart from the main AdamW, saves it in the
checkpoint, and a resumed run continues bitwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.engine.helpers import tiny_config, write_tiny_cifar
from torch import nn

from hamjepa.engine.auxiliary import AuxiliaryOptimizer
from hamjepa.engine.trainer import Trainer
from hamjepa.errors import CheckpointError
from hamjepa.objectives.base import AuxiliaryGroup, Objective

STEPS = 4


class _WithAux(Objective):
    def __init__(self, group: AuxiliaryGroup) -> None:
        super().__init__()
        self.group = group

    def auxiliary_groups(self) -> list[AuxiliaryGroup]:
        return [self.group]


def _param(requires_grad: bool = False) -> nn.Parameter:
    return nn.Parameter(torch.zeros(3), requires_grad=requires_grad)


@pytest.mark.parametrize(
    ("group", "match"),
    [
        (AuxiliaryGroup("g", (), lr=0.1), "no parameters"),
        (AuxiliaryGroup("g", (_param(True),), lr=0.1), "must not require gradients"),
        (AuxiliaryGroup("g", (_param(),), lr=0.1, update_interval=0), "update_interval"),
        (AuxiliaryGroup("g", (_param(),), lr=0.1, grad_clip=0.0), "grad_clip"),
    ],
)
def test_bad_auxiliary_groups_are_refused(group: AuxiliaryGroup, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AuxiliaryOptimizer(_WithAux(group))


def test_objectives_without_auxiliary_parameters_have_no_auxiliary_optimiser() -> None:
    aux = AuxiliaryOptimizer(Objective())
    assert not aux.active and aux.state_dict() is None
    assert not aux.step(torch.zeros(2, 3, 4), 0)


def _trainer(data: Path, run_dir: Path, max_steps: int, *, resume: bool = False) -> Trainer:
    overrides = {"train.max_steps": max_steps, "train.epochs": 1, "data.batch_size": 4, "model.token_layer": "layer2"}
    cfg = tiny_config("cifar100_hamsigreg", data, **{**overrides, "objective.h_lr": 0.05})
    return Trainer(cfg, run_dir=run_dir, resume=resume)


def _losses(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r["kind"] == "train"]


@pytest.mark.slow
def test_hamsigreg_resume_is_bitwise_and_the_engine_owns_the_h_optimiser(tmp_path: Path) -> None:
    data = write_tiny_cifar(tmp_path / "tiny.npz")
    straight = _trainer(data, tmp_path / "straight", STEPS)
    raw = {id(p) for p in straight.objective.metric.raw_parameters()}
    main = {id(p) for g in straight.optimizer.param_groups for p in g["params"]}
    aux = {id(p) for g in straight.auxiliary.optimizer.param_groups for p in g["params"]}
    assert raw and raw == aux and not raw & main
    straight.fit()

    first = _trainer(data, tmp_path / "resumed", STEPS // 2)
    first.fit()
    saved = torch.load(tmp_path / "resumed" / "checkpoints" / "last.pt", weights_only=True)
    assert float(saved["auxiliary_optimizer"]["state"][0]["step"]) == STEPS // 2
    resumed = _trainer(data, tmp_path / "resumed", STEPS, resume=True)
    resumed.fit()
    assert _losses(tmp_path / "resumed") == _losses(tmp_path / "straight")
    for p, q in zip(resumed.module.state_dict().values(), straight.module.state_dict().values(), strict=True):
        if torch.is_tensor(p):
            assert torch.equal(p, q)
    a, b = resumed.auxiliary.state_dict(), straight.auxiliary.state_dict()
    assert a is not None and b is not None
    for k, entry in b["state"].items():
        for key, value in entry.items():
            assert torch.equal(a["state"][k][key], value)

    # a checkpoint without the auxiliary state (written when the objective kept its own optimiser) is refused
    del saved["auxiliary_optimizer"]
    torch.save(saved, tmp_path / "resumed" / "checkpoints" / "last.pt")
    with pytest.raises(CheckpointError, match="auxiliary optimiser"):
        _trainer(data, tmp_path / "resumed", STEPS, resume=True).load()
