"""Throughput of the device-side multi-view augmentation (views per second).

Usage: python benchmarks/bench_augment.py [--device cuda] [--repeats 10] [--out results.json]

Measures a CIFAR batch (512 images x 2 views = 1024 views of 32 px) and an ImageNet batch (128 images x 2
views = 256 views of 224 px) after warm-up; on CUDA each run is timed with CUDA events, on CPU with
perf_counter after synchronising. Reports the median over the runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from hamjepa.data.augment import MultiViewAugment, cifar100_augment, imagenet_augment


def _time_once(aug: MultiViewAugment, images: torch.Tensor, gen: torch.Generator) -> float:
    dev = images.device
    if dev.type == "cuda":
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        aug(images, gen)
        stop.record()
        torch.cuda.synchronize(dev)
        return start.elapsed_time(stop) / 1000.0
    t0 = time.perf_counter()
    aug(images, gen)
    return time.perf_counter() - t0


def bench(
    name: str, aug: MultiViewAugment, batch: int, side: int, device: torch.device, repeats: int, warmup: int
) -> dict[str, float | int | str]:
    """Median views/s of ``aug`` on a random uint8 batch of ``batch`` images of ``side`` px."""
    gen = torch.Generator(device=device).manual_seed(0)
    images = torch.randint(0, 256, (batch, 3, side, side), dtype=torch.uint8, device=device, generator=gen)
    for _ in range(warmup):
        aug(images, gen)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    times = [_time_once(aug, images, gen) for _ in range(repeats)]
    views = batch * aug.num_views
    med = statistics.median(times)
    return {
        "name": name,
        "views": views,
        "view_size": aug.groups[0].size,
        "median_s": med,
        "views_per_s": views / med,
        "repeats": repeats,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args()
    device = torch.device(args.device)
    results = [
        bench("cifar100", cifar100_augment(), 512, 32, device, args.repeats, args.warmup),
        bench("imagenet", imagenet_augment(), 128, 224, device, args.repeats, args.warmup),
    ]
    for r in results:
        print(
            f"{r['name']:>9}: {r['views']} views of {r['view_size']} px in {r['median_s'] * 1e3:.2f} ms "
            f"(median of {r['repeats']}) -> {r['views_per_s']:.0f} views/s on {device}"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"device": str(device), "torch": torch.__version__, "results": results}
        if device.type == "cuda":
            payload["gpu"] = torch.cuda.get_device_name(device)
        args.out.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
