"""CLI of the dynamics benchmark: the ``dynamics`` sub-subcommand of ``hamjepa reproduce``.

The lead owns the ``reproduce`` group; it calls :func:`add_reproduce_dynamics_parser` with the group's
sub-parsers object::

    hamjepa reproduce dynamics --out runs/dynamics --seeds 0 1 2 --tasks sine lorenz halves
"""

from __future__ import annotations

import argparse
from typing import Any

METHODS = ("jepa", "bijepa", "hamjepa")
TASKS = ("sine", "lorenz", "halves")
# :data:`hamjepa.sequences.benchmark.METHODS` / ``TASKS`` (a test keeps them equal), written out so that
# ``--help`` does not import torch.

__all__ = ["add_reproduce_dynamics_parser", "handle_reproduce_dynamics"]


def add_reproduce_dynamics_parser(reproduce_subparsers: Any) -> argparse.ArgumentParser:
    """Register ``dynamics`` on the ``reproduce`` group's sub-parsers; returns the new parser."""
    parser = reproduce_subparsers.add_parser(
        "dynamics",
        help="JEPA vs BiJEPA vs HamJEPA on sine waves, Lorenz trajectories and Fashion-MNIST halves (CPU)",
        description=(
            "Train classic JEPA (alpha=1), BiJEPA (alpha=0.5) and HamJEPA on the BiJEPA paper's dynamics "
            "tasks with several seeds, apply the paper's probes, and write results.md (mean ± std with the "
            "paper's numbers), results.json and forecast plots."
        ),
    )
    parser.add_argument("--out", default="runs/reproduce_dynamics", help="output directory")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS), help="tasks to run")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="methods")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every task's training steps (e.g. 0.1 for a smoke run)"
    )
    parser.add_argument("--workers", type=int, default=2, help="parallel worker processes")
    parser.add_argument("--threads-per-worker", type=int, default=1, help="torch threads per worker")
    parser.add_argument(
        "--norm-mode",
        choices=("expressive", "restrictive", "none"),
        default="expressive",
        help="BiJEPA norm mode of encoders and (Bi)JEPA predictors",
    )
    parser.add_argument(
        "--fashion-mnist-root",
        default=None,
        help="directory with the Fashion-MNIST idx files "
        "(default /usr/share/datasets/fashion-mnist, Debian package dataset-fashion-mnist)",
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="download Fashion-MNIST with torchvision into --fashion-mnist-root if missing",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the figures")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=handle_reproduce_dynamics)
    return parser


def handle_reproduce_dynamics(args: argparse.Namespace) -> int:
    """Run :func:`~hamjepa.sequences.reproduce.reproduce_dynamics` from parsed arguments; prints the table."""
    from hamjepa.sequences.reproduce import reproduce_dynamics

    if args.download and args.fashion_mnist_root is None:
        raise SystemExit("--download needs --fashion-mnist-root DIR (where to put the files)")
    result = reproduce_dynamics(
        args.out,
        seeds=args.seeds,
        tasks=args.tasks,
        methods=args.methods,
        scale=args.scale,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        norm_mode=args.norm_mode,
        fashion_mnist_root=args.fashion_mnist_root,
        download=args.download,
        progress=not args.no_progress,
        plots=not args.no_plots,
    )
    print(result["table"])
    for name, path in result["files"].items():
        print(f"{name}: {path}")
    return 0
