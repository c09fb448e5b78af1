"""The dynamics benchmark trains on the engine's step: one framework, the same numbers.

``_former_loop`` is the benchmark's former private training loop (before it moved onto
:class:`hamjepa.engine.step.TrainStep`), kept here as the float64 record of what a step computed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import hamjepa
from hamjepa.engine.optim import build_optimizer
from hamjepa.models.ema import make_target_encoder, update_ema
from hamjepa.sequences import train as train_module
from hamjepa.sequences.benchmark import TaskSettings, benchmark_config, build_benchmark_objective
from hamjepa.sequences.encoders import HalfImageEncoder, SequenceEncoder, has_batch_statistics
from hamjepa.sequences.train import train_pairs

SETTINGS = TaskSettings(steps=5, lr=1e-3, batch_size=6, hidden_dim=8, embed_dim=6, momentum=0.9, probe_epochs=1)


def _former_loop(encoder: nn.Module, objective: nn.Module, batches: Iterator, *, steps: int, lr: float, wd: float):
    """The benchmark's own loop as it was: fused AdamW, EMA target, per-view BatchNorm, history of terms."""

    def encode_pair(net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        if has_batch_statistics(net):
            return torch.stack([net(x), net(y)])
        return net(torch.cat([x, y])).view(2, x.shape[0], -1)

    params = [p for p in list(encoder.parameters()) + list(objective.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=wd, fused=True)
    target = make_target_encoder(encoder) if objective.needs_target_encoder else None
    encoder.train(), objective.train()
    history: dict[str, list[Tensor]] = {}
    for step in range(steps):
        x, y = next(batches)
        z = encode_pair(encoder, x, y)
        z_target = None
        if target is not None:
            with torch.no_grad():
                z_target = encode_pair(target, x, y)
        out = objective(z, objective.draw(step, tuple(z.shape), z.device), z_target)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        if target is not None:
            update_ema(target, encoder, objective.ema_momentum(step))
        history.setdefault("loss", []).append(out.loss.detach())
        for key, value in out.terms.items():
            history.setdefault(key, []).append(value.detach().reshape(()))
        history.setdefault("online_norm", []).append(z.detach().norm(dim=-1).mean())
    return target, {k: torch.stack(v) for k, v in history.items()}


def _setup(task: str, method: str):
    torch.manual_seed(0)
    if task == "sine":
        encoder = SequenceEncoder(10, SETTINGS.hidden_dim, SETTINGS.embed_dim, layer_norm=True).double()
        shape = (10,)
    else:
        encoder = HalfImageEncoder(SETTINGS.embed_dim, layer_norm=True, hidden_dim=SETTINGS.hidden_dim).double()
        shape = (1, 28, 14)
    objective = build_benchmark_objective(method, SETTINGS, seed=0).double()
    generator = torch.Generator().manual_seed(1)

    def batches() -> Iterator[tuple[Tensor, Tensor]]:
        while True:
            yield (
                torch.randn(SETTINGS.batch_size, *shape, generator=generator, dtype=torch.float64),
                torch.randn(SETTINGS.batch_size, *shape, generator=generator, dtype=torch.float64),
            )

    return encoder, objective, batches()


def _engine_optimizer(optim, module, objective, device):
    """The engine's own AdamW for the CPU (what ``hamjepa train`` steps there)."""
    return build_optimizer(optim, module, objective, torch.device("cpu"))


def _run_both(task: str, method: str):
    cfg = benchmark_config(method, SETTINGS)
    old_enc, old_obj, old_batches = _setup(task, method)
    old_target, old_history = _former_loop(
        old_enc, old_obj, old_batches, steps=SETTINGS.steps, lr=cfg.optim.lr, wd=cfg.optim.weight_decay
    )
    new_enc, new_obj, new_batches = _setup(task, method)
    new = train_pairs(new_enc, new_obj, new_batches, steps=SETTINGS.steps, optim=cfg.optim)
    return (old_enc, old_obj, old_target, old_history), (new_enc, new_obj, new.target_encoder, new.history)


def _max_difference(old, new) -> float:
    worst = 0.0
    for key in old[3]:
        worst = max(worst, float((old[3][key].float() - new[3][key]).abs().max()))
    for a, b in ((old[0], new[0]), (old[1], new[1]), (old[2], new[2])):
        if a is None:
            assert b is None
            continue
        state_a, state_b = a.state_dict(), b.state_dict()
        assert list(state_a) == list(state_b)
        for key, value in state_a.items():
            worst = max(worst, float((value.double() - state_b[key].double()).abs().max()))
    return worst


@pytest.mark.parametrize("task", ["sine", "halves"])
@pytest.mark.parametrize("method", ["jepa", "bijepa", "hamjepa"])
def test_engine_step_reproduces_the_former_loop_bitwise(task: str, method: str) -> None:
    """float64: TrainStep with the benchmark's optimiser gives the former loop's numbers exactly (views, one
    forward or one per BatchNorm view, EMA target, objective call, optimiser kernel, constant lr, history)."""
    old, new = _run_both(task, method)
    assert set(old[3]) == set(new[3])
    assert _max_difference(old, new) == 0.0


@pytest.mark.parametrize("method", ["bijepa", "hamjepa"])
def test_engines_cpu_adamw_would_differ_by_round_off_only(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Why the benchmark keeps torch's fused kernel: the engine's CPU AdamW is the same maths in another order
    of operations, so its numbers may differ at round-off level (which training then amplifies)."""
    monkeypatch.setattr(
        train_module, "benchmark_optimizer", lambda optim, module: _engine_optimizer(optim, module, None, None)
    )
    old, new = _run_both("sine", method)
    assert _max_difference(old, new) < 1e-12


def test_no_name_of_the_benchmark_collides_with_the_library() -> None:
    """``TrainResult``, ``ProbeResult``, ``build_objective``, ``summarise`` used to exist twice."""
    root = Path(hamjepa.__file__).parent

    def public_names(path: Path) -> set[str]:
        names = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        return {n for n in names if not n.startswith("_")}

    benchmark, library = set(), set()
    for path in root.rglob("*.py"):
        (benchmark if "sequences" in path.relative_to(root).parts else library).update(public_names(path))
    assert benchmark and library
    assert not benchmark & library, sorted(benchmark & library)


def test_the_benchmark_sits_on_top_of_the_library() -> None:
    """Layer order: only the benchmark itself and the ``reproduce`` command import ``hamjepa.sequences``."""
    root = Path(hamjepa.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).parts
        if parts[0] in ("sequences", "reproduce"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            offenders += [f"{path.name}: {m}" for m in modules if m.startswith("hamjepa.sequences")]
    assert not offenders
