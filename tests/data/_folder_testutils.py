"""Tiny JPEG image folders for the data tests, and the three file faults users meet in real ones."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.io import encode_jpeg


def write_jpeg(path: Path, h: int = 20, w: int = 24, channels: int = 3, seed: int = 0, quality: int = 95) -> None:
    """A random ``h x w`` JPEG (``channels`` 1 or 3) at ``path`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = torch.randint(0, 256, (channels, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    path.write_bytes(encode_jpeg(img, quality=quality).numpy().tobytes())


def make_tree(
    root: Path,
    classes: tuple[str, ...] = ("cat", "dog"),
    per_split: dict[str, int] | None = None,
    h: int = 20,
    w: int = 24,
) -> Path:
    """``root/<split>/<class>/<i>.JPEG`` (default 3 images per class in ``train`` and ``val``); returns ``root``."""
    for split, n in (per_split or {"train": 3, "val": 3}).items():
        for c in classes:
            for i in range(n):
                write_jpeg(root / split / c / f"{i}.JPEG", h=h, w=w, seed=i)
    return root


def break_files(truncated: Path, empty: Path, not_an_image: Path) -> dict[str, Path]:
    """Cut the end off one JPEG, empty another, overwrite a third with text; returns ``{fault: path}``."""
    truncated.write_bytes(truncated.read_bytes()[:-60])
    empty.write_bytes(b"")
    not_an_image.write_bytes(b"<html>404 not found</html>")
    return {"truncated": truncated, "empty": empty, "not an image": not_an_image}
