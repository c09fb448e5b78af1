"""ImageFolder-layout data (``root/train/<class>/*.JPEG``, ``root/val/<class>/*``), decoded with
torchvision.io.

Listing is validated up front (missing split folder, no class folders, an empty class folder) and decoding
failures (corrupt or truncated files) raise :class:`~hamjepa.data.sources.DataError` naming the file.
The Kaggle ImageNet-100 layout (``train.X1 .. train.X4``, ``val.X``) is accepted too: the parts are
concatenated and must list the same classes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from hamjepa.data.sources import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")


def _split_parts(root: Path, split: str) -> list[Path]:
    if (root / split).is_dir():
        return [root / split]
    parts = sorted(p for p in root.glob(f"{split}.X*") if p.is_dir())
    if not parts:
        raise DataError(
            f"data: image folder {root / split} does not exist; expected {root}/{split}/<class>/<image> "
            f"(check --data-root)"
        )
    return parts


def _list_part(part: Path) -> tuple[list[str], list[tuple[Path, str]]]:
    class_dirs = sorted(d for d in part.iterdir() if d.is_dir())
    if not class_dirs:
        raise DataError(f"data: {part} has no class folders; expected {part}/<class>/<image>")
    files: list[tuple[Path, str]] = []
    for cdir in class_dirs:
        images = sorted(f for f in cdir.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        if not images:
            raise DataError(
                f"data: class folder {cdir} holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
                "remove it or add its images"
            )
        files.extend((f, cdir.name) for f in images)
    return [d.name for d in class_dirs], files


def decode_rgb(path: str | Path) -> torch.Tensor:
    """Decode one image file to uint8 ``[3, H, W]`` RGB (grayscale/CMYK are converted).

    Raises:
        DataError: the file cannot be read or decoded (corrupt or truncated).
    """
    from torchvision.io import ImageReadMode, decode_image, read_file

    try:
        with warnings.catch_warnings():
            # torchvision 0.29 flags torchvision.io as deprecated in favour of torchcodec (not a
            # dependency here); the decoders still work, so the per-call warning is silenced.
            warnings.simplefilter("ignore", DeprecationWarning)
            data = read_file(str(path))
            image = decode_image(data, mode=ImageReadMode.RGB)
    except (RuntimeError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"data: cannot decode image {path} ({first}); the file is corrupt or truncated: re-download or delete it"
        ) from exc
    return image


class ImageFolderSource:
    """A validated listing of one split of an ImageFolder tree.

    Args:
        root: the data-set root holding ``train/`` and ``val/`` (or ``train.X*`` / ``val.X``).
        split: sub-folder name, e.g. ``"train"`` or ``"val"``.
        class_names: force this class order (e.g. the train split's) — the split must have exactly these
            class folders; ``None`` uses the sorted folder names.

    Attributes:
        classes: class folder names; the label is the index in this list.
        samples: ``(path, label)`` pairs, sorted by class then file name.
        targets: int64 ``[N]`` labels.
    """

    def __init__(self, root: str | Path, split: str, class_names: list[str] | None = None) -> None:
        self.root = Path(root)
        self.split = split
        if not self.root.is_dir():
            raise DataError(f"data: image-folder root {self.root} does not exist (check --data-root)")
        parts = _split_parts(self.root, split)
        classes: list[str] | None = None
        pairs: list[tuple[Path, str]] = []
        for part in parts:
            part_classes, part_files = _list_part(part)
            if classes is not None and part_classes != classes:
                raise DataError(f"data: {part} lists different class folders than {parts[0]}; fix the layout")
            classes = part_classes
            pairs.extend(part_files)
        assert classes is not None
        if class_names is not None:
            if sorted(class_names) != sorted(classes):
                raise DataError(
                    f"data: {parts[0]} has class folders different from the expected {len(class_names)} "
                    "classes (train and val must hold the same class folders)"
                )
            classes = list(class_names)
        index = {c: i for i, c in enumerate(classes)}
        self.classes: list[str] = classes
        self.samples: list[tuple[Path, int]] = [(p, index[c]) for p, c in pairs]
        self.samples.sort(key=lambda s: (s[1], s[0].name))
        self.targets = torch.tensor([lab for _, lab in self.samples], dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def decode(self, index: int) -> torch.Tensor:
        """Decode sample ``index`` to uint8 ``[3, H, W]`` RGB."""
        return decode_rgb(self.samples[index][0])
