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


def default_decode_workers() -> int:
    """Image-decoding processes when none are asked for (``hamjepa embed``, ``hamjepa eval --data``):
    ``min(4, CPUs)``."""
    import os

    return min(4, os.cpu_count() or 1)


def split_parts(root: Path, split: str) -> list[Path]:
    """The folders holding ``split``'s class folders: ``root/split`` or the Kaggle parts ``root/split.X*``.

    Raises:
        DataError: neither exists.
    """
    if (root / split).is_dir():
        return [root / split]
    parts = sorted(p for p in root.glob(f"{split}.X*") if p.is_dir())
    if not parts:
        raise DataError(
            f"data: image folder {root / split} does not exist; expected {root}/{split}/<class>/<image> "
            "(check data.path, or the folder given to --data)"
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


class CorruptImageError(DataError):
    """An image file cannot be read or decoded.

    Attributes:
        path: the file.
        reason: one line saying what is wrong (e.g. ``empty file``, ``not an image``, ``truncated``).
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(
            f"data: cannot decode image {path} ({reason}); the file is corrupt or truncated: re-download or "
            "delete it (`hamjepa data check DIR` lists every bad file; data.on_corrupt=skip skips them)"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    # torchvision prefixes its C++ messages with "function, /path/file.cpp:LINE, "; keep the message itself
    line = text.splitlines()[0]
    if "Unsupported image file" in line:
        return "not an image (JPEG, PNG, WebP or GIF expected)"
    return line.rsplit(".cpp:", 1)[-1].split(", ", 1)[-1].strip() if ".cpp:" in line else line


def read_bytes(path: str | Path) -> torch.Tensor:
    """The file's bytes as a uint8 ``[n]`` tensor.

    Raises:
        CorruptImageError: the file cannot be read or is empty.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CorruptImageError(path, f"unreadable: {exc.strerror or type(exc).__name__}") from exc
    if not data:
        raise CorruptImageError(path, "empty file")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def decode_rgb_bytes(data: torch.Tensor, path: str | Path) -> torch.Tensor:
    """Decode encoded image bytes (uint8 ``[n]``) to uint8 ``[3, H, W]`` RGB; ``path`` names it in errors.

    Raises:
        CorruptImageError: the bytes are not a decodable image.
    """
    from torchvision.io import ImageReadMode, decode_image

    try:
        with warnings.catch_warnings():
            # torchvision 0.29 flags torchvision.io as deprecated in favour of torchcodec (not a
            # dependency here); the decoders still work, so the per-call warning is silenced.
            warnings.simplefilter("ignore", DeprecationWarning)
            return decode_image(data, mode=ImageReadMode.RGB)
    except (RuntimeError, OSError, ValueError) as exc:
        raise CorruptImageError(path, _first_line(exc)) from exc


def decode_rgb(path: str | Path) -> torch.Tensor:
    """Decode one image file to uint8 ``[3, H, W]`` RGB (grayscale/CMYK are converted).

    Raises:
        CorruptImageError: the file cannot be read or decoded (empty, not an image, corrupt or truncated).
    """
    return decode_rgb_bytes(read_bytes(path), path)


def _header(file: object, path: str | Path) -> tuple[int, int, bool]:
    """``(height, width, is_jpeg)`` of an open-able image (a path or a file object), from its header (PIL)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as im:  # type: ignore[arg-type]
            width, height = im.size
            return int(height), int(width), im.format == "JPEG"
    except UnidentifiedImageError as exc:
        raise CorruptImageError(path, "not an image") from exc
    except (OSError, ValueError) as exc:
        raise CorruptImageError(path, _first_line(exc)) from exc


def header_size(data: torch.Tensor, path: str | Path) -> tuple[int, int, bool]:
    """``(height, width, is_jpeg)`` from the header of encoded bytes (uint8 ``[n]``; no pixel decoding).

    Raises:
        CorruptImageError: not an image PIL recognises.
    """
    import io

    return _header(io.BytesIO(data.numpy().tobytes()), path)


def read_image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` from the file's header only (no pixel decoding; PIL).

    Raises:
        CorruptImageError: the file is missing, empty or not an image PIL recognises.
    """
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        raise CorruptImageError(path, "empty file")
    height, width, _ = _header(path, path)
    return height, width


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
            raise DataError(
                f"data: image-folder root {self.root} does not exist (check data.path, or the folder given to --data)"
            )
        parts = split_parts(self.root, split)
        classes: list[str] | None = None
        pairs: list[tuple[Path, str]] = []
        for part in parts:
            part_classes, part_files = _list_part(part)
            if classes is not None and part_classes != classes:
                raise DataError(
                    f"data: {part} lists different class folders than {parts[0]}; merge the parts into one "
                    "train/ folder (`hamjepa data imagenet100 --imagenet ROOT --out DIR` does it for ImageNet-100)"
                )
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
