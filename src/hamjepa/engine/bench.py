"""Training-throughput benchmark: the full step and the encoder-only floor, in one process.

With ``profile=True`` it also counts, with ``torch.profiler``, the host work of a step (any device): the
operators dispatched from Python (all, and outside compiled regions) and the host syncs; on CUDA the kernel
time per step gives the GPU-busy fraction of the timed step.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from hamjepa.config import Config
from hamjepa.engine.profiling import profile_steps
from hamjepa.engine.trainer import Trainer
from hamjepa.provenance import provenance

PROFILED_STEPS = 3
"""Steps run under the profiler with ``profile=True`` (the counts are per-step averages)."""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step_seconds(fn: Callable[[], Any], device: torch.device, *, warmup: int, steps: int) -> list[float]:
    times: list[float] = []
    for i in range(warmup + steps):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def benchmark_training(
    cfg: Config, *, steps: int = 30, warmup: int = 10, encoder_floor: bool = True, profile: bool = False
) -> dict[str, Any]:
    """Time ``steps`` training steps after ``warmup`` untimed ones (``train.step`` eager or compiled).

    Each step includes drawing the batch and augmenting it on the device, exactly as in training (a compiled
    step compiles during the warm-up). Returns a JSON-ready dict: median/mean step seconds, views/s, seconds
    per epoch (median step x steps per epoch), and the same for the encoder alone (eager forward + backward
    of a dummy loss on the same views). ``profile`` adds ``host_ops_per_step``,
    ``host_ops_outside_compiled_per_step``, ``host_syncs_per_step`` and, on CUDA, ``device_busy_s_per_step``
    and ``gpu_busy_fraction`` (kernel time / median step time).
    """
    cfg.train.progress = False
    cfg.train.tensorboard = False
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, run_dir=Path(tmp) / "bench")
        device = trainer.device
        trainer.objective.on_epoch_start(max(1, cfg.train.epochs))
        trainer.encoder.train()
        trainer.objective.train()
        epoch = 0
        batches: Iterator[Any] = iter(())

        def next_batch() -> Any:
            nonlocal epoch, batches
            for _ in range(2):
                try:
                    return next(batches)[0]
                except StopIteration:
                    epoch += 1
                    trainer.stream.set_epoch(epoch)
                    batches = trainer.train_step.batches(trainer.stream)
            raise RuntimeError("bench: the train stream yields no batch")

        def one_step() -> None:
            trainer.train_step(next_batch(), trainer.step)
            trainer.step += 1

        times = _step_seconds(one_step, device, warmup=warmup, steps=steps)
        # the encoder floor's views: an eager step's batch is its views; a compiled step takes raw images
        views = next_batch() if cfg.train.step == "eager" else trainer.stream.batch_at(1, 0)[0]
        groups = views if isinstance(views, (list, tuple)) else [views]
        n_views = sum(g.shape[0] * g.shape[1] for g in groups)
        med = statistics.median(times)
        result: dict[str, Any] = {
            "config": cfg.to_dict(),
            "objective": cfg.objective["name"],
            "kind": "bench",
            "provenance": provenance(device),
            "precision": "bf16" if trainer.amp_dtype is not None else "fp32",
            "step_mode": cfg.train.step,
            "compile": cfg.model.compile,
            "views_per_step": n_views,
            "steps_per_epoch": trainer.steps_per_epoch,
            "timed_steps": steps,
            "step_s_median": med,
            "step_s_mean": statistics.fmean(times),
            "views_per_s": n_views / med,
            "s_per_epoch": med * trainer.steps_per_epoch,
        }
        if profile:
            prof = profile_steps(one_step, steps=PROFILED_STEPS, device=device)
            result.update(
                {
                    "profiled_steps": prof.steps,
                    "host_ops_per_step": prof.host_ops,
                    "host_ops_outside_compiled_per_step": prof.host_ops_outside_compiled,
                    "host_syncs_per_step": prof.host_syncs,
                    "compiled_regions_per_step": prof.compiled_regions,
                }
            )
            if prof.device_busy_s is not None:
                result["device_busy_s_per_step"] = prof.device_busy_s
                result["gpu_busy_fraction"] = prof.device_busy_s / med
        if encoder_floor:
            module = trainer.module

            def encoder_step() -> None:
                z = module.embed(views)
                z.float().square().mean().backward()
                trainer.optimizer.zero_grad(set_to_none=True)

            emed = statistics.median(_step_seconds(encoder_step, device, warmup=warmup, steps=steps))
            result.update(
                {
                    "encoder_step_s_median": emed,
                    "encoder_views_per_s": n_views / emed,
                    "encoder_s_per_epoch": emed * trainer.steps_per_epoch,
                    "ratio_to_encoder_floor": med / emed,
                }
            )
    return result
