"""``hamjepa reproduce cifar100``, ``hamjepa reproduce imagenet100`` and ``hamjepa reproduce dynamics``."""

from __future__ import annotations

import argparse

from hamjepa.reproduce.methods import available_methods
from hamjepa.reproduce.paper_numbers import paper_methods


def _run_table(args: argparse.Namespace) -> int:
    """``reproduce cifar100`` / ``reproduce imagenet100``: the same driver, the data set set by the subcommand."""
    from hamjepa.reproduce.cifar100 import ReproduceOptions, run_reproduction

    k = getattr(args, "k", None)  # only imagenet100 takes --k
    opts = ReproduceOptions(
        data_path=args.data,
        source=args.source,
        epochs=args.epochs,
        seeds=tuple(args.seeds),
        methods=tuple(args.methods),
        out_dir=args.out,
        overrides=tuple(args.overrides),
        probe_epochs=args.probe_epochs,
        dataset=args.dataset,
        k_values=None if k is None else tuple(k),
    )
    run_reproduction(opts)
    return 0


def _run_cpu_demo(args: argparse.Namespace) -> int:
    from hamjepa.reproduce.cpu_demo import DemoOptions, run_cpu_demo

    opts = DemoOptions(
        data_path=args.data,
        out_dir=args.out,
        methods=tuple(args.methods),
        overrides=tuple(args.overrides),
        progress=not args.no_progress,
    )
    run_cpu_demo(opts)
    return 0


def _add_cpu_demo_parser(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser(
        "cpu-demo",
        help="a CPU-sized check that HamJEPA and SIGReg learn (about 8 minutes on 2 cores)",
        description=(
            "Train HamJEPA and SIGReg (configs/cifar100_<method>.yaml, on a ResNet-18 with the ImageNet stem and "
            "layer2 tokens) on 20,000 CIFAR-100 images for 5 epochs on the CPU, then report kNN@10/20/50 and a "
            "short linear probe for each and for the same encoder at its random initialisation, on the same "
            "10,000 + 10,000 evaluation images, under the token and the standard protocol: learning shows as "
            "numbers above the untrained encoder's. A CPU-scale check, not the paper's protocol. Writes "
            "OUT/table.md and OUT/table.json; finished runs are reused."
        ),
    )
    d.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides applied to every run")
    d.add_argument("--data", required=True, help="packed CIFAR-100 .npz (see `hamjepa data cifar100`)")
    d.add_argument("--out", default="runs/cpu_demo", help="output folder (default runs/cpu_demo)")
    d.add_argument(
        "--methods", nargs="+", default=["hamjepa", "sigreg"], help="methods by config: configs/cifar100_<METHOD>.yaml"
    )
    d.add_argument("--no-progress", action="store_true", help="no progress bars")
    d.set_defaults(func=_run_cpu_demo)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``reproduce`` with its ``cifar100``, ``imagenet100`` and ``dynamics`` targets."""
    p = subparsers.add_parser(
        "reproduce",
        help="reproduce the paper's tables (cifar100, imagenet100, dynamics)",
        description="Train, evaluate and tabulate a paper experiment end to end.",
    )
    sub = p.add_subparsers(dest="target", metavar="TARGET")
    c = sub.add_parser(
        "cifar100",
        help="HamJEPA vs SIGReg vs MLP-HJEPA (and VICReg, VISReg) on CIFAR-100 (docs/spec.md §K.1/§K.2)",
        description=(
            "Train each method with its configs/cifar100_*.yaml (30 epochs by default; --epochs 80 for the "
            "ablation table), evaluate every run, and write OUT/table.md and OUT/table.json with the paper's "
            "numbers beside ours. Finished runs are reused; interrupted ones resume."
        ),
    )
    c.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides applied to every run")
    c.add_argument(
        "--data",
        required=True,
        help="packed CIFAR-100 .npz (see `hamjepa data cifar100`) or, with --source torchvision, its root",
    )
    c.add_argument(
        "--source",
        choices=("packed", "torchvision"),
        default="packed",
        help="read DATA as a packed .npz (default) or as torchvision's CIFAR-100 folder",
    )
    c.add_argument("--epochs", type=int, default=30, help="training epochs per run (default: the paper's 30)")
    c.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        help="seeds (default 0 1 2: the paper reports 3 seeds without naming them)",
    )
    c.add_argument(
        "--methods",
        nargs="+",
        choices=available_methods("cifar100") or None,
        default=list(paper_methods("cifar100")),
        help="methods to train, one per configs/cifar100_<method>.yaml (default: the three rows of Table 1; "
        "vicreg and visreg are the other isotropic regularisers, with no paper number beside them)",
    )
    c.add_argument("--out", default="runs/reproduce_cifar100", help="output folder")
    c.add_argument("--probe-epochs", type=int, default=None, help="linear-probe epochs (default: the paper's 50)")
    c.set_defaults(func=_run_table, dataset="cifar100")
    i = sub.add_parser(
        "imagenet100",
        help="HamJEPA vs SIGReg on ImageNet-100, q/p/qp readouts (docs/spec.md §K.3, the paper's Table 2)",
        description=(
            "Train HamJEPA and SIGReg with configs/imagenet100_*.yaml (45 epochs, 224 px, batch 256 x 2 views; "
            "sized for a GPU server), evaluate every run (resize 256 + centre crop 224; kNN, linear probe and "
            "geometry for the q, p and qp readouts), and write OUT/table.md and OUT/table.json with the paper's "
            "numbers beside ours. Make DATA with `hamjepa data imagenet100 --imagenet ROOT --out DATA` and check "
            "it with `hamjepa data check DATA`. Finished runs are reused; interrupted ones resume. See "
            "docs/RESULTS.md for the measured cost per epoch."
        ),
    )
    i.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides applied to every run")
    i.add_argument("--data", required=True, help="ImageNet-100 folder with train/<wnid>/ and val/<wnid>/")
    i.add_argument("--epochs", type=int, default=45, help="training epochs per run (default: the paper's 45)")
    i.add_argument("--seeds", type=int, nargs="+", default=[42], help="seeds (the paper: one run, seed 42)")
    i.add_argument(
        "--methods",
        nargs="+",
        choices=available_methods("imagenet100") or None,
        default=list(paper_methods("imagenet100")),
        help="methods to train, one per configs/imagenet100_<method>.yaml (default: both rows of Table 2)",
    )
    i.add_argument("--out", default="runs/reproduce_imagenet100", help="output folder")
    i.add_argument("--probe-epochs", type=int, default=None, help="linear-probe epochs (default: the paper's 50)")
    i.add_argument(
        "--k", type=int, nargs="+", default=None, help="kNN k values (default 1 5 10 20 50 100 200; must include 20)"
    )
    i.set_defaults(func=_run_table, dataset="imagenet100", source="folder")
    _add_cpu_demo_parser(sub)
    try:
        from hamjepa.sequences.cli import add_reproduce_dynamics_parser
    except ImportError:  # pragma: no cover - the sequences package is part of the library
        return
    add_reproduce_dynamics_parser(sub)
