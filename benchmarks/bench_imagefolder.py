"""Images per second (and per loader worker) of the ImageFolder train stream vs torchvision's per-image pipeline.

Usage: python benchmarks/bench_imagefolder.py [--data DIR] [--workers 1 2] [--batch-size 32] [--batches 20]
       [--sizes native 500x375] [--out results.json]

On real JPEGs (default ``../shared/data/imagenette-mini``; ``500x375`` re-encodes them at ILSVRC-2012's most common
size in a temporary folder, since imagenette-mini's files are 224 px), with 2 views of 224 px per image and the
same number of DataLoader workers, it measures, after a warm-up:

- ``torchvision``: PIL decode + the ImageNet transforms of docs/spec.md §A.2 per view (RandomResizedCrop, flip,
  colour jitter, grayscale, 23 px Gaussian blur, solarize, to-tensor, normalise) in the workers: what the paper's
  code does;
- ``ours_workers``: our workers' output (decode + the crops of both views): the CPU work per image of our stream,
  which is all there is on a GPU (the other ops run batched on it);
- ``ours_stream``: our whole stream on this script's device, including the batched augmentation (on a CPU-only
  machine it runs in the main process, on the same cores as the workers).

Writes JSON with ``kind: bench_imagefolder`` and provenance.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from hamjepa.data.augment import imagenet_augment
from hamjepa.data.folder_stream import ImageFolderStream
from hamjepa.data.imagefolder import ImageFolderSource
from hamjepa.data.reference import torchvision_imagenet_view
from hamjepa.provenance import provenance, write_result

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "imagenette-mini"
VIEWS = 2


class TorchvisionViews(Dataset):
    """PIL decode + the A.2 transform applied independently to each of ``VIEWS`` views."""

    def __init__(self, source: ImageFolderSource) -> None:
        self.source = source
        self.transform = torchvision_imagenet_view()

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        path, label = self.source.samples[i]
        with Image.open(path) as im:
            image = im.convert("RGB")
        return torch.stack([self.transform(image) for _ in range(VIEWS)]), label


def _rate(batches: Iterable[Any], batch_size: int, warmup: int, n: int) -> float:
    """Images/s over ``n`` batches after ``warmup`` batches (worker start-up excluded)."""
    it = iter(batches)
    for _ in range(warmup):
        next(it)
    t0 = time.perf_counter()
    for _ in range(n):
        next(it)
    return n * batch_size / (time.perf_counter() - t0)


def _shutdown(loader: DataLoader | None) -> None:
    """Stop a persistent DataLoader's workers now (not at garbage collection inside a later fork)."""
    it = getattr(loader, "_iterator", None)
    if it is not None and hasattr(it, "_shutdown_workers"):
        it._shutdown_workers()


def _ours(source: ImageFolderSource, workers: int, batch_size: int, device: str, seed: int) -> ImageFolderStream:
    return ImageFolderStream(
        source, batch_size, imagenet_augment(), seed=seed, device=device, num_workers=workers, prefetch_factor=4
    )


def measure(
    source: ImageFolderSource, workers: int, batch_size: int, warmup: int, n: int, device: str, repeats: int
) -> dict[str, float]:
    """Median images/s over ``repeats`` runs of each pipeline with ``workers`` workers."""
    out: dict[str, list[float]] = {"torchvision": [], "ours_workers": [], "ours_stream": []}
    for r in range(repeats):
        tv = DataLoader(
            TorchvisionViews(source),
            batch_size=batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=workers,
            prefetch_factor=4 if workers else None,
            persistent_workers=workers > 0,
            generator=torch.Generator().manual_seed(r),
        )
        out["torchvision"].append(_rate(tv, batch_size, warmup, n))
        _shutdown(tv)
        stream = _ours(source, workers, batch_size, device, seed=r)
        stream.set_epoch(0)
        out["ours_workers"].append(_rate(stream._loader(), batch_size, warmup, n))
        _shutdown(stream._dataloader)
        stream = _ours(source, workers, batch_size, device, seed=r)
        stream.set_epoch(0)

        def synced(s: ImageFolderStream = stream) -> Iterable[Any]:
            for views, labels in s:
                if views.is_cuda:
                    torch.cuda.synchronize(views.device)
                yield views, labels

        out["ours_stream"].append(_rate(synced(), batch_size, warmup, n))
        _shutdown(stream._dataloader)
    return {k: statistics.median(v) for k, v in out.items()}


def reencoded_copy(source_root: Path, size: tuple[int, int], dest: Path) -> Path:
    """The train split's JPEGs resized to ``size`` (w, h) and re-encoded (quality 90) under ``dest``."""
    from PIL import Image

    for f in sorted((source_root / "train").rglob("*")):
        if f.is_file():
            out = dest / "train" / f.parent.name / f.name
            out.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(f) as im:
                im.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(out, "JPEG", quality=90)
    return dest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="ImageFolder root with train/ (real JPEGs)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--batches", type=int, default=20, help="timed batches per run")
    p.add_argument("--warmup", type=int, default=3, help="untimed batches first (worker start-up)")
    p.add_argument("--repeats", type=int, default=1, help="runs per pipeline (median reported)")
    p.add_argument("--sizes", nargs="+", default=["native", "500x375"], help="'native' and/or WxH re-encodings")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=None, help="write the results JSON here")
    args = p.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.set_num_threads(1)
    prov = provenance(args.device)  # at the start: the commit whose code is measured
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            if size == "native":
                root = Path(args.data)
            else:
                w, h = (int(v) for v in size.split("x"))
                root = reencoded_copy(Path(args.data), (w, h), Path(tmp) / size)
            source = ImageFolderSource(root, "train")
            for workers in args.workers:
                rates = measure(source, workers, args.batch_size, args.warmup, args.batches, args.device, args.repeats)
                row = {
                    "images": size,
                    "workers": workers,
                    **{f"{k}_images_per_s": v for k, v in rates.items()},
                    **{f"{k}_images_per_s_per_worker": v / max(workers, 1) for k, v in rates.items()},
                    "speedup_workers_vs_torchvision": rates["ours_workers"] / rates["torchvision"],
                    "speedup_stream_vs_torchvision": rates["ours_stream"] / rates["torchvision"],
                }
                rows.append(row)
                print(json.dumps(row))
    result = {
        "kind": "bench_imagefolder",
        "data": str(args.data),
        "views_per_image": VIEWS,
        "view_size": 224,
        "batch_size": args.batch_size,
        "timed_batches": args.batches,
        "repeats": args.repeats,
        "stream_device": args.device,
        "cpu_count": os.cpu_count(),
        "rows": rows,
        "provenance": prov,
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_result(args.out, result)


if __name__ == "__main__":
    main()
