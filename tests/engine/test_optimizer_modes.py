"""One optimiser state in torch's format for both step modes: it resumes across modes, and torch's CPU AdamW
equals the hand-written update of the compiled step to the last bit of every step.

Eager training steps ``torch.optim.AdamW`` on every device; the compiled step runs
:func:`~hamjepa.engine.optim.apply_adamw`, which rounds every operation as torch's CPU AdamW does (the last one
included: ``addcdiv``'s ``p + (-lr/bc1) * m / denom``), so on the CPU the two updates are equal bit for bit, in
float32 and float64, eagerly and traced op by op. The cross-mode resumes run in float64 (``aot_eager``
backend: the compiled step's graph without code generation) and equal the uninterrupted run to round-off
(the encoder and objective's traced graph may round otherwise); that the saved state was carried (not
rebuilt) is shown bit for bit on load and by the step counters at the end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.engine.helpers import tiny_config, write_tiny_cifar

from hamjepa.engine import compiled_step
from hamjepa.engine.compiled_step import CompiledTrainStep
from hamjepa.engine.optim import adamw_groups, apply_adamw
from hamjepa.engine.step import TrainStep
from hamjepa.engine.trainer import Trainer

FIRST, TOTAL = 3, 6
TOL = 1e-12
STEPS = 30


def _adamw_problem(dtype: torch.dtype = torch.float64) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
    """Start values and :data:`STEPS` steps of gradients (tiny ones every other step, where Adam is most
    sensitive to rounding); the last parameter never gets a gradient."""
    gen = torch.Generator().manual_seed(0)
    shapes = [(40, 30), (30,), (5, 4, 3), (7,)]
    start = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    grads = [
        [torch.randn(s, generator=gen, dtype=dtype) * (1e-9 if k % 2 else 1.0) for s in shapes[:-1]]
        for k in range(STEPS)
    ]
    return start, grads


def _optimiser(params: list[torch.Tensor], **flags: bool) -> torch.optim.AdamW:
    groups = [{"params": params[:2], "weight_decay": 5e-4}, {"params": params[2:], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=5e-4, betas=(0.9, 0.999), eps=1e-8, **flags)


def _lrs(k: int) -> list[float]:
    return [5e-4 * (k + 1) / STEPS, 1e-3 / (k + 1)]  # each group on its own schedule


def _torch_run(start: list[torch.Tensor], grads: list[list[torch.Tensor]], **flags: bool):
    params = [p.clone().requires_grad_() for p in start]
    opt = _optimiser(params, **flags)
    for k, step_grads in enumerate(grads):
        for group, lr in zip(opt.param_groups, _lrs(k), strict=True):
            group["lr"] = lr
        for p, g in zip(params, step_grads, strict=False):
            p.grad = g.clone()
        opt.step()
    return params, opt


def _hand_written_run(start: list[torch.Tensor], grads: list[list[torch.Tensor]], backend: str | None):
    """:func:`apply_adamw` on the same problem: eagerly with float learning rates (``backend=None``), or
    compiled with one-element float64 learning-rate tensors, as the compiled step calls it."""
    params = [p.clone().requires_grad_() for p in start]
    opt = _optimiser(params, foreach=True)
    groups = adamw_groups(opt)
    if backend is None:
        for k, step_grads in enumerate(grads):
            apply_adamw(groups, [*(g.clone() for g in step_grads), None], _lrs(k))
        return params, opt
    lrs = [torch.zeros(1, dtype=torch.float64) for _ in groups]
    update = torch.compile(lambda g: apply_adamw(groups, g, lrs), fullgraph=True, backend=backend)
    for k, step_grads in enumerate(grads):
        for t, lr in zip(lrs, _lrs(k), strict=True):
            t.fill_(lr)
        update([*(g.clone() for g in step_grads), None])
    return params, opt


def _assert_bitwise_equal(ref, opt_ref, mine, opt_mine, start) -> None:
    for p, q in zip(ref, mine, strict=True):
        assert torch.equal(p, q), float((p - q).abs().max())
    assert torch.equal(mine[-1].detach(), start[-1])  # no gradient: untouched, as torch leaves it
    for p, q in zip(ref[:-1], mine[:-1], strict=True):
        state_ref, state_mine = opt_ref.state[p], opt_mine.state[q]
        assert float(state_ref["step"]) == float(state_mine["step"]) == STEPS
        assert torch.equal(state_mine["exp_avg"], state_ref["exp_avg"])
        assert torch.equal(state_mine["exp_avg_sq"], state_ref["exp_avg_sq"])
    assert not opt_ref.state[ref[-1]]  # torch makes no state for it; adamw_groups made zeros, left at zero
    assert float(opt_mine.state[mine[-1]]["step"]) == 0.0 and not opt_mine.state[mine[-1]]["exp_avg"].any()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_torch_cpu_adamw_variants_agree_bit_for_bit(dtype: torch.dtype) -> None:
    """Eager training's foreach AdamW (what ``build_optimizer`` asks for off CUDA) equals torch's
    single-tensor AdamW bit for bit, and the fused CPU kernel in float64; in float32 the fused kernel's
    vectorised loop rounds otherwise (measured: 1e-6 relative after 30 steps), which is why the CPU runs foreach."""
    start, grads = _adamw_problem(dtype)
    foreach, _ = _torch_run(start, grads, foreach=True)
    single, _ = _torch_run(start, grads, foreach=False)
    fused, _ = _torch_run(start, grads, fused=True)
    for p, q, r in zip(foreach, single, fused, strict=True):
        assert torch.equal(q, p)
        if dtype == torch.float64:
            assert torch.equal(r, p)
        else:
            torch.testing.assert_close(r, p, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("backend", [None, "aot_eager"])
def test_torch_adamw_equals_the_hand_written_update_bit_for_bit(dtype: torch.dtype, backend: str | None) -> None:
    """:data:`STEPS` steps of ``torch.optim.AdamW`` (foreach, what the eager step runs on the CPU) and of
    :func:`apply_adamw` (what the compiled step runs) on the same gradients: two groups with their own weight
    decay and learning-rate schedule, a parameter without gradient; parameters, moments and step counters
    equal bit for bit, eagerly and traced (``aot_eager``: the graph's operators, no code generation)."""
    start, grads = _adamw_problem(dtype)
    ref, opt_ref = _torch_run(start, grads, foreach=True)
    mine, opt_mine = _hand_written_run(start, grads, backend)
    _assert_bitwise_equal(ref, opt_ref, mine, opt_mine, start)


# ---------------------------------------------------------------------------------------------- resumes
def _losses(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r["kind"] == "train"]


def _trainer(data: Path, run_dir: Path, mode: str, max_steps: int, *, resume: bool = False) -> Trainer:
    overrides = {
        "train.step": mode,
        "train.max_steps": max_steps,
        "train.epochs": 1,
        "train.precision": "fp64",
        "data.batch_size": 4,
    }
    return Trainer(tiny_config("cifar100_sigreg", data, **overrides), run_dir=run_dir, resume=resume)


def _state(trainer: Trainer) -> tuple[list[torch.Tensor], dict]:
    return [p.detach().clone() for p in trainer.module.parameters()], trainer.optimizer.state_dict()


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Trainer]:
    """The data and the uninterrupted eager run of :data:`TOTAL` steps."""
    root = tmp_path_factory.mktemp("modes")
    data = write_tiny_cifar(root / "tiny.npz")
    trainer = _trainer(data, root / "straight", "eager", TOTAL)
    trainer.fit()
    return data, root, trainer


@pytest.mark.slow
@pytest.mark.parametrize(("first", "then"), [("eager", "compiled"), ("compiled", "eager")])
def test_state_saved_in_one_mode_resumes_in_the_other(
    straight: tuple[Path, Path, Trainer], first: str, then: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compiled_step, "DEFAULT_BACKEND", "aot_eager")
    data, root, reference = straight
    run_dir = root / f"{first}-then-{then}"
    before = _trainer(data, run_dir, first, FIRST)
    before.fit()
    saved = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["optimizer"]

    resumed = _trainer(data, run_dir, then, TOTAL, resume=True)
    resumed.load()
    step_types = {"eager": TrainStep, "compiled": CompiledTrainStep}
    assert isinstance(before.train_step, step_types[first]) and isinstance(resumed.train_step, step_types[then])
    loaded = resumed.optimizer.state_dict()["state"]
    assert loaded.keys() == saved["state"].keys()
    for k, entry in saved["state"].items():  # the state is carried bit for bit (no fresh moments)
        for key, value in entry.items():
            assert torch.equal(loaded[k][key].cpu(), value.cpu()), (k, key)
    resumed = _trainer(data, run_dir, then, TOTAL, resume=True)
    resumed.fit()

    got, want = _losses(run_dir), _losses(reference.run_dir)
    assert len(got) == len(want) == TOTAL
    for a, b in zip(got, want, strict=True):
        assert a == pytest.approx(b, rel=TOL, abs=TOL)
    params, state = _state(resumed)
    ref_params, ref_state = _state(reference)
    for p, q in zip(params, ref_params, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-13)
    for k, entry in ref_state["state"].items():
        assert float(state["state"][k]["step"]) == float(entry["step"]) == TOTAL  # counted on from the save
        torch.testing.assert_close(state["state"][k]["exp_avg"], entry["exp_avg"], rtol=1e-8, atol=1e-16)
