"""``hamjepa embed``: embeddings of a folder (or glob) of images, chunked so a killed job restarts cheaply.

The images are listed once (sorted). A folder whose sub-folders all hold images (and which holds none
itself) is an ImageFolder: the sub-folder names are the classes and every image gets its label. Any other
folder is searched recursively; a glob pattern (``"photos/**/*.jpg"``) is expanded as given.

Work is split into chunks of ``chunk_size`` images; each finished chunk is written atomically to
``OUT.partial/chunk_XXXXXX.npz`` and skipped when the same command runs again. The final file is assembled
from the chunks, written atomically, and the ``.partial`` folder removed. Images that cannot be decoded are
listed (on stderr and in the output) and skipped, never silently dropped.

Output (``.npz``): ``embeddings`` float32 ``[N, d]``, ``files`` (names relative to the folder, as listed),
``labels`` int64 ``[N]`` and ``classes`` (ImageFolder only), ``corrupt_files``, ``corrupt_errors``,
``readout``. Output (``.npy``): the embeddings; the same lists go to ``OUT.json`` beside it.
"""

from __future__ import annotations

import glob
import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from hamjepa.atomic_files import atomic_write
from hamjepa.data.imagefolder import IMAGE_EXTENSIONS, CorruptImageError, decode_rgb
from hamjepa.inference.model import HamjepaModel, InferenceError
from hamjepa.inference.preprocess import EvalPreprocess
from hamjepa.numerics import full_fp32_matmuls

__all__ = ["EmbedResult", "ImageList", "embed_images", "list_images"]

JOB_FORMAT = 1


@dataclass
class ImageList:
    """Files to embed, with labels when they come from an ImageFolder.

    Attributes:
        root: the folder names are relative to (None for a glob: names are the paths as matched).
        files: image paths, sorted.
        labels: class index per file (ImageFolder), else None.
        classes: class names (ImageFolder), else None.
    """

    root: Path | None
    files: list[Path]
    labels: list[int] | None = None
    classes: list[str] | None = None

    def names(self) -> list[str]:
        """Display / output names: relative to :attr:`root` (POSIX separators)."""
        if self.root is None:
            return [f.as_posix() for f in self.files]
        return [f.relative_to(self.root).as_posix() for f in self.files]


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def _say_why_unlabelled(root: Path, stray: list[Path], empty: list[Path]) -> None:
    """Warn (stderr) that a tree with class folders is embedded without labels, and why."""
    reasons = []
    if stray:
        reasons.append(f"{len(stray)} image(s) sit beside the class folders (first: {stray[0].name})")
    if empty:
        reasons.append(f"{len(empty)} sub-folder(s) hold no image (first: {empty[0].name})")
    print(
        f"embed: {root} is not an ImageFolder tree because {' and '.join(reasons)}: every image is embedded "
        "WITHOUT labels; move the images into class folders (and remove empty ones) to keep labels",
        file=sys.stderr,
    )


def list_images(spec: str | Path) -> ImageList:
    """List the images of a folder, an ImageFolder tree, or a glob pattern (see the module docstring)."""
    path = Path(spec)
    if path.is_dir():
        direct = sorted(p for p in path.iterdir() if _is_image(p))
        subdirs = sorted(d for d in path.iterdir() if d.is_dir())
        per_class = [sorted(p for p in d.iterdir() if _is_image(p)) for d in subdirs]
        if not direct and subdirs and all(per_class):
            files = [f for images in per_class for f in images]
            labels = [label for label, images in enumerate(per_class) for _ in images]
            return ImageList(root=path, files=files, labels=labels, classes=[d.name for d in subdirs])
        if subdirs and any(per_class):
            _say_why_unlabelled(path, direct, [d for d, images in zip(subdirs, per_class, strict=True) if not images])
        files = sorted(p for p in path.rglob("*") if _is_image(p))
        if not files:
            raise InferenceError(f"embed: no images ({', '.join(IMAGE_EXTENSIONS)}) under {path}")
        return ImageList(root=path, files=files)
    matches = sorted(Path(m) for m in glob.glob(str(spec), recursive=True) if Path(m).is_file())
    if not matches:
        raise InferenceError(f"embed: {spec} is neither a folder nor a glob matching files; check --images")
    return ImageList(root=None, files=matches)


class _DecodeChunk(Dataset):
    """Decode + resize + crop one file -> ``(index, uint8 [3, c, c] or None, error or "")``."""

    def __init__(self, files: list[Path], indices: range, preprocess: EvalPreprocess) -> None:
        self.files, self.indices, self.preprocess = files, indices, preprocess

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str]:
        index = self.indices[i]
        try:
            image = decode_rgb(self.files[index])
        except CorruptImageError as err:  # the reason only: the training advice in str(err) means nothing here
            return index, None, f"cannot decode ({err.reason})"
        return index, self.preprocess.geometry(image), ""


def _keep_lists(batch: list[tuple[int, torch.Tensor | None, str]]) -> list[tuple[int, torch.Tensor | None, str]]:
    return batch


@dataclass
class EmbedResult:
    """What :func:`embed_images` wrote.

    Attributes:
        out: the output file.
        n_embedded: images embedded.
        corrupt: ``(name, error)`` of every image skipped because it could not be decoded.
        chunks_total, chunks_reused: chunks in the job, and those found finished from an earlier attempt.
    """

    out: Path
    n_embedded: int
    corrupt: list[tuple[str, str]]
    chunks_total: int
    chunks_reused: int


def _atomic_npz(path: Path, **arrays: np.ndarray) -> None:
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def _write_chunk(path: Path, embeddings: np.ndarray, index: np.ndarray, corrupt: np.ndarray, errors: list[str]):
    _atomic_npz(path, embeddings=embeddings, index=index, corrupt=corrupt, errors=np.array(errors, dtype=str))


def _read_chunk(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {k: archive[k] for k in ("embeddings", "index", "corrupt", "errors")}
    except (OSError, ValueError, KeyError):
        return None  # a damaged chunk is recomputed


def _job_identity(model: HamjepaModel, names: list[str], readout: str, chunk_size: int) -> dict[str, Any]:
    import hashlib

    return {
        "format": JOB_FORMAT,
        "model": str(Path(model.info.get("checkpoint", model.source)).resolve()),
        "epoch": model.epoch,
        "step": model.step,
        "readout": readout,
        "chunk_size": chunk_size,
        "n_files": len(names),
        "files_sha256": hashlib.sha256("\n".join(names).encode()).hexdigest(),
    }


def _chunk_batches(
    model: HamjepaModel, files: list[Path], indices: range, batch_size: int, num_workers: int
) -> Iterator[list[tuple[int, torch.Tensor | None, str]]]:
    ds = _DecodeChunk(files, indices, model.preprocess)
    yield from DataLoader(ds, batch_size=batch_size, num_workers=num_workers, collate_fn=_keep_lists)


def embed_images(
    model: HamjepaModel,
    images: ImageList,
    out: str | Path,
    *,
    readout: str | None = None,
    batch_size: int = 256,
    chunk_size: int = 4096,
    num_workers: int = 0,
    progress: bool = True,
) -> EmbedResult:
    """Embed ``images`` with ``model`` into ``out`` (``.npz`` or ``.npy``), restartable by chunks.

    Args:
        model: from :func:`hamjepa.load`.
        images: from :func:`list_images`.
        out: output file; ``OUT.partial/`` holds finished chunks until the job completes.
        readout: ``q`` / ``p`` / ``qp`` / ``z`` (None = the whole embedding).
        batch_size: images per forward pass.
        chunk_size: images per restart unit.
        num_workers: DataLoader processes decoding images.
        progress: tqdm bar over images.
    """
    out = Path(out)
    if out.suffix not in (".npz", ".npy"):
        raise InferenceError(f"embed: --out must end in .npz or .npy, got {out}")
    if batch_size < 1 or chunk_size < 1:
        raise InferenceError(f"embed: batch and chunk sizes must be >= 1, got {batch_size} and {chunk_size}")
    name = model.check_readout(readout)
    names = images.names()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    identity = _job_identity(model, names, name, chunk_size)
    job_file = partial / "job.json"
    if partial.is_dir() and job_file.is_file() and json.loads(job_file.read_text()) != identity:
        raise InferenceError(
            f"embed: {partial} holds chunks of a different job (model, images, readout or chunk size differ); "
            "delete it or rerun the original command"
        )
    partial.mkdir(exist_ok=True)
    job_file.write_text(json.dumps(identity, indent=2) + "\n")

    n = len(names)
    starts = list(range(0, n, chunk_size))
    chunk_files = [partial / f"chunk_{i:06d}.npz" for i in range(len(starts))]
    done = {i for i, f in enumerate(chunk_files) if f.is_file() and _read_chunk(f) is not None}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        reused_images = sum(min(chunk_size, n - starts[i]) for i in done)
        bar = tqdm(total=n, initial=reused_images, desc=f"embed ({name})", unit="img")
    try:
        with full_fp32_matmuls():
            for i, start in enumerate(starts):
                if i in done:
                    continue
                embs, index, corrupt, errors = [], [], [], []
                for batch in _chunk_batches(model, images.files, range(start, min(start + chunk_size, n)),
                                            batch_size, num_workers):  # fmt: skip
                    good = [(j, img) for j, img, _ in batch if img is not None]
                    for j, img, err in batch:
                        if img is None:
                            corrupt.append(j)
                            errors.append(err)
                    if good:
                        x = model.preprocess.normalise(torch.stack([img for _, img in good]).to(model.device))
                        embs.append(model._embed_normalised(x, name).numpy())
                        index.extend(j for j, _ in good)
                    if bar is not None:
                        bar.update(len(batch))
                _write_chunk(
                    chunk_files[i],
                    np.concatenate(embs) if embs else np.zeros((0, 0), np.float32),
                    np.asarray(index, dtype=np.int64),
                    np.asarray(corrupt, dtype=np.int64),
                    errors,
                )
    finally:
        if bar is not None:
            bar.close()
    return _assemble(out, partial, chunk_files, images, names, name, reused=len(done))


def _assemble(
    out: Path, partial: Path, chunk_files: list[Path], images: ImageList, names: list[str], readout: str, reused: int
) -> EmbedResult:
    chunks = [_read_chunk(f) for f in chunk_files]
    if any(c is None for c in chunks):
        raise InferenceError(f"embed: a chunk in {partial} became unreadable; rerun the command to recompute it")
    parts = [c["embeddings"] for c in chunks if c is not None and len(c["index"])]
    index = np.concatenate([c["index"] for c in chunks if c is not None])
    corrupt = [
        (names[int(j)], str(e)) for c in chunks if c is not None for j, e in zip(c["corrupt"], c["errors"], strict=True)
    ]
    if not parts:
        raise InferenceError(f"embed: none of the {len(names)} images could be decoded; check --images")
    embeddings = np.concatenate(parts).astype(np.float32, copy=False)
    meta: dict[str, Any] = {
        "files": [names[int(j)] for j in index],
        "corrupt_files": [c[0] for c in corrupt],
        "corrupt_errors": [c[1] for c in corrupt],
        "readout": readout,
    }
    if images.labels is not None and images.classes is not None:
        meta["labels"] = [images.labels[int(j)] for j in index]
        meta["classes"] = images.classes
    if out.suffix == ".npz":
        arrays = {k: np.asarray(v, dtype=np.int64 if k == "labels" else str) for k, v in meta.items()}
        _atomic_npz(out, embeddings=embeddings, **arrays)
    else:
        atomic_write(out, lambda fh: np.save(fh, embeddings))
        out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    for name, err in corrupt:
        print(f"skipped corrupt image {name}: {err}", file=sys.stderr)
    shutil.rmtree(partial)
    return EmbedResult(
        out=out, n_embedded=len(embeddings), corrupt=corrupt, chunks_total=len(chunk_files), chunks_reused=reused
    )
