"""``hamjepa data ...`` subcommands.

- ``hamjepa data cifar100 --root DIR [--out FILE] [--no-download]``: download and pack CIFAR-100.
- ``hamjepa data imagenet100 --imagenet ROOT --out DIR [--copy]``: make the ImageNet-100 subset.
- ``hamjepa data check DIR``: decode every image file and list the bad ones (exit status 1 when any).
"""

from __future__ import annotations

import argparse
import os
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


def _default_workers() -> int:
    return min(8, os.cpu_count() or 1)


def _imagenet100(args: argparse.Namespace) -> int:
    from hamjepa.data.imagenet100 import make_imagenet100

    report = make_imagenet100(
        args.imagenet,
        args.out,
        copy=args.copy,
        check=not args.no_check,
        num_workers=args.workers,
        progress=not args.no_progress,
    )
    print(report.summary())
    if report.bad:
        print(
            f"{len(report.bad)} file(s) cannot be opened; fix or delete them, or train with data.on_corrupt=skip",
            file=sys.stderr,
        )
        return 1
    print(f"next: hamjepa data check {args.out}  (full decode), then hamjepa reproduce imagenet100 --data {args.out}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from hamjepa.data.check import check_image_folder

    report = check_image_folder(args.dir, num_workers=args.workers, progress=not args.no_progress)
    splits = ", ".join(f"{s}: {n} files in {report.classes[s]} classes" for s, n in report.splits.items())
    for bad in report.bad:
        print(f"bad: {bad.path}: {bad.reason}")
    print(f"checked {report.num_files} files ({splits}): {len(report.bad)} bad")
    return 1 if report.bad else 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``data`` command (``cifar100``, ``imagenet100``, ``check``) on ``subparsers``."""
    data = subparsers.add_parser(
        "data",
        help="download, pack, subset and check data sets",
        description="Prepare data sets: CIFAR-100 (download + pack), the ImageNet-100 subset, and image-folder checks.",
    )
    sub = data.add_subparsers(dest="data_command", required=True)
    c = sub.add_parser("cifar100", help="download CIFAR-100 with torchvision and write a packed .npz")
    c.add_argument("--root", required=True, help="torchvision data folder (download target)")
    c.add_argument("--out", default=None, help="output .npz (default: ROOT/cifar100.npz)")
    c.add_argument("--no-download", action="store_true", help="only read an existing download")
    c.set_defaults(func=_cifar100)

    i = sub.add_parser(
        "imagenet100",
        help="make the ImageNet-100 subset (100 class folders) from your ImageNet",
        description=(
            "Make OUT/train/<wnid>/ and OUT/val/<wnid>/ for the usual ImageNet-100 classes (the CMC list, shipped "
            "with hamjepa) by symlinking (default) or copying the files of your ImageNet. Accepted layouts: "
            "ILSVRC-2012 ROOT/train/<wnid>/*.JPEG with ROOT/val/<wnid>/*.JPEG, or the Kaggle ImageNet-100 "
            "ROOT/train.X1..train.X4/<wnid>/ with ROOT/val.X/<wnid>/. Existing entries are kept, so an interrupted "
            "run can be repeated. Afterwards every file's header is checked; exit status 1 when some cannot be "
            "opened, 2 for a foreign layout or a missing class."
        ),
    )
    i.add_argument("--imagenet", required=True, metavar="ROOT", help="your ImageNet (or Kaggle ImageNet-100) root")
    i.add_argument("--out", required=True, metavar="DIR", help="output root (gets train/ and val/)")
    i.add_argument("--copy", action="store_true", help="copy the files instead of symlinking them")
    i.add_argument("--no-check", action="store_true", help="skip the header check of the files")
    i.add_argument("--workers", type=int, default=_default_workers(), help="processes for the check")
    i.add_argument("--no-progress", action="store_true", help="no progress bars")
    i.set_defaults(func=_imagenet100)

    k = sub.add_parser(
        "check",
        help="decode every image of an image folder and list the bad files",
        description=(
            "Pre-flight check of an ImageFolder data set: decode every image file that training and evaluation "
            "would read (DIR/train and DIR/val, or their Kaggle parts; or DIR itself when it holds class folders), "
            "with a progress bar, and list each file that cannot be decoded (empty, not an image, truncated). "
            "Exit status 0 when all decode, 1 when some do not (delete or replace them, or train with "
            "data.on_corrupt=skip), 2 when DIR is not an image folder."
        ),
    )
    k.add_argument("dir", metavar="DIR", help="data-set root (with train/ and val/) or one split folder")
    k.add_argument("--workers", type=int, default=_default_workers(), help="decoding processes (default: up to 8)")
    k.add_argument("--no-progress", action="store_true", help="no progress bar")
    k.set_defaults(func=_check)
