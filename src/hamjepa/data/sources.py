"""In-memory array data sets: the packed ``.npz`` format and the CIFAR-100 download/packer.

The packed format is one ``.npz`` holding ``x_train`` / ``x_test`` (uint8, ``[N, H, W, 3]``, NHWC) and
``y_train`` / ``y_test`` (integer labels ``[N]``), optionally ``fine_names`` (class names). Every loading
problem raises :class:`DataError` with one line that names the file and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hamjepa.errors import HamjepaError

PACK_HINT = "pack it with `hamjepa data cifar100 --root DIR`"


class DataError(HamjepaError):
    """A data set on disk is missing, malformed or unreadable; the message names the file and the fix."""


@dataclass
class ArraySplits:
    """A train/test split held as numpy arrays.

    Attributes:
        x_train: uint8 ``[N_train, H, W, 3]`` (NHWC).
        y_train: int64 ``[N_train]``.
        x_test: uint8 ``[N_test, H, W, 3]``.
        y_test: int64 ``[N_test]``.
        class_names: one name per class index.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        """Number of classes (length of ``class_names``)."""
        return len(self.class_names)


def _check_split(path: Path, x: np.ndarray, y: np.ndarray, xname: str, yname: str) -> None:
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise DataError(
            f"data: {path} key '{xname}' must be uint8 [N,H,W,3], got {x.dtype} {list(x.shape)}; {PACK_HINT}"
        )
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(
            f"data: {path} key '{yname}' must be integer labels [N], got {y.dtype} {list(y.shape)}; {PACK_HINT}"
        )
    if len(x) != len(y):
        raise DataError(f"data: {path} has {len(x)} images in '{xname}' but {len(y)} labels in '{yname}'; {PACK_HINT}")
    if len(y) and y.min() < 0:
        raise DataError(f"data: {path} key '{yname}' has negative labels; {PACK_HINT}")


def load_packed(path: str | Path) -> ArraySplits:
    """Load a packed ``.npz`` (see the module docstring) and validate it.

    Args:
        path: the ``.npz`` file.

    Returns:
        :class:`ArraySplits` with int64 labels. ``class_names`` come from ``fine_names`` when present,
        otherwise ``"0" .. "K-1"`` with ``K = max label + 1``.

    Raises:
        DataError: missing file, missing key, wrong dtype/rank, or image/label count mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data: {path} does not exist; {PACK_HINT} (or set data.path / --data to the packed file)")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"data: {path} is not a readable .npz ({exc}); {PACK_HINT}") from exc
    with archive:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            if key not in archive.files:
                raise DataError(f"data: {path} is missing key '{key}'; {PACK_HINT}")
        x_train, y_train = archive["x_train"], archive["y_train"]
        x_test, y_test = archive["x_test"], archive["y_test"]
        names = [str(n) for n in archive["fine_names"]] if "fine_names" in archive.files else None
    _check_split(path, x_train, y_train, "x_train", "y_train")
    _check_split(path, x_test, y_test, "x_test", "y_test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"data: {path} train images {list(x_train.shape[1:])} and test images "
            f"{list(x_test.shape[1:])} differ in size; {PACK_HINT}"
        )
    num_classes = int(max(y_train.max(initial=-1), y_test.max(initial=-1))) + 1
    if names is None:
        names = [str(i) for i in range(num_classes)]
    elif len(names) < num_classes:
        raise DataError(f"data: {path} has {len(names)} fine_names but labels up to {num_classes - 1}; {PACK_HINT}")
    return ArraySplits(
        x_train=x_train,
        y_train=y_train.astype(np.int64),
        x_test=x_test,
        y_test=y_test.astype(np.int64),
        class_names=names,
    )


def save_packed(splits: ArraySplits, out_path: str | Path) -> Path:
    """Write ``splits`` as a packed ``.npz`` readable by :func:`load_packed`; returns the path."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out_path,
        x_train=np.ascontiguousarray(splits.x_train, dtype=np.uint8),
        y_train=np.asarray(splits.y_train, dtype=np.int64),
        x_test=np.ascontiguousarray(splits.x_test, dtype=np.uint8),
        y_test=np.asarray(splits.y_test, dtype=np.int64),
        fine_names=np.asarray(splits.class_names, dtype=str),
    )
    # np.savez appends .npz when the name lacks it.
    return out_path if out_path.suffix == ".npz" else out_path.with_name(out_path.name + ".npz")


def load_cifar100_torchvision(root: str | Path, download: bool) -> ArraySplits:
    """Read CIFAR-100 (fine labels) through :class:`torchvision.datasets.CIFAR100`.

    Args:
        root: folder holding (or receiving) ``cifar-100-python``.
        download: fetch the archive when it is absent.

    Returns:
        :class:`ArraySplits` with x uint8 ``[50000,32,32,3]`` / ``[10000,32,32,3]``.
    """
    from torchvision.datasets import CIFAR100

    try:
        train = CIFAR100(str(root), train=True, download=download)
        test = CIFAR100(str(root), train=False, download=download)
    except RuntimeError as exc:
        raise DataError(
            f"data: CIFAR-100 not found or corrupt under {root} ({exc}); "
            "run `hamjepa data cifar100 --root DIR` with network access"
        ) from exc
    return ArraySplits(
        x_train=np.asarray(train.data, dtype=np.uint8),
        y_train=np.asarray(train.targets, dtype=np.int64),
        x_test=np.asarray(test.data, dtype=np.uint8),
        y_test=np.asarray(test.targets, dtype=np.int64),
        class_names=list(train.classes),
    )


def pack_cifar100(root: str | Path, out_path: str | Path | None = None, download: bool = True) -> Path:
    """Download (if needed) CIFAR-100 under ``root`` and write the packed ``.npz``.

    Args:
        root: torchvision data folder.
        out_path: destination; defaults to ``root/cifar100.npz``.
        download: allow downloading.

    Returns:
        The written path.
    """
    out = Path(out_path) if out_path is not None else Path(root) / "cifar100.npz"
    return save_packed(load_cifar100_torchvision(root, download=download), out)
