"""``hamjepa embed`` and ``hamjepa export`` subcommands, and the transfer step of ``hamjepa eval --data``.

``eval`` and its options are registered by :mod:`hamjepa.evaluation.cli` (registered first); transfer
evaluation belongs to this layer, so this module hands it to that parser (``evaluate_transfer``) and the
evaluation package never imports the inference package.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

_RUN_HELP = "run folder, checkpoint .pt file, or a folder written by `hamjepa export`"


def add_parser(subparsers: Any) -> None:
    """Register ``embed`` and ``export`` on an ``argparse`` subparsers object."""
    e = subparsers.add_parser(
        "embed",
        help="embeddings of a folder or glob of images to .npz / .npy (restartable)",
        description=(
            "Embed every image of a folder (recursively), an ImageFolder tree (sub-folders = classes: labels "
            "are saved too) or a glob pattern with a trained encoder and its evaluation preprocessing. Finished "
            "chunks are kept in OUT.partial/ so an interrupted job restarts where it stopped; images that cannot "
            "be decoded are listed and skipped."
        ),
        epilog="Example: hamjepa embed runs/cifar100_hamjepa-seed42 --images photos/ --readout q --out emb.npz",
    )
    e.add_argument("run", metavar="RUN", help=_RUN_HELP)
    e.add_argument("--images", required=True, metavar="DIR_OR_GLOB", help="folder, ImageFolder tree, or glob")
    e.add_argument("--out", required=True, type=Path, metavar="FILE", help=".npz (embeddings, files, labels) or .npy")
    e.add_argument("--readout", default=None, help="q, p or qp (phase-split encoders) / z; default: whole embedding")
    e.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")
    e.add_argument("--chunk-size", type=int, default=4096, help="images per restartable chunk (default 4096)")
    e.add_argument("--workers", type=int, default=None, help="decoding processes (default min(4, CPUs))")
    e.add_argument("--device", default="auto", help="torch device (default auto: CUDA, then MPS, then CPU)")
    e.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    e.set_defaults(
        func=run_embed,
        interrupt_hint="run the same `hamjepa embed` command again: the chunks kept in OUT.partial/ are reused",
    )

    x = subparsers.add_parser(
        "export",
        help="export a run as safetensors + config + metrics + model card (no pickle)",
        description=(
            "Write OUT/ with encoder.safetensors, objective.safetensors (predictor), resnet18_backbone.safetensors "
            "(torchvision resnet18 names), config.yaml, metrics.json (when the run was evaluated), "
            "hamjepa_export.json (sha256 of every file) and README.md, a model card with the accuracies and how to "
            "load the model. hamjepa.load(OUT) gives the run's embeddings bit for bit."
        ),
        epilog="Example: hamjepa export runs/cifar100_hamjepa-seed42 --out exports/cifar100_hamjepa",
    )
    x.add_argument("run", metavar="RUN", help=_RUN_HELP)
    x.add_argument("--out", required=True, type=Path, metavar="DIR", help="export folder (empty or new)")
    x.add_argument("--force", action="store_true", help="replace an earlier export in DIR")
    x.set_defaults(
        func=run_export,
        interrupt_hint="the export folder may be incomplete: delete it and run the same `hamjepa export` again",
    )
    subparsers.choices["eval"].set_defaults(evaluate_transfer=evaluate_transfer)


def evaluate_transfer(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`hamjepa.inference.transfer.evaluate_transfer`, imported when ``eval --data`` runs."""
    from hamjepa.inference.transfer import evaluate_transfer as evaluate

    return evaluate(*args, **kwargs)


def run_embed(args: argparse.Namespace) -> int:
    from hamjepa.data.imagefolder import default_decode_workers
    from hamjepa.inference.embed import embed_images, list_images
    from hamjepa.inference.model import load

    images = list_images(args.images)
    model = load(args.run, device=args.device)
    result = embed_images(
        model,
        images,
        args.out,
        readout=args.readout,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        num_workers=default_decode_workers() if args.workers is None else args.workers,
        progress=not args.no_progress,
    )
    reused = f", {result.chunks_reused} of {result.chunks_total} chunks reused" if result.chunks_reused else ""
    print(f"wrote {result.out}: {result.n_embedded} embeddings, {len(result.corrupt)} corrupt images skipped{reused}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from hamjepa.inference.export import export_run

    out = export_run(args.run, args.out, force=args.force)
    print(f"wrote {out} (model card: {out / 'README.md'})")
    return 0
