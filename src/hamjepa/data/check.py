"""Pre-flight checks of image files: decode (or at least open) every file and list the bad ones.

Used by ``hamjepa data check DIR`` (full decode of every file the train and eval streams would read) and by
``hamjepa data imagenet100`` (a fast header check of the subset it made).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torch.utils.data import DataLoader, Dataset

from hamjepa.data.imagefolder import CorruptImageError, ImageFolderSource, decode_rgb, read_image_size
from hamjepa.data.sources import DataError


@dataclass(frozen=True)
class BadFile:
    """A file that cannot be used, and why (one line)."""

    path: Path
    reason: str


def probe_file(path: str | Path, decode: bool = True) -> str | None:
    """Why ``path`` cannot be used as an image, or ``None`` when it can.

    Args:
        path: the file.
        decode: decode the whole image (finds truncated files); ``False`` only reads the header (fast: finds
            empty, missing and non-image files).
    """
    try:
        if decode:
            decode_rgb(path)
        else:
            read_image_size(path)
    except CorruptImageError as exc:
        return exc.reason
    return None


class _Probe(Dataset):
    def __init__(self, paths: Sequence[Path], decode: bool) -> None:
        self.paths, self.decode = list(paths), decode

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> str:
        return probe_file(self.paths[i], self.decode) or ""


def check_files(
    paths: Sequence[str | Path],
    *,
    decode: bool = True,
    num_workers: int = 0,
    progress: bool = True,
    desc: str = "checking images",
) -> list[BadFile]:
    """Probe every file (see :func:`probe_file`) with ``num_workers`` processes and a progress bar.

    Returns:
        The bad files, in the order of ``paths``.
    """
    from tqdm import tqdm

    paths = [Path(p) for p in paths]
    loader = DataLoader(_Probe(paths, decode), batch_size=32, num_workers=num_workers, collate_fn=list, shuffle=False)
    bad: list[BadFile] = []
    done = 0
    with tqdm(total=len(paths), desc=desc, unit="img", disable=not progress, dynamic_ncols=True) as bar:
        for reasons in loader:
            for offset, reason in enumerate(reasons):
                if reason:
                    bad.append(BadFile(paths[done + offset], reason))
            done += len(reasons)
            bar.update(len(reasons))
            bar.set_postfix(bad=len(bad), refresh=False)
    return bad


@dataclass
class FolderCheck:
    """What :func:`check_image_folder` found.

    Attributes:
        splits: split name -> number of image files listed.
        classes: split name -> number of classes.
        bad: the files that cannot be decoded.
    """

    splits: dict[str, int] = field(default_factory=dict)
    classes: dict[str, int] = field(default_factory=dict)
    bad: list[BadFile] = field(default_factory=list)

    @property
    def num_files(self) -> int:
        """Files checked in all splits."""
        return sum(self.splits.values())


def folder_splits(root: str | Path) -> list[ImageFolderSource]:
    """The splits under ``root``: ``train`` / ``val`` (or their Kaggle parts) when present, else ``root``
    itself as one split of class folders.

    Raises:
        DataError: no split and no class folders with images.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data: {root} is not a folder; pass the data-set root (with train/ and val/)")
    names = [s for s in ("train", "val") if (root / s).is_dir() or any(p.is_dir() for p in root.glob(f"{s}.X*"))]
    if names:
        return [ImageFolderSource(root, s) for s in names]
    return [ImageFolderSource(root.parent, root.name)]


def check_image_folder(
    root: str | Path, *, num_workers: int = 0, progress: bool = True, decode: bool = True
) -> FolderCheck:
    """Decode every image file that the train/eval streams would read under ``root``.

    Args:
        root: a data-set root with ``train/`` and ``val/`` (or a single folder of class folders).
        num_workers: decoding processes.
        progress: show a progress bar per split.
        decode: full decode (``False``: header only).
    """
    report = FolderCheck()
    for source in folder_splits(root):
        paths = [p for p, _ in source.samples]
        report.splits[source.split] = len(paths)
        report.classes[source.split] = source.num_classes
        report.bad += check_files(
            paths, decode=decode, num_workers=num_workers, progress=progress, desc=f"checking {source.split}"
        )
    return report
