"""The engine owns the optimiser of an objective's auxiliary parameters (HamSIGReg's learnable spectrum): it
builds it from :meth:`Objective.auxiliary_groups`, keeps it apart from the main AdamW, saves it in the
checkpoint, and a resumed run continues bitwise."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from tests.engine.helpers import tiny_config, write_tiny_cifar
from tests.objectives._objectives_testutils import at_step
from torch import nn

from hamjepa.engine.auxiliary import AuxiliaryOptimizer
from hamjepa.engine.module import JEPAModule
from hamjepa.engine.schedule import WarmupCosineSchedule
from hamjepa.engine.step import TrainStep
from hamjepa.engine.trainer import Trainer
from hamjepa.errors import CheckpointError
from hamjepa.objectives import HamSIGRegObjective
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


def _toy_step(objective: HamSIGRegObjective):
    """A float64 TrainStep on a linear encoder of 4x4 images into the objective's 32 dims."""
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 32)).double()
    module = JEPAModule(encoder, objective, channels_last=False, amp_dtype=None)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-2, foreach=False)
    for group in optimizer.param_groups:
        group["base_lr"] = group["lr"]
    scheduler = WarmupCosineSchedule(optimizer, warmup_steps=0, total_steps=10, floor_lr=0.0)
    aux = AuxiliaryOptimizer(objective, default_lr=0.05)
    step = TrainStep(module, module, optimizer, scheduler, clip_params=[], clip_grad_norm=None, auxiliary=aux)
    return step, encoder, aux


def test_h_is_stepped_after_the_encoder_with_fresh_directions() -> None:
    """Spec E.4.1's order in float64: the step's loss uses the H it started with; then the encoder steps; then H
    takes one AdamW step on the same (pre-update) embeddings, with the H step's own directions."""

    def objective() -> HamSIGRegObjective:
        kw = {"metric": "learnable", "token_channels": 2, "num_slices": 8, "num_bins": 4, "init_span": 0.05}
        return HamSIGRegObjective(32, alpha=3.0, **kw).double()

    views = torch.rand(2, 6, 3, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    train_step, encoder, _ = _toy_step(objective())
    ref_obj = objective()
    ref_encoder = copy.deepcopy(encoder)
    z0 = ref_encoder(views.reshape(12, 3, 4, 4)).reshape(2, 6, 32).detach()

    out = train_step(views, 0)
    assert torch.equal(out.loss, at_step(ref_obj, z0, 0).loss)  # H frozen at its start during the encoder step
    assert not torch.equal(encoder[1].weight, ref_encoder[1].weight)  # the encoder stepped
    ref_aux = AuxiliaryOptimizer(ref_obj, default_lr=0.05)
    assert ref_aux.step(z0, 0)  # H's step on the pre-update embeddings
    for p, q in zip(train_step.module.objective.metric.raw_parameters(), ref_obj.metric.raw_parameters(), strict=True):
        assert torch.equal(p, q)
    # ... with the fresh directions: the encoder step's directions would have given another spectrum
    same_dirs = objective()
    same_dirs.h_sigreg = same_dirs.sigreg
    AuxiliaryOptimizer(same_dirs, default_lr=0.05).step(z0, 0)
    assert not torch.equal(same_dirs.metric.raw_span, ref_obj.metric.raw_span)
    # the old order (H first, then the loss) gives another loss at step 0
    assert not torch.equal(out.loss, at_step(ref_obj, z0, 0).loss)
