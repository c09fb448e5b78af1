"""``hamjepa eval`` and ``hamjepa compare`` subcommands.

``eval`` loads a run with :func:`hamjepa.engine.checkpoint.load_run` (run folder or checkpoint file) and
its eval data with :func:`hamjepa.data.build_eval_data_from_config` (both imported lazily), then runs
:func:`hamjepa.evaluation.evaluate`. Output goes to ``--out`` or, by default, ``RUN_DIR/eval`` where
``RUN_DIR`` is the given folder, or for a checkpoint file ``.../RUN_DIR/checkpoints/x.pt`` its run folder.
With ``--data`` it evaluates on another data set instead (:func:`hamjepa.inference.transfer.evaluate_transfer`,
default output ``RUN_DIR/eval_<name>``), a step the inference layer's CLI sets on this parser.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hamjepa.errors import HamjepaError


def add_parser(subparsers: Any) -> None:
    """Register ``eval`` and ``compare`` on an ``argparse`` subparsers object."""
    p = subparsers.add_parser("eval", help="frozen-feature evaluation (kNN, linear probe, geometry) of a run")
    p.add_argument("path", metavar="RUN_DIR_OR_CHECKPOINT", help="run folder or checkpoint .pt file")
    p.add_argument("--device", default=None, help="torch device (default: cuda if present, else cpu)")
    p.add_argument("--probe-epochs", type=int, default=50, help="linear-probe epochs (default 50)")
    p.add_argument(
        "--k",
        type=int,
        nargs="+",
        default=None,
        help="kNN sweep (default 1 5 10 20 50 100 200, without the k larger than the train set)",
    )
    p.add_argument("--weighted-knn", action="store_true", help="vote with exp(sim/T), T=0.07 (default: majority)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for feature extraction (default fp32)")
    p.add_argument(
        "--split-qp",
        choices=("auto", "on", "off"),
        default="auto",
        help="readouts q/p/qp (on) or z (off); auto reads the encoder's split_qp attribute or the config",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--out", type=Path, default=None, help="output folder (default RUN_DIR/eval)")
    transfer = p.add_argument_group(
        "transfer evaluation",
        "evaluate the frozen encoder on another labelled data set instead of the run's own "
        "(RUN may also be an export folder); images get the run's resize / crop / normalisation",
    )
    transfer.add_argument(
        "--data",
        default=None,
        metavar="NPZ_OR_DIR",
        help="packed .npz (e.g. CIFAR-10) or folder with train/ and val/ (or test/)",
    )
    transfer.add_argument("--data-name", default=None, help="name in the report (default: file stem / folder name)")
    transfer.add_argument("--subset", type=int, default=None, help="stratified slice of N images per split")
    transfer.add_argument("--batch-size", type=int, default=None, help="feature-extraction batch (default 256)")
    transfer.add_argument(
        "--workers", type=int, default=None, help="JPEG decoding workers for folders (default min(4, CPUs), as embed)"
    )
    p.set_defaults(
        func=run_eval,
        interrupt_hint="run the same `hamjepa eval` command again (it starts over; metrics.json is written at the end)",
    )

    c = subparsers.add_parser(
        "compare",
        help="compare evaluated runs: one Markdown table and one overlay figure",
        description=(
            "Read the metrics.json of each evaluated run (RUN_DIR/eval, or RUN_DIR/eval_<data set> written by "
            "`hamjepa eval RUN --data ...`) and write OUT/compare.md, one table with the method, run, data set, "
            "readout, NN@20, best kNN, linear probe and geometry of each, and OUT/compare.png, the kNN sweeps and "
            "spectra overlaid. Every RUN_DIR must have been evaluated (`hamjepa eval RUN_DIR`)."
        ),
        epilog="Example: hamjepa compare runs/cifar100_hamjepa-seed42 runs/cifar100_lejepa-seed42",
    )
    c.add_argument(
        "runs",
        metavar="RUN_DIR",
        nargs="+",
        type=Path,
        help="run folders holding eval/metrics.json, or their eval_<data set> folders",
    )
    c.add_argument("--out", type=Path, default=None, help="output folder (default runs/compare)")
    c.set_defaults(func=run_compare)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _find_split_qp(encoder: Any, config: dict[str, Any]) -> bool | None:
    flag = getattr(encoder, "split_qp", None)
    if isinstance(flag, bool):
        return flag
    for section in ("model", "encoder"):
        sec = config.get(section)
        if isinstance(sec, dict) and isinstance(sec.get("split_qp"), bool):
            return sec["split_qp"]
    return None


def _dataset_name(config: dict[str, Any]) -> str | None:
    data = config.get("data")
    if isinstance(data, dict):
        for key in ("name", "dataset"):
            if isinstance(data.get(key), str):
                return data[key]
    return None


def _default_out(checkpoint_path: Path, given: Path) -> Path:
    if given.is_dir():
        return given / "eval"
    from hamjepa.engine.checkpoint import run_dir_of

    return run_dir_of(checkpoint_path) / "eval"


def evaluate_run(
    path: str | Path,
    *,
    out: Path | None = None,
    device: str | None = None,
    options: Any = None,
    split_qp: str = "auto",
) -> dict[str, Any]:
    """Evaluate a run folder or checkpoint with its own config's eval data; returns the metrics dict.

    Args:
        path: run folder (its ``checkpoints/last.pt``) or a checkpoint file.
        out: output folder (default ``RUN_DIR/eval``).
        device: torch device (default: CUDA when present).
        options: :class:`~hamjepa.evaluation.pipeline.EvalOptions` (default: the paper's protocol).
        split_qp: ``auto`` (from the encoder / config), ``on`` (q, p, qp readouts) or ``off`` (z).
    """
    from hamjepa.data import build_eval_data_from_config
    from hamjepa.engine.checkpoint import EXPORT_MANIFEST_NAME, load_run

    from .pipeline import evaluate, objective_readouts

    if (Path(path) / EXPORT_MANIFEST_NAME).is_file():
        raise HamjepaError(
            f"eval: {path} is an export folder (hamjepa export); exports are evaluated on a data set given with "
            f"--data, e.g. `hamjepa eval {path} --data DATA/cifar100.npz` (a packed .npz or a train/ + val/ folder)"
        )
    run = load_run(path)
    config = dict(run.config)
    if split_qp == "auto":
        flag = _find_split_qp(run.encoder, config)
        if flag is None:
            raise ValueError("eval: cannot tell whether the encoder splits z into q/p; pass --split-qp on|off")
    else:
        flag = split_qp == "on"
    dev = device or ("cuda" if _cuda() else "cpu")
    return evaluate(
        run.encoder,
        build_eval_data_from_config(config),
        split_qp=flag,
        out_dir=out or _default_out(Path(run.checkpoint_path), Path(path)),
        device=dev,
        options=options,
        checkpoint=str(run.checkpoint_path),
        config=config,
        dataset=_dataset_name(config),
        extra_readouts=objective_readouts(run.objective, dev),
    )


def run_eval(args: argparse.Namespace) -> int:
    from .pipeline import EvalOptions

    options = EvalOptions(
        k_values=None if args.k is None else tuple(args.k),
        knn_weighted=args.weighted_knn,
        probe_epochs=args.probe_epochs,
        feature_dtype="bf16" if args.bf16 else "fp32",
        progress=not args.no_progress,
    )
    transfer_only = {
        "--data-name": "data_name",
        "--subset": "subset",
        "--batch-size": "batch_size",
        "--workers": "workers",
    }
    if getattr(args, "data", None) is None:
        given = [flag for flag, key in transfer_only.items() if getattr(args, key, None) is not None]
        if given:
            raise HamjepaError(f"eval: {', '.join(given)} only apply with --data NPZ_OR_DIR; add --data or drop them")
    else:
        from hamjepa.data.imagefolder import default_decode_workers

        args.evaluate_transfer(  # supplied by hamjepa.inference.cli: evaluation never imports inference
            args.path,
            args.data,
            name=args.data_name,
            out=args.out,
            device=args.device,
            options=options,
            split_qp=args.split_qp,
            subset=args.subset,
            batch_size=args.batch_size or 256,
            num_workers=default_decode_workers() if args.workers is None else args.workers,
        )
        return 0
    evaluate_run(args.path, out=args.out, device=args.device, options=options, split_qp=args.split_qp)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from .compare import DEFAULT_OUT, compare_runs

    out = args.out or DEFAULT_OUT
    table = compare_runs(args.runs, out)
    print(table, end="")
    print(f"wrote {out / 'compare.md'} and {out / 'compare.png'}")
    return 0
