"""The compiled step's AdamW and clipping are torch's (float64 equality), and the profiler counts are right."""

from __future__ import annotations

import pytest
import torch

from hamjepa.engine.optim import adamw_groups, adamw_step_, apply_adamw, clip_grads_
from hamjepa.engine.profiling import profile_steps


def _params_and_grads(seed: int) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
    gen = torch.Generator().manual_seed(seed)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    params = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    # five steps of gradients, with some tiny entries (where Adam is most sensitive to rounding)
    grads = [
        [torch.randn(s, generator=gen, dtype=torch.float64) * (1e-9 if k % 2 else 1.0) for s in shapes]
        for k in range(5)
    ]
    return params, grads


def test_adamw_step_equals_torch_adamw_in_float64() -> None:
    params, grads = _params_and_grads(0)
    ref = [p.clone().requires_grad_() for p in params]
    opt = torch.optim.AdamW(ref, lr=3e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.05, foreach=False)
    mine = [p.clone() for p in params]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    t = [torch.zeros((), dtype=torch.float32) for _ in params]
    for k, step_grads in enumerate(grads):
        lr = 3e-3 * (k + 1) / 5  # a changing lr, as under the schedule
        for group in opt.param_groups:
            group["lr"] = lr
        for p, g in zip(ref, step_grads, strict=True):
            p.grad = g.clone()
        opt.step()
        adamw_step_(
            mine,
            [g.clone() for g in step_grads],
            m,
            v,
            t,
            lr=torch.tensor(lr, dtype=torch.float64),
            beta1=0.9,
            beta2=0.95,
            eps=1e-8,
            weight_decay=0.05,
        )
    for p, q in zip(ref, mine, strict=True):
        torch.testing.assert_close(q, p.detach(), rtol=1e-13, atol=1e-15)
    for i, p in enumerate(ref):
        torch.testing.assert_close(m[i], opt.state[p]["exp_avg"], rtol=1e-13, atol=1e-18)
        torch.testing.assert_close(v[i], opt.state[p]["exp_avg_sq"], rtol=1e-13, atol=1e-30)
        assert float(t[i]) == float(opt.state[p]["step"]) == 5.0


def test_apply_adamw_over_groups_equals_torch_adamw_in_float64() -> None:
    """What both step modes run: per-group lr and weight decay, and a parameter that never gets a gradient
    (torch leaves it untouched: no decay, no moments)."""
    params, grads = _params_and_grads(1)
    frozen = torch.randn(5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def optimiser(tensors: list[torch.Tensor]) -> torch.optim.AdamW:
        groups = [
            {"params": tensors[:2], "lr": 1e-3, "weight_decay": 0.05},
            {"params": tensors[2:], "lr": 2e-3, "weight_decay": 0.0},  # holds the parameter without gradient
        ]
        return torch.optim.AdamW(groups, betas=(0.9, 0.95), eps=1e-8, foreach=False)

    ref = [p.clone().requires_grad_() for p in [*params, frozen]]
    mine = [p.clone().requires_grad_() for p in [*params, frozen]]
    opt_ref, opt_mine = optimiser(ref), optimiser(mine)
    groups = adamw_groups(opt_mine)
    for k, step_grads in enumerate(grads):
        lrs = [1e-3 * (k + 1), 2e-3 / (k + 1)]  # each group on its own schedule
        for group, lr in zip(opt_ref.param_groups, lrs, strict=True):
            group["lr"] = lr
        for p, g in zip(ref, step_grads, strict=False):  # the last parameter gets no gradient
            p.grad = g.clone()
        opt_ref.step()
        apply_adamw(groups, [*(g.clone() for g in step_grads), None], lrs)
    for p, q in zip(ref, mine, strict=True):
        torch.testing.assert_close(q.detach(), p.detach(), rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(mine[-1].detach(), frozen, rtol=0, atol=0)
    for p, q in zip(ref[:-1], mine[:-1], strict=True):
        torch.testing.assert_close(opt_mine.state[q]["exp_avg"], opt_ref.state[p]["exp_avg"], rtol=1e-13, atol=1e-18)
        torch.testing.assert_close(
            opt_mine.state[q]["exp_avg_sq"], opt_ref.state[p]["exp_avg_sq"], rtol=1e-13, atol=1e-30
        )
        assert float(opt_mine.state[q]["step"]) == float(opt_ref.state[p]["step"]) == 5.0


@pytest.mark.parametrize("max_norm", [0.5, 1e3])  # clipping active / inactive
def test_clip_grads_equals_torch_clip_grad_norm_in_float64(max_norm: float) -> None:
    params, grads = _params_and_grads(1)
    ref = [p.clone().requires_grad_() for p in params]
    for p, g in zip(ref, grads[0], strict=True):
        p.grad = g.clone()
    want_norm = torch.nn.utils.clip_grad_norm_(ref, max_norm, foreach=True)
    mine = [g.clone() for g in grads[0]]
    norm = clip_grads_(mine, max_norm)
    torch.testing.assert_close(norm, want_norm, rtol=1e-15, atol=0)
    for p, g in zip(ref, mine, strict=True):
        torch.testing.assert_close(g, p.grad, rtol=1e-15, atol=0)
    if max_norm < 1:
        assert torch.linalg.vector_norm(torch.cat([g.reshape(-1) for g in mine])) == pytest.approx(max_norm, rel=1e-5)


def test_profile_counts_top_level_ops_and_syncs() -> None:
    x = torch.ones(3)

    def step() -> None:
        y = torch.zeros(3) + x  # two top-level ops (aten::zeros contains aten::empty and aten::zero_)
        _ = y.sum().item()  # two more, one of them a sync

    prof = profile_steps(step, steps=2)
    assert prof.host_ops == 4 and prof.host_ops_outside_compiled == 4
    assert prof.host_syncs == 1
    assert prof.compiled_regions == 0 and prof.device_busy_s is None
