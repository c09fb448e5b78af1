"""Trainer behaviour: non-finite loss handling, parameter groups, the online monitor, and the benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.engine.helpers import tiny_config, write_tiny_cifar

from hamjepa.engine.bench import benchmark_training
from hamjepa.engine.nonfinite import NonFiniteLossError
from hamjepa.engine.trainer import Trainer
from hamjepa.evaluation.callbacks import callbacks_from_config
from hamjepa.objectives.base import ObjectiveOutput, StepContext


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_cifar(tmp_path_factory.mktemp("data") / "tiny.npz")


def test_non_finite_loss_stops_with_step_and_terms_and_keeps_last_good_checkpoint(
    tmp_path: Path, tiny_data: Path
) -> None:
    cfg = tiny_config("cifar100_hamjepa", tiny_data, **{"train.epochs": 2, "train.log_every": 2})
    trainer = Trainer(cfg, run_dir=tmp_path / "run")
    original = trainer.objective.forward

    def poisoned(z: torch.Tensor, ctx: StepContext, z_target: torch.Tensor | None = None) -> ObjectiveOutput:
        out, step = original(z, ctx, z_target), ctx.step
        if step == 5:  # the 6th optimiser step (epoch 2, batch 2)
            return ObjectiveOutput(out.loss * float("nan"), {**out.terms, "pred": out.terms["pred"] * float("inf")})
        return out

    trainer.objective.forward = poisoned  # type: ignore[method-assign]
    with pytest.raises(NonFiniteLossError, match=r"step 6 \(epoch 2\).*pred=inf") as exc:
        trainer.fit()
    assert "The last good checkpoint is" in str(exc.value) and "last.pt (epoch 1, step 4)" in str(exc.value)
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and state["step"] == 4  # the end of epoch 1, not the poisoned state
    assert all(torch.isfinite(t).all() for t in state["encoder"].values() if t.is_floating_point())
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["kind"] == "error" and rows[-1]["step"] == 6


def test_non_finite_loss_in_the_first_epoch_says_that_nothing_was_saved(tmp_path: Path, tiny_data: Path) -> None:
    cfg = tiny_config("cifar100_sigreg", tiny_data, **{"train.epochs": 2, "train.log_every": 2})
    trainer = Trainer(cfg, run_dir=tmp_path / "run")
    original = trainer.objective.forward

    def poisoned(z: torch.Tensor, ctx: StepContext, z_target: torch.Tensor | None = None) -> ObjectiveOutput:
        out, step = original(z, ctx, z_target), ctx.step
        return ObjectiveOutput(out.loss * float("nan"), out.terms) if step == 0 else out

    trainer.objective.forward = poisoned  # type: ignore[method-assign]
    with pytest.raises(NonFiniteLossError, match=r"step 1 \(epoch 1\)") as exc:
        trainer.fit()
    message = str(exc.value)
    assert "No checkpoint was saved" in message and "last good checkpoint" not in message
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_predictor_gets_its_own_lr_group_and_clipping_choice(tmp_path: Path, tiny_data: Path) -> None:
    cfg = tiny_config("cifar100_hamjepa", tiny_data, **{"optim.predictor_lr": 5e-5, "optim.clip_predictor": False})
    trainer = Trainer(cfg, run_dir=tmp_path / "run")
    groups = {g["name"]: g for g in trainer.optimizer.param_groups}
    assert set(groups) == {"main", "predictor"}
    pred_params = {id(p) for p in trainer.objective.predictor.parameters()}
    assert {id(p) for p in groups["predictor"]["params"]} == pred_params
    assert groups["predictor"]["base_lr"] == 5e-5 and groups["main"]["base_lr"] == cfg.optim.lr
    assert not pred_params & {id(p) for p in trainer.clip_params}
    # Residual-scale warm-up (docs/spec.md §C.4): s * min(1, e / 10) at the start of each epoch.
    trainer.objective.on_epoch_start(3)
    assert trainer.objective.predictor.residual_scale == pytest.approx(0.02 * 3 / 10)


def test_online_monitor_logs_knn_every_n_epochs(tmp_path: Path, tiny_data: Path) -> None:
    cfg = tiny_config(
        "cifar100_sigreg",
        tiny_data,
        **{"train.epochs": 2, "train.monitor_every": 1, "train.monitor_train_size": 16, "train.monitor_test_size": 8},
    )
    Trainer(cfg, run_dir=tmp_path / "run", callbacks=callbacks_from_config(cfg)).fit()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    monitor = [r for r in rows if r["kind"] == "monitor"]
    assert [r["epoch"] for r in monitor] == [1, 2]
    assert all(0.0 <= r["knn_top1"] <= 1.0 for r in monitor)


def test_monitor_config_without_its_callback_warns_instead_of_skipping(tmp_path: Path, tiny_data: Path) -> None:
    cfg = tiny_config(
        "cifar100_sigreg", tiny_data, **{"train.epochs": 1, "train.max_steps": 1, "train.monitor_every": 1}
    )
    with pytest.warns(UserWarning, match="callbacks_from_config"):
        Trainer(cfg, run_dir=tmp_path / "run").fit()


def test_bench_reports_throughput_and_encoder_floor(tiny_data: Path) -> None:
    cfg = tiny_config("cifar100_hamjepa", tiny_data)
    result = benchmark_training(cfg, steps=2, warmup=1)
    assert result["views_per_step"] == 16 and result["steps_per_epoch"] == 4
    assert result["step_s_median"] > 0 and result["views_per_s"] == pytest.approx(16 / result["step_s_median"])
    assert result["s_per_epoch"] == pytest.approx(4 * result["step_s_median"])
    assert result["ratio_to_encoder_floor"] == pytest.approx(result["step_s_median"] / result["encoder_step_s_median"])


def test_bijepa_runs_through_the_engine_with_an_ema_target(tmp_path: Path, tiny_data: Path) -> None:
    cfg = tiny_config("cifar100_bijepa", tiny_data, **{"train.epochs": 1, "objective.momentum": 0.5})
    trainer = Trainer(cfg, run_dir=tmp_path / "run")
    assert trainer.target_encoder is not None
    initial = {k: v.clone() for k, v in trainer.target_encoder.state_dict().items()}
    trainer.fit()
    online = trainer.encoder.state_dict()
    target = trainer.target_encoder.state_dict()
    moved = [k for k, v in target.items() if v.is_floating_point() and not torch.equal(v, initial[k])]
    assert moved, "the EMA target never moved"
    conv = "backbone.conv1.weight"
    assert not torch.equal(target[conv], online[conv])  # momentum 0.5: between init and online, not equal
    assert not any(p.requires_grad for p in trainer.target_encoder.parameters())
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    torch.testing.assert_close(state["target_encoder"][conv], target[conv])


def test_local_views_of_another_size_are_encoded_and_stacked_after_the_global_ones(
    tmp_path: Path, tiny_data: Path
) -> None:
    cfg = tiny_config("cifar100_sigreg", tiny_data, **{"data.local_views": 2, "objective.num_global_views": 2})
    trainer = Trainer(cfg, run_dir=tmp_path / "run")
    trainer.stream.set_epoch(1)
    views, labels = next(iter(trainer.stream))
    groups = views if isinstance(views, list) else [views]
    z = trainer.module.embed(views)
    assert z.shape == (sum(g.shape[0] for g in groups), labels.shape[0], 2048) and z.shape[0] == 4
    out = trainer.train_step(views, trainer.step)
    assert torch.isfinite(out.loss) and set(out.terms) >= {"pred", "sigreg"}
