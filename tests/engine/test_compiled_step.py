"""``train.step=compiled``: one graph (fullgraph), same training as eager, and no host syncs in a step
(the eager step's only host reads are torch's CPU AdamW's own, see below).

The compiled step is traced with the ``aot_eager`` backend here: ``fullgraph=True`` still fails on any graph
break, but no code is generated (inductor would take minutes on a small shared CPU).

The eager/compiled comparison runs in float64: at these tiny batches (log-det floor at ``k = n - 1``) HamJEPA's
training amplifies float32 rounding differences about tenfold per step (measured: 1e-6 at step 2, 0.3 by step
9), so only a float64 run can show that both modes compute the same training over 20 steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.engine.helpers import tiny_config, write_tiny_cifar

from hamjepa.config import ConfigError
from hamjepa.engine import compiled_step
from hamjepa.engine.compiled_step import CompiledTrainStep
from hamjepa.engine.profiling import profile_steps
from hamjepa.engine.trainer import Trainer

STEPS = 20


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_cifar(tmp_path_factory.mktemp("data") / "tiny.npz")


def _losses(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r["kind"] == "train"]


def _fit(name: str, data: Path, run_dir: Path, step_mode: str) -> Trainer:
    overrides = {
        "train.step": step_mode,
        "train.max_steps": STEPS,
        "train.epochs": 3,
        "train.precision": "fp64",
        "data.batch_size": 4,
    }
    cfg = tiny_config(name, data, **overrides)
    trainer = Trainer(cfg, run_dir=run_dir)
    trainer.fit()
    return trainer


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> dict[str, tuple[Trainer, Trainer]]:
    """HamJEPA and LeJEPA trained 20 steps (2.5 epochs of 8 batches) eager and compiled (aot_eager backend)."""
    out = {}
    patch = pytest.MonkeyPatch()
    patch.setattr(compiled_step, "DEFAULT_BACKEND", "aot_eager")
    try:
        for name in ("cifar100_hamjepa", "cifar100_sigreg"):
            root = tmp_path_factory.mktemp(name)
            eager = _fit(name, tiny_data, root / "eager", "eager")
            compiled = _fit(name, tiny_data, root / "compiled", "compiled")
            out[name] = (eager, compiled)
    finally:
        patch.undo()
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cifar100_hamjepa", "cifar100_sigreg"])
def test_compiled_step_is_one_graph_and_trains_like_eager(runs: dict, name: str) -> None:
    eager, compiled = runs[name]
    assert isinstance(compiled.train_step, CompiledTrainStep)
    # fullgraph=True raised on any graph break; the step ran as a compiled region
    assert compiled.train_step.term_names == eager.meter.names == compiled.meter.names
    want, got = _losses(eager.run_dir), _losses(compiled.run_dir)
    assert len(want) == len(got) == STEPS
    assert max(abs(a - b) for a, b in zip(want, got, strict=True)) < 1e-5
    # same optimiser state format and values (checkpoints are interchangeable)
    for p, q in zip(eager.module.parameters(), compiled.module.parameters(), strict=True):
        assert q.dtype == p.dtype and q.shape == p.shape
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-6)
    s_e = eager.optimizer.state_dict()["state"]
    s_c = compiled.optimizer.state_dict()["state"]
    # torch's AdamW makes a parameter's state at its first gradient; the compiled step makes (zero) state for
    # every parameter before tracing. A parameter that never got a gradient keeps it at zero.
    assert s_e.keys() <= s_c.keys()
    for k in s_c.keys() - s_e.keys():
        assert float(s_c[k]["step"]) == 0.0 and not s_c[k]["exp_avg"].any() and not s_c[k]["exp_avg_sq"].any()
    steps = [(float(s_e[k]["step"]), float(s_c[k]["step"])) for k in s_e]
    assert all(a == b for a, b in steps) and max(a for a, _ in steps) == STEPS
    for k in s_e:
        torch.testing.assert_close(s_c[k]["exp_avg"], s_e[k]["exp_avg"], rtol=1e-4, atol=1e-9)
        torch.testing.assert_close(s_c[k]["exp_avg_sq"], s_e[k]["exp_avg_sq"], rtol=1e-6, atol=1e-20)


def _step_after_warmup(name: str, data: Path, run_dir: Path, step_mode: str):
    """A float32 trainer two steps in (the compiled one has compiled); returns it and its third step, in epoch 2
    (the residual-scale warm-up changes: nothing may recompile)."""
    cfg = tiny_config(name, data, **{"train.step": step_mode, "data.batch_size": 4})
    trainer = Trainer(cfg, run_dir=run_dir)
    trainer.encoder.train()
    trainer.objective.train()
    trainer.stream.set_epoch(1)
    trainer.objective.on_epoch_start(1)
    batches = trainer.train_step.batches(trainer.stream)
    for step in range(2):
        trainer.train_step(next(batches)[0], step)
    trainer.stream.set_epoch(2)
    trainer.objective.on_epoch_start(2)
    batch, _ = next(trainer.train_step.batches(trainer.stream))
    return trainer, lambda: trainer.train_step(batch, 2)


def _adamw_host_reads(optimizer: torch.optim.Optimizer) -> int:
    """``item()`` calls of one ``optimizer.step()`` of torch's AdamW: none for the fused (CUDA) kernel, whose
    step counters live on the device; otherwise (foreach, capturable=False: the CPU) two per parameter that has
    a gradient, its step counter read for each bias correction (``_get_value(step)``), host values on the CPU."""
    if optimizer.defaults.get("fused") or optimizer.defaults.get("capturable"):
        return 0
    return 2 * sum(p.grad is not None for g in optimizer.param_groups for p in g["params"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cifar100_hamjepa", "cifar100_sigreg"])
def test_profiled_step_reads_the_host_only_in_torchs_cpu_adamw(
    name: str, tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compiled_step, "DEFAULT_BACKEND", "aot_eager")
    eager, eager_step = _step_after_warmup(name, tiny_data, tmp_path / "eager", "eager")
    prof_e = profile_steps(eager_step)
    _, compiled_step_fn = _step_after_warmup(name, tiny_data, tmp_path / "compiled", "compiled")
    prof_c = profile_steps(compiled_step_fn)
    # eager: torch's own AdamW reads, nothing else (0 on CUDA; on the CPU, 2 per parameter with a gradient)
    want = _adamw_host_reads(eager.optimizer)
    assert (want > 0) if eager.device.type == "cpu" else (want == 0)
    assert prof_e.host_syncs == want, (prof_e, want)
    assert prof_c.host_syncs == 0, prof_c  # a recompilation would read values (item) while tracing
    assert prof_c.compiled_regions == 1
    assert prof_c.host_ops_outside_compiled < 150 < prof_e.host_ops_outside_compiled


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"objective": "bijepa"}, "EMA target encoder"),
        ({"objective": "hamsigreg"}, "host-side work"),
        ({"model.compile": True}, "model.compile"),
    ],
)
def test_compiled_step_refuses_what_it_cannot_capture(tiny_data: Path, extra: dict, match: str) -> None:
    name = f"cifar100_{extra.pop('objective', 'hamjepa')}"
    with pytest.raises(ConfigError, match=match):
        tiny_config(name, tiny_data, **{"train.step": "compiled", **extra})


def test_compiled_step_refuses_folder_data(tmp_path: Path) -> None:
    from tests.engine.helpers import REPO

    from hamjepa.components import load_config

    with pytest.raises(ConfigError, match="device-resident"):
        load_config(REPO / "configs" / "imagenet100_hamjepa.yaml", [f"data.path={tmp_path}", "train.step=compiled"])


def test_profile_counts_compiled_regions() -> None:
    lin = torch.nn.Linear(3, 3)
    fn = torch.compile(lambda x: lin(x).relu().sum(), fullgraph=True, backend="aot_eager")
    x = torch.ones(2, 3)
    fn(x)
    prof = profile_steps(lambda: fn(x + 1))
    assert prof.compiled_regions == 1
    assert prof.host_ops_outside_compiled == 1  # the add; the graph's ops run inside the region
    assert prof.host_ops > prof.host_ops_outside_compiled
