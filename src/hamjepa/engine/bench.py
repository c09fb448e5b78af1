"""Training-throughput benchmark: the full step and the encoder-only floor, in one process."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from hamjepa.config import Config
from hamjepa.provenance import provenance


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def benchmark_training(cfg: Config, *, steps: int = 30, warmup: int = 10, encoder_floor: bool = True) -> dict[str, Any]:
    """Time ``steps`` training steps after ``warmup`` untimed ones.

    Each step includes drawing the batch and augmenting it on the device, exactly as in training.
    Returns a JSON-ready dict: median/mean step seconds, views/s, seconds per epoch (median step x steps
    per epoch), and the same for the encoder alone (forward + backward of a dummy loss on the same views).
    """
    from hamjepa.engine.trainer import Trainer

    cfg.train.progress = False
    cfg.train.tensorboard = False
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, run_dir=Path(tmp) / "bench")
        device = trainer.device
        trainer.stream.set_epoch(1)
        trainer.objective.on_epoch_start(max(1, cfg.train.epochs))
        it = iter(trainer.stream)

        def next_views() -> torch.Tensor:
            nonlocal it
            try:
                return next(it)[0]
            except StopIteration:
                trainer.stream.set_epoch(2)
                it = iter(trainer.stream)
                return next(it)[0]

        times: list[float] = []
        views = None
        for i in range(warmup + steps):
            _sync(device)
            t0 = time.perf_counter()
            views = next_views()
            trainer.train_step(views, trainer.step)
            trainer.step += 1
            _sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        groups = views if isinstance(views, (list, tuple)) else [views]
        n_views = sum(g.shape[0] * g.shape[1] for g in groups)
        med = statistics.median(times)
        result: dict[str, Any] = {
            "config": cfg.to_dict(),
            "objective": cfg.objective["name"],
            "kind": "bench",
            "provenance": provenance(device),
            "precision": "bf16" if trainer.amp_dtype is not None else "fp32",
            "compile": cfg.model.compile,
            "views_per_step": n_views,
            "steps_per_epoch": trainer.steps_per_epoch,
            "timed_steps": steps,
            "step_s_median": med,
            "step_s_mean": statistics.fmean(times),
            "views_per_s": n_views / med,
            "s_per_epoch": med * trainer.steps_per_epoch,
        }
        if encoder_floor:
            enc_times: list[float] = []
            module = trainer.module
            for i in range(warmup + steps):
                _sync(device)
                t0 = time.perf_counter()
                z = module.embed(views)
                z.float().square().mean().backward()
                trainer.optimizer.zero_grad(set_to_none=True)
                _sync(device)
                if i >= warmup:
                    enc_times.append(time.perf_counter() - t0)
            emed = statistics.median(enc_times)
            result.update(
                {
                    "encoder_step_s_median": emed,
                    "encoder_views_per_s": n_views / emed,
                    "encoder_s_per_epoch": emed * trainer.steps_per_epoch,
                    "ratio_to_encoder_floor": med / emed,
                }
            )
    return result
