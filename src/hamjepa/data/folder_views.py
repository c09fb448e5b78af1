"""The per-image work of the ImageFolder train stream: read, decode, RandomResizedCrop.

Two ways to decode, chosen by :func:`resolve_decode`:

- ``"workers"`` (CPU training): each DataLoader worker reads the file, takes the crop boxes of every view
  (sampled from the size in the file's header), decodes and crops. When every crop is at least
  ``s`` times the output side (``s`` in 2, 4, 8) a JPEG is decoded at ``1/s`` of its size by libjpeg's DCT
  scaling (PIL ``draft``) and the boxes are scaled by ``1/s``, so the model sees the same picture up to
  resampling error at a fraction of the decoding cost; otherwise torchvision's libjpeg-turbo decoder and
  ``resized_crop`` (bilinear, antialias) on the uint8 image are used.
- ``"device"`` (the default on CUDA): workers only read the bytes and the header and sample the boxes; the
  JPEGs of a batch are decoded together on the device (``torchvision.io.decode_jpeg(list, device=...)``, nvJPEG
  on CUDA) and cropped/resized there. Files that are not JPEGs (or that the device decoder rejects) are
  decoded on the CPU.

Both take the same boxes from the generator seeded by ``(seed, epoch, index)``, so the views agree up to
resampling error. A file that cannot be decoded stops the run (``on_corrupt="error"``, one line naming the
file) or is replaced by the next readable image of the data set (``on_corrupt="skip"``; every skipped file is
reported with the batch, never silently).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from hamjepa.data.augment import MultiViewAugment
from hamjepa.data.augment_params import CropParams, sample_crop_params
from hamjepa.data.imagefolder import (
    CorruptImageError,
    ImageFolderSource,
    decode_rgb_bytes,
    header_size,
    read_bytes,
)
from hamjepa.data.seeding import TAG_CROP, make_generator
from hamjepa.data.sources import DataError

DecodeMode = Literal["auto", "workers", "device"]
OnCorrupt = Literal["error", "skip"]
ON_CORRUPT_POLICIES = ("error", "skip")
DCT_SCALES = (8, 4, 2)
MAX_CONSECUTIVE_CORRUPT = 16


def resolve_decode(decode: DecodeMode, device: torch.device) -> Literal["workers", "device"]:
    """``"auto"`` decodes on the device when it is CUDA (batched nvJPEG), in the workers otherwise."""
    if decode == "auto":
        return "device" if device.type == "cuda" else "workers"
    if decode not in ("workers", "device"):
        raise ValueError(f"decode must be 'auto', 'workers' or 'device', got {decode!r}")
    return decode


def dct_scale(boxes: list[CropParams], sizes: list[int]) -> int:
    """The largest DCT scaling ``s`` in (8, 4, 2, 1) such that every crop, shrunk by ``s``, still has at least
    its output side on both axes (so decoding at ``1/s`` loses no resolution the model would see)."""
    ratio = min(min(int(b.height.min()), int(b.width.min())) / size for b, size in zip(boxes, sizes, strict=True))
    return next((s for s in DCT_SCALES if ratio >= s), 1)


def decode_jpeg_scaled(data: torch.Tensor, scale: int, path: object):  # -> PIL.Image.Image
    """Decode a JPEG at ``1/scale`` of its size (libjpeg DCT scaling via PIL ``draft``): an RGB PIL image of
    ``ceil(W / scale) x ceil(H / scale)``; pixel ``j`` covers source pixels ``[j * scale, (j + 1) * scale)``.

    Raises:
        CorruptImageError: the bytes cannot be decoded.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data.numpy().tobytes())) as im:
            width, height = im.size
            im.draft("RGB", (width // scale, height // scale))
            rgb = im.convert("RGB")
    except (OSError, ValueError) as exc:
        raise CorruptImageError(str(path), str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    want = ((width + scale - 1) // scale, (height + scale - 1) // scale)
    if rgb.size != want:  # pragma: no cover - PIL always honours a 1/2, 1/4, 1/8 draft of a one-tile JPEG
        raise DataError(f"data: DCT-scaled decoding of {path} gave {rgb.size}, expected {want}")
    return rgb


def crop_resize_scaled(image, box: CropParams, size: int, scale: int) -> torch.Tensor:
    """RandomResizedCrop from a PIL image decoded at ``1/scale``: each box is mapped to ``box / scale``
    (exact fractional edges) and resized to ``size x size`` by PIL (bilinear, antialias).

    Returns:
        uint8 ``[n, 3, size, size]``.
    """
    import numpy as np
    from PIL import Image

    crops = []
    for t, left, h, w in zip(box.top.tolist(), box.left.tolist(), box.height.tolist(), box.width.tolist(), strict=True):
        region = (left / scale, t / scale, (left + w) / scale, (t + h) / scale)
        crops.append(np.asarray(image.resize((size, size), Image.Resampling.BILINEAR, box=region)))
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()


def crop_resize_uint8(image: torch.Tensor, box: CropParams, size: int) -> torch.Tensor:
    """RandomResizedCrop of every box of ``box`` from uint8 ``[3, H, W]`` to uint8 ``[n, 3, size, size]``
    with torchvision's ``resized_crop`` (bilinear, antialias) on the uint8 image."""
    from torchvision.transforms.v2.functional import resized_crop

    crops = [
        resized_crop(image, int(t), int(left), int(h), int(w), [size, size], antialias=True)
        for t, left, h, w in zip(box.top, box.left, box.height, box.width, strict=True)
    ]
    return torch.stack(crops)


def crop_resize_float(image: torch.Tensor, box: CropParams, size: int) -> torch.Tensor:
    """Float ``[n, 3, size, size]`` (0..255) resized crops from ``image: [3, H, W]`` of any dtype on any device
    (``F.interpolate``, bilinear, antialias, ``align_corners=False``: the arithmetic of ``resized_crop``
    without the uint8 rounding). Used after decoding on the device."""
    out = []
    for t, left, h, w in zip(box.top.tolist(), box.left.tolist(), box.height.tolist(), box.width.tolist(), strict=True):
        region = image[None, :, t : t + h, left : left + w].to(torch.float32)
        out.append(F.interpolate(region, size=(size, size), mode="bilinear", antialias=True, align_corners=False))
    return torch.cat(out)


@dataclass
class ViewsItem:
    """What a worker returns for one image.

    Attributes:
        label: the class index of the image used.
        crops: uint8 ``[n_views, 3, S, S]`` per view group (decoded in the worker), or ``None``.
        encoded: the JPEG bytes to decode on the device (``crops`` is then ``None``).
        boxes: the crop boxes per view group (for ``encoded``).
        source_index: the index (in the source) of the file used; index: the requested image index.
        skipped: ``(path, reason)`` of corrupt files skipped before this image (``on_corrupt="skip"``).
        error: ``(path, reason)`` of a corrupt file with ``on_corrupt="error"`` (raised in the main process).
    """

    label: int
    crops: list[torch.Tensor] | None = None
    encoded: torch.Tensor | None = None
    boxes: list[CropParams] | None = None
    source_index: int = -1
    index: int = -1
    skipped: list[tuple[str, str]] = field(default_factory=list)
    error: tuple[str, str] | None = None


class FolderViews(Dataset):
    """Item ``(index, epoch)`` -> :class:`ViewsItem` for the image ``index`` of ``source``.

    Args:
        source: the train split.
        augment: its view groups give the crop settings.
        seed: base seed.
        decode: ``"workers"`` or ``"device"`` (see the module docstring).
        on_corrupt: ``"error"`` or ``"skip"``.
        dct_scaling: allow reduced-size JPEG decoding when every crop permits it.
    """

    def __init__(
        self,
        source: ImageFolderSource,
        augment: MultiViewAugment,
        seed: int,
        decode: Literal["workers", "device"] = "workers",
        on_corrupt: OnCorrupt = "error",
        dct_scaling: bool = True,
    ) -> None:
        if on_corrupt not in ON_CORRUPT_POLICIES:
            raise ValueError(f"on_corrupt must be 'error' or 'skip', got {on_corrupt!r}")
        self.source = source
        self.groups = augment.groups
        self.ratio = augment.settings.ratio
        self.seed = seed
        self.decode = decode
        self.on_corrupt = on_corrupt
        self.dct_scaling = dct_scaling

    def __len__(self) -> int:
        return len(self.source)

    def sample_boxes(self, height: int, width: int, epoch: int, index: int) -> list[CropParams]:
        """The crop boxes of every view group of image ``index`` in ``epoch`` (seeded by both)."""
        gen = make_generator("cpu", self.seed, epoch, index, TAG_CROP)
        return [sample_crop_params(g.n_views, height, width, g.scale, self.ratio, gen) for g in self.groups]

    def _views(self, file_index: int, epoch: int, index: int) -> ViewsItem:
        path = self.source.samples[file_index][0]
        label = self.source.samples[file_index][1]
        data = read_bytes(path)
        height, width, is_jpeg = header_size(data, path)
        boxes = self.sample_boxes(height, width, epoch, index)
        if self.decode == "device" and is_jpeg:
            return ViewsItem(label, encoded=data, boxes=boxes, source_index=file_index)
        sizes = [g.size for g in self.groups]
        scale = dct_scale(boxes, sizes) if self.dct_scaling and is_jpeg else 1
        if scale > 1:
            scaled = decode_jpeg_scaled(data, scale, path)
            crops = [crop_resize_scaled(scaled, b, s, scale) for b, s in zip(boxes, sizes, strict=True)]
            return ViewsItem(label, crops=crops, source_index=file_index)
        image = decode_rgb_bytes(data, path)
        if tuple(image.shape[1:]) != (height, width):  # header and decoder disagree: trust the pixels
            boxes = self.sample_boxes(image.shape[1], image.shape[2], epoch, index)
        crops = [crop_resize_uint8(image, b, s) for b, s in zip(boxes, sizes, strict=True)]
        return ViewsItem(label, crops=crops, source_index=file_index)

    def __getitem__(self, item: tuple[int, int]) -> ViewsItem:
        index, epoch = item
        skipped: list[tuple[str, str]] = []
        for attempt in range(min(MAX_CONSECUTIVE_CORRUPT, len(self.source))):
            file_index = (index + attempt) % len(self.source)
            try:
                views = self._views(file_index, epoch, index)
            except CorruptImageError as exc:
                if self.on_corrupt == "error":
                    return ViewsItem(-1, error=(str(exc.path), exc.reason))
                skipped.append((str(exc.path), exc.reason))
                continue
            views.skipped = skipped
            views.index = index
            return views
        path, reason = skipped[-1]
        return ViewsItem(
            -1,
            skipped=skipped,
            error=(path, f"{reason}; and the {len(skipped) - 1} files before it are corrupt too"),
        )


@dataclass
class ViewsBatch:
    """A collated batch of :class:`ViewsItem` (see :func:`collate_views`).

    Attributes:
        labels: int64 ``[b]``.
        crops: per view group, uint8 ``[k, n_views, 3, S, S]`` of the ``k`` worker-decoded images (``None``
            when ``k == 0``), at batch positions ``crop_positions``.
        encoded, boxes, encoded_positions: the device-decoded images, their boxes and batch positions;
            encoded_sources / encoded_indices: their files' source indices and their requested image indices.
        skipped: corrupt files skipped in this batch; error: the first corrupt file with ``on_corrupt=error``.
    """

    labels: torch.Tensor
    crops: list[torch.Tensor] | None
    crop_positions: list[int]
    encoded: list[torch.Tensor]
    boxes: list[list[CropParams]]
    encoded_positions: list[int]
    encoded_sources: list[int]
    encoded_indices: list[int]
    skipped: list[tuple[str, str]]
    error: tuple[str, str] | None

    def pin_memory(self) -> ViewsBatch:
        """Pinned copies of the crops (the DataLoader calls this with ``pin_memory=True``)."""
        if self.crops is not None:
            self.crops = [c.pin_memory() for c in self.crops]
        return self


def collate_views(items: list[ViewsItem]) -> ViewsBatch:
    """Stack the worker-decoded crops per view group; keep the encoded JPEGs as a list."""
    error = next((it.error for it in items if it.error is not None), None)
    skipped = [s for it in items for s in it.skipped]
    cropped = [i for i, it in enumerate(items) if it.crops is not None]
    crops = None
    if cropped:
        n_groups = len(items[cropped[0]].crops or [])
        crops = [torch.stack([items[i].crops[g] for i in cropped]) for g in range(n_groups)]  # type: ignore[index]
    encoded = [i for i, it in enumerate(items) if it.encoded is not None]
    return ViewsBatch(
        labels=torch.tensor([it.label for it in items], dtype=torch.int64),
        crops=crops,
        crop_positions=cropped,
        encoded=[items[i].encoded for i in encoded],  # type: ignore[misc]
        boxes=[items[i].boxes for i in encoded],  # type: ignore[misc]
        encoded_positions=encoded,
        encoded_sources=[items[i].source_index for i in encoded],
        encoded_indices=[items[i].index for i in encoded],
        skipped=skipped,
        error=error,
    )


def decode_jpegs_on(device: torch.device, encoded: list[torch.Tensor]) -> list[torch.Tensor | None]:
    """Decode JPEG bytes to uint8 ``[3, H, W]`` RGB on ``device``: one batched ``decode_jpeg`` call (nvJPEG on
    CUDA); if it fails, one call per image, and ``None`` for an image the device decoder cannot decode."""
    from torchvision.io import ImageReadMode, decode_jpeg

    if not encoded:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return list(decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device))
        except (RuntimeError, ValueError):
            out: list[torch.Tensor | None] = []
            for data in encoded:
                try:
                    out.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
                except (RuntimeError, ValueError):
                    out.append(None)
            return out
