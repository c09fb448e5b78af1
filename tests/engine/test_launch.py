"""Leaving the process group really frees it, so no gloo thread outlives the interpreter.

Importing ``torch._dynamo`` after the default group exists (``torchvision``, ``torch.optim`` and
``torch.compile`` all do on first use) leaves references to the group behind; ``destroy_process_group`` then
frees nothing, and gloo's threads, still alive during interpreter shutdown, abort the process (SIGABRT) when
one of them releases a collective issued inside a backward pass. :func:`join_process_group` prevents it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

WORLD = 2


def _gloo_threads() -> int:
    names = [(Path("/proc/self/task") / t / "comm").read_text().strip() for t in os.listdir("/proc/self/task")]
    return sum(name.startswith(("pt_gloo", "gloo")) for name in names)


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    # A fresh interpreter: torch._dynamo is not imported yet (the test asserts it).
    dynamo_before = "torch._dynamo" in sys.modules
    from hamjepa.engine.launch import join_process_group, shutdown_distributed

    torch.set_num_threads(1)
    join_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    import torchvision  # noqa: F401  (imports torch._dynamo, now after the group exists)

    from hamjepa.distributed import all_reduce_sum

    x = torch.randn(4, requires_grad=True)
    all_reduce_sum(x).square().sum().backward()  # the last collective runs inside a backward pass
    alive_in_group = _gloo_threads()
    shutdown_distributed()
    (Path(out_dir) / f"rank{rank}.txt").write_text(f"{int(dynamo_before)} {alive_in_group} {_gloo_threads()}\n")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through Linux /proc")
def test_leaving_the_group_stops_its_threads_even_after_late_dynamo_import(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    for rank in range(WORLD):
        dynamo_before, alive_in_group, alive_after = map(int, (tmp_path / f"rank{rank}.txt").read_text().split())
        assert dynamo_before == 0, "the worker must start without torch._dynamo for the test to mean anything"
        assert alive_in_group > 0, "gloo threads should run while the group exists"
        assert alive_after == 0, f"rank {rank}: {alive_after} gloo threads survived shutdown_distributed()"
