"""CUDA-only failure modes reproduced on the CPU (meta device stands in for a GPU)."""

from __future__ import annotations

from pathlib import Path

import torch
from tests.engine.helpers import tiny_config

from hamjepa.engine.checkpoint import LAST_NAME, capture_rng_state, restore_rng_state, save_checkpoint
from hamjepa.engine.train_state import read_resume_state


def test_resume_reads_the_checkpoint_onto_the_cpu_so_rng_states_restore(tmp_path: Path) -> None:
    """A resume on CUDA used ``map_location=<cuda>``: the RNG ByteTensors landed on the GPU and
    ``torch.set_rng_state`` refused them. ``read_resume_state`` takes no device: it always reads onto the CPU."""
    cfg = tiny_config("cifar100_hamjepa", tmp_path / "unused.npz")
    torch.manual_seed(123)
    rng = capture_rng_state()
    expected = torch.rand(4)
    run_dir = tmp_path / "run"
    save_checkpoint({"config": cfg.to_dict(), "encoder": {}, "rng": rng}, run_dir / "checkpoints" / LAST_NAME)

    state = read_resume_state(run_dir, cfg)

    assert state["rng"]["torch"].device.type == "cpu"
    assert state["rng"]["numpy"]["keys"].device.type == "cpu"
    torch.manual_seed(0)
    restore_rng_state(state["rng"])
    torch.testing.assert_close(torch.rand(4), expected, rtol=0, atol=0)
