"""Host-side cost of a training step, counted with ``torch.profiler`` (any device, no timing involved).

* **host ops**: top-level ``aten::`` operators, i.e. each operator dispatched from Python (an operator
  nested inside another one, e.g. ``aten::empty`` inside ``aten::zeros``, is not counted again).
  ``host_ops_outside_compiled`` leaves out what runs inside a ``torch.compile`` region (its generated code
  plus the library kernels it calls); ``host_ops`` counts the top-level operators of compiled regions too.
* **host syncs**: every ``aten::item`` / ``aten::_local_scalar_dense`` (a device value read by the host),
  at any depth, compiled regions included (an ``item`` and the ``_local_scalar_dense`` inside it count once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

SYNC_OPS: frozenset[str] = frozenset({"aten::item", "aten::_local_scalar_dense"})
"""Operators that copy a device value to the host (a synchronisation on CUDA)."""

COMPILED_REGION_PREFIX = "Torch-Compiled Region"


@dataclass
class StepProfile:
    """Profiler counts per step (averaged over the profiled steps)."""

    host_ops: float
    host_ops_outside_compiled: float
    host_syncs: float
    compiled_regions: float
    device_busy_s: float | None
    steps: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _ancestors(event: Any) -> list[str]:
    names = []
    parent = event.cpu_parent
    while parent is not None:
        names.append(parent.name)
        parent = parent.cpu_parent
    return names


def count_events(events: list[Any]) -> dict[str, int]:
    """``host_ops``, ``host_ops_outside_compiled``, ``host_syncs`` and ``compiled_regions`` of profiler events."""
    host_ops = outside = syncs = regions = 0
    for event in events:
        name = event.name
        if name.startswith(COMPILED_REGION_PREFIX):
            regions += 1
            continue
        if not name.startswith("aten::"):
            continue
        above = _ancestors(event)
        if name in SYNC_OPS and not any(a in SYNC_OPS for a in above):
            syncs += 1
        if any(a.startswith("aten::") for a in above):
            continue
        host_ops += 1
        if not any(a.startswith(COMPILED_REGION_PREFIX) for a in above):
            outside += 1
    return {
        "host_ops": host_ops,
        "host_ops_outside_compiled": outside,
        "host_syncs": syncs,
        "compiled_regions": regions,
    }


def _device_busy_seconds(prof: Any) -> float | None:
    """Sum of device kernel time (CUDA), or None when no device activity was recorded."""
    total_us = 0.0
    found = False
    for event in prof.events():
        if getattr(event, "device_type", None) == torch.autograd.DeviceType.CUDA:
            total_us += event.device_time
            found = True
    return total_us / 1e6 if found else None


def profile_steps(step: Callable[[], Any], *, steps: int = 1, device: torch.device | None = None) -> StepProfile:
    """Run ``step()`` ``steps`` times under ``torch.profiler`` and count its host work per step.

    On CUDA the device kernels are recorded too (``device_busy_s`` = kernel time per step) and the
    device is synchronised once after the last step (outside the counted steps).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    cuda = device is not None and device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        if cuda:
            torch.cuda.synchronize(device)
    counts = count_events(list(prof.events()))
    busy = _device_busy_seconds(prof) if cuda else None
    return StepProfile(
        host_ops=counts["host_ops"] / steps,
        host_ops_outside_compiled=counts["host_ops_outside_compiled"] / steps,
        host_syncs=counts["host_syncs"] / steps,
        compiled_regions=counts["compiled_regions"] / steps,
        device_busy_s=None if busy is None else busy / steps,
        steps=steps,
    )
