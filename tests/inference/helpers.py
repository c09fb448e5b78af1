"""A tiny "trained" run (real config, real checkpoint format, non-trivial BatchNorm statistics) in seconds."""

from __future__ import annotations

from pathlib import Path

import torch
from tests.engine.helpers import tiny_config, write_tiny_cifar

from hamjepa.engine.build import build_model
from hamjepa.engine.checkpoint import CHECKPOINT_FORMAT, save_checkpoint
from hamjepa.engine.run_logger import RunLogger


def make_run(root: Path, config: str = "cifar100_hamjepa", **overrides: object) -> Path:
    """``root/run`` with ``config.yaml`` and ``checkpoints/last.pt`` of a randomly initialised model whose
    BatchNorm running statistics were updated by two train-mode passes (so eval mode is not the identity)."""
    data = write_tiny_cifar(root / "tiny.npz")
    cfg = tiny_config(config, data, **overrides)
    torch.manual_seed(0)
    encoder, objective = build_model(cfg)
    size = cfg.data.image_size
    encoder.train()
    with torch.no_grad():
        for _ in range(2):
            encoder(torch.randn(4, 3, size, size) * 2 + 0.5)
    run = root / "run"
    logger = RunLogger(run, is_main=True)
    logger.open(cfg)  # config.yaml and provenance.jsonl, as a training run writes them
    logger.close()
    save_checkpoint(
        {
            "format": CHECKPOINT_FORMAT,
            "config": cfg.to_dict(),
            "encoder": encoder.state_dict(),
            "objective": objective.state_dict(),
            "target_encoder": None,
            "epoch": 2,
            "step": 8,
            "epoch_complete": True,
        },
        run / "checkpoints" / "last.pt",
    )
    return run
