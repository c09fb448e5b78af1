"""Run a function on several gloo CPU ranks (fresh processes) and collect what each rank returns."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing as mp

from hamjepa.engine.launch import join_process_group, shutdown_distributed


def _worker(rank: int, compute: Callable[[int, int], Any], world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    join_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.save(compute(rank, world), Path(out_dir) / f"rank{rank}.pt")
    finally:
        shutdown_distributed()


def run_on_ranks(compute: Callable[[int, int], Any], tmp_path: Path, world: int = 2) -> list[Any]:
    """``[compute(r, world) for r in range(world)]``, each call on its own rank of one process group.

    ``compute`` must be picklable (a module-level function, or a ``functools.partial`` of one).
    """
    mp.spawn(_worker, args=(compute, world, str(tmp_path / "init"), str(tmp_path)), nprocs=world, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(world)]
