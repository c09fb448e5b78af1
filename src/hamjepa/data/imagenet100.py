"""Make the ImageNet-100 subset from a user's ImageNet (``hamjepa data imagenet100``).

The class list ships with the package (``imagenet100_classes.txt``): the usual ImageNet-100 subset of
Contrastive Multiview Coding (Tian et al., 2019; the list published in the CMC repository's issue 21), the
one solo-learn and most self-supervised papers use; the HamJEPA paper does not name its classes. See the
file's header for the provenance.

Accepted source layouts (docs/spec.md §A.1):

- ILSVRC-2012 in ImageFolder form: ``ROOT/train/<wnid>/*.JPEG`` and ``ROOT/val/<wnid>/*.JPEG`` (the official
  val archive is flat; sort it into class folders first, e.g. with the widely used ``valprep.sh``);
- the Kaggle ImageNet-100 layout: ``ROOT/train.X1 .. train.X4/<wnid>/`` and ``ROOT/val.X/<wnid>/`` (the parts
  are merged; a class may be in any part).

The output is ``OUT/train/<wnid>/`` and ``OUT/val/<wnid>/`` holding symlinks to the source files (or copies
with ``copy=True``). Existing entries are kept, so an interrupted run can be repeated.
"""

from __future__ import annotations

import os
import shutil
import statistics
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from hamjepa.data.check import BadFile, check_files
from hamjepa.data.imagefolder import IMAGE_EXTENSIONS
from hamjepa.data.imagefolder import split_parts as folder_split_parts
from hamjepa.data.sources import DataError

SPLITS = ("train", "val")


def imagenet100_classes() -> list[str]:
    """The 100 WordNet ids of ImageNet-100, in the shipped file's order."""
    text = resources.files("hamjepa.data").joinpath("imagenet100_classes.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _expected_layout(root: Path) -> str:
    return (
        f"expected {root}/train/<wnid>/*.JPEG and {root}/val/<wnid>/*.JPEG (ILSVRC-2012, val sorted into class "
        f"folders) or the Kaggle ImageNet-100 layout {root}/train.X1..train.X4/<wnid>/ and {root}/val.X/<wnid>/"
    )


def split_parts(root: str | Path, split: str) -> list[Path]:
    """:func:`hamjepa.data.imagefolder.split_parts`, with an error naming the ImageNet layouts accepted.

    Raises:
        DataError: neither ``root/split`` nor ``root/split.X*`` exists.
    """
    root = Path(root)
    try:
        return folder_split_parts(root, split)
    except DataError:
        raise DataError(f"data: no {split} split under {root}; {_expected_layout(root)}") from None


def _class_images(parts: list[Path], wnid: str) -> list[Path]:
    images: list[Path] = []
    for part in parts:
        cdir = part / wnid
        if cdir.is_dir():
            images += [f for f in cdir.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file()]
    return sorted(images, key=lambda f: f.name)


@dataclass
class SubsetReport:
    """What :func:`make_imagenet100` made and found.

    Attributes:
        out: the output root.
        counts: split -> wnid -> number of images.
        bad: files that cannot be opened as images (header check).
        linked: entries created now (the rest existed already).
    """

    out: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    bad: list[BadFile] = field(default_factory=list)
    linked: int = 0

    def summary(self) -> str:
        """A few lines: classes and images per split, per-class min/median/max, and bad files."""
        lines = [f"ImageNet-100 subset in {self.out}"]
        for split, per_class in self.counts.items():
            n = list(per_class.values())
            lines.append(
                f"  {split}: {len(n)} classes, {sum(n)} images (per class min {min(n)}, median "
                f"{statistics.median(n):g}, max {max(n)})"
            )
        lines.append(f"  {self.linked} entries made now; {len(self.bad)} unreadable file(s)")
        lines += [f"  bad: {b.path}: {b.reason}" for b in self.bad]
        return "\n".join(lines)


def _place(src: Path, dst: Path, copy: bool) -> bool:
    if dst.is_symlink() or dst.exists():
        return False
    if copy:
        shutil.copy2(src, dst)
    else:
        os.symlink(src.resolve(), dst)
    return True


def make_imagenet100(
    imagenet: str | Path,
    out: str | Path,
    *,
    copy: bool = False,
    classes: list[str] | None = None,
    check: bool = True,
    num_workers: int = 0,
    progress: bool = True,
) -> SubsetReport:
    """Make ``out/train/<wnid>/`` and ``out/val/<wnid>/`` for the ImageNet-100 classes of ``imagenet``.

    Args:
        imagenet: the source root (see the module docstring for the accepted layouts).
        out: the output root (created; existing entries are kept).
        copy: copy the files instead of symlinking them.
        classes: the wnids to take (default: :func:`imagenet100_classes`).
        check: open every file of the subset (header only) and report the unreadable ones.
        num_workers: processes for the check.
        progress: show progress bars.

    Returns:
        The :class:`SubsetReport`; ``report.bad`` lists unreadable files (the caller decides to fail).

    Raises:
        DataError: a foreign layout, or a class missing (or empty) in a split; the message names what was
            expected.
    """
    from tqdm import tqdm

    imagenet, out = Path(imagenet).expanduser(), Path(out).expanduser()
    wnids = list(classes) if classes is not None else imagenet100_classes()
    if not imagenet.is_dir():
        raise DataError(f"data: ImageNet root {imagenet} does not exist; {_expected_layout(imagenet)}")
    if out.resolve() == imagenet.resolve():
        raise DataError(f"data: --out {out} is the ImageNet root itself; choose a new folder")
    listing: dict[str, dict[str, list[Path]]] = {}
    for split in SPLITS:
        parts = split_parts(imagenet, split)
        if split == "val" and not any(p.is_dir() for part in parts for p in part.iterdir()):
            raise DataError(
                f"data: {parts[0]} has no class folders (the official ILSVRC-2012 val archive is flat); sort it "
                f"into {parts[0]}/<wnid>/ first; {_expected_layout(imagenet)}"
            )
        listing[split] = {w: _class_images(parts, w) for w in wnids}
        missing = [w for w, files in listing[split].items() if not files]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise DataError(
                f"data: {len(missing)} of the {len(wnids)} ImageNet-100 classes have no images in the {split} "
                f"split under {imagenet} ({shown}); {_expected_layout(imagenet)}"
            )
    existing = {d.name for s in SPLITS if (out / s).is_dir() for d in (out / s).iterdir() if d.is_dir()}
    extra = sorted(existing - set(wnids))
    if extra:
        raise DataError(
            f"data: {out} holds class folders outside ImageNet-100 ({', '.join(extra[:5])}); use an empty --out"
        )
    report = SubsetReport(out=out)
    made: list[Path] = []
    for split in SPLITS:
        total = sum(len(v) for v in listing[split].values())
        with tqdm(total=total, desc=f"{'copying' if copy else 'linking'} {split}", disable=not progress) as bar:
            for wnid, files in listing[split].items():
                dst_dir = out / split / wnid
                dst_dir.mkdir(parents=True, exist_ok=True)
                for f in files:
                    report.linked += _place(f, dst_dir / f.name, copy)
                    made.append(dst_dir / f.name)
                bar.update(len(files))
        report.counts[split] = {
            w: sum(1 for f in (out / split / w).iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS) for w in wnids
        }
    if check:
        report.bad = check_files(made, decode=False, num_workers=num_workers, progress=progress, desc="checking")
    return report
