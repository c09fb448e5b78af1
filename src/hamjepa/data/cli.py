"""``hamjepa data ...`` subcommands: ``hamjepa data cifar100 --root DIR [--out FILE] [--no-download]``."""

from __future__ import annotations

import argparse
import sys

from hamjepa.data.sources import DataError, load_packed, pack_cifar100


def _cifar100(args: argparse.Namespace) -> int:
    try:
        out = pack_cifar100(args.root, args.out, download=not args.no_download)
        splits = load_packed(out)
    except DataError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(
        f"wrote {out}: train {list(splits.x_train.shape)}, test {list(splits.x_test.shape)}, "
        f"{splits.num_classes} classes"
    )
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``data`` command (with the ``cifar100`` sub-command) on ``subparsers``."""
    data = subparsers.add_parser("data", help="download and pack data sets")
    sub = data.add_subparsers(dest="data_command", required=True)
    c = sub.add_parser("cifar100", help="download CIFAR-100 with torchvision and write a packed .npz")
    c.add_argument("--root", required=True, help="torchvision data folder (download target)")
    c.add_argument("--out", default=None, help="output .npz (default: ROOT/cifar100.npz)")
    c.add_argument("--no-download", action="store_true", help="only read an existing download")
    c.set_defaults(func=_cifar100)
