"""Learning-rate schedule of docs/spec.md §G.3."""

from __future__ import annotations

import math

import pytest
import torch

from hamjepa.engine.schedule import WarmupCosineSchedule, warmup_cosine_lr


def test_spec_g3_values_at_0_w_and_s() -> None:
    base, floor, w, s = 5e-4, 5e-7, 970, 2910
    assert warmup_cosine_lr(0, base_lr=base, floor_lr=floor, warmup_steps=w, total_steps=s) == pytest.approx(5e-6)
    assert warmup_cosine_lr(w, base_lr=base, floor_lr=floor, warmup_steps=w, total_steps=s) == pytest.approx(base)
    assert warmup_cosine_lr(s, base_lr=base, floor_lr=floor, warmup_steps=w, total_steps=s) == pytest.approx(floor)
    mid = w + (s - w) // 2
    expect = floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * (mid - w) / (s - w)))
    assert warmup_cosine_lr(mid, base_lr=base, floor_lr=floor, warmup_steps=w, total_steps=s) == pytest.approx(expect)


def test_two_groups_share_the_absolute_floor_and_state_round_trips() -> None:
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([{"params": [a], "base_lr": 5e-4}, {"params": [b], "base_lr": 5e-5}], lr=1.0)
    sched = WarmupCosineSchedule(opt, warmup_steps=2, total_steps=10, floor_lr=5e-7)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([5e-6, 5e-7])
    for _ in range(10):
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([5e-7, 5e-7])
    other = WarmupCosineSchedule(opt, warmup_steps=2, total_steps=10, floor_lr=5e-7)
    other.load_state_dict({"step_index": 2})
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-4)
