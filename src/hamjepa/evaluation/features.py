"""Frozen-feature extraction (docs/spec.md §H.1) and readout slicing.

The encoder runs once over each split in eval mode (BatchNorm running statistics), without gradients, in
fp32 unless bf16 autocast is requested. Images arrive as ``uint8 [b, 3, h, w]`` batches and are normalised
on the device: ``x = (img / 255 - mean) / std`` with ``mean``/``std`` on the 0-1 scale (as torchvision's
``Normalize`` after ``ToTensor``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Literal, Protocol

import torch
from torch import Tensor, nn

Batch = tuple[Tensor, Tensor]
BatchesFn = Callable[[], Iterator[Batch]]
FeatureDtype = Literal["fp32", "bf16"]


class EvalDataLike(Protocol):
    """What the evaluator needs from the data package's ``EvalData`` (structural type).

    ``train()`` / ``test()`` each return a fresh iterator of ``(uint8 [b, 3, h, w], int64 labels [b])``
    batches of eval-transformed (un-augmented) images; ``mean`` / ``std`` are per-channel on the 0-1 scale.
    """

    train: BatchesFn
    test: BatchesFn
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def _normaliser(mean: Sequence[float], std: Sequence[float], device: torch.device) -> tuple[Tensor, Tensor]:
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"mean and std must have 3 entries (one per RGB channel), got {mean!r} and {std!r}")
    if min(std) <= 0:
        raise ValueError(f"std must be positive per channel, got {std!r}")
    m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    return m, s


def to_device(tensor: Tensor, device: torch.device) -> Tensor:
    """Copy a CPU tensor to ``device``; for CUDA from page-locked memory, so the copy really is asynchronous.

    ``non_blocking=True`` from pageable memory is a synchronous staged copy; a pinned source lets the copy of
    the next batch overlap the encoder's work on the previous one. Strides are preserved, so a channels-last
    view crosses as one dense block and is reordered on the device.
    """
    if device.type == "cuda" and tensor.device.type == "cpu" and not tensor.is_pinned():
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


def normalise_uint8(images: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """``uint8 [b, 3, h, w]`` -> float32 ``[b, 3, h, w]`` computed as ``(images / 255 - mean) / std``."""
    if images.dtype != torch.uint8:
        raise ValueError(f"eval images must be uint8 [b, 3, h, w], got dtype {images.dtype}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"eval images must have shape [b, 3, h, w], got {tuple(images.shape)}")
    return (images.float().div_(255.0) - mean) / std


def encode_with_pooled(encoder: nn.Module, images: Tensor) -> tuple[Tensor, Tensor]:
    """``(encoder(images) [b, D], encoder.pooled_features(images) [b, F])``.

    One backbone pass when the encoder offers ``forward_with_pooled`` (the ResNet and ViT token encoders do), two
    passes otherwise.

    Raises:
        ValueError: the encoder has no ``pooled_features`` method (the standard protocol needs it).
    """
    both = getattr(encoder, "forward_with_pooled", None)
    if callable(both):
        return both(images)
    pooled = getattr(encoder, "pooled_features", None)
    if not callable(pooled):
        raise ValueError(
            f"the standard protocol needs the pooled backbone feature, but {type(encoder).__name__} has no "
            "pooled_features(images) method; add one or evaluate the token protocol only "
            "(EvalOptions(protocols=('token',)), hamjepa eval --protocol token)"
        )
    return encoder(images), pooled(images)


def _checked_output(z: Tensor, n: int, what: str) -> Tensor:
    if z.ndim != 2 or z.shape[0] != n:
        raise ValueError(f"{what} must be [b, D] for b={n} images, got {tuple(z.shape)}")
    return z.float()


@torch.no_grad()
def _extract(
    encode: Callable[[Tensor], tuple[Tensor, ...]],
    encoder: nn.Module,
    batches_fn: BatchesFn,
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device | str,
    dtype: FeatureDtype,
    progress: bool,
    desc: str,
) -> tuple[list[Tensor], Tensor]:
    """Run ``encode`` over one split in eval mode: ``([features float32 [N, D_i] per output], labels [N])``."""
    if dtype not in ("fp32", "bf16"):
        raise ValueError(f"dtype must be 'fp32' or 'bf16', got {dtype!r}")
    device = torch.device(device)
    m, s = _normaliser(mean, std, device)
    was_training = encoder.training
    encoder.eval()
    outputs: list[list[Tensor]] = []
    labels: list[Tensor] = []
    iterator: Iterator[Batch] = batches_fn()
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc=desc, unit="batch", leave=False)
    try:
        for images, y in iterator:
            # NHWC-strided batches become NCHW-contiguous on the device (the permute runs there).
            x = normalise_uint8(to_device(images, device).contiguous(), m, s)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
                zs = encode(x)
            outputs.append([_checked_output(z, x.shape[0], "encoder output") for z in zs])
            labels.append(to_device(y, device).to(torch.int64).reshape(-1))
    finally:
        encoder.train(was_training)
    if not outputs:
        raise ValueError(f"empty feature set: the '{desc}' split yielded no batches")
    feats, lab = [torch.cat(parts) for parts in zip(*outputs, strict=True)], torch.cat(labels)
    if feats[0].shape[0] == 0:
        raise ValueError(f"empty feature set: the '{desc}' split yielded 0 images")
    if lab.shape[0] != feats[0].shape[0]:
        raise ValueError(f"the '{desc}' split yielded {lab.shape[0]} labels for {feats[0].shape[0]} images")
    return feats, lab


def extract_features(
    encoder: nn.Module,
    batches_fn: BatchesFn,
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device | str,
    dtype: FeatureDtype = "fp32",
    *,
    progress: bool = False,
    desc: str = "features",
) -> tuple[Tensor, Tensor]:
    """Run the frozen encoder over one split.

    Args:
        encoder: maps float ``[b, 3, h, w]`` to ``[b, D]``; put in eval mode for the call and restored after.
        batches_fn: returns a fresh iterator of ``(uint8 images [b, 3, h, w], int labels [b])``.
        mean, std: per-channel normalisation on the 0-1 scale.
        device: where the encoder runs and where the features are returned.
        dtype: ``"fp32"`` (spec default, no autocast) or ``"bf16"`` (autocast; features cast back to fp32).
        progress: show a tqdm progress line.

    Returns:
        ``(features float32 [N, D], labels int64 [N])``, both on ``device``.

    Raises:
        ValueError: an empty split, a non-2-D encoder output, a bad ``dtype``.
    """
    (feats,), labels = _extract(lambda x: (encoder(x),), encoder, batches_fn, mean, std, device, dtype, progress, desc)
    return feats, labels


def extract_features_with_pooled(
    encoder: nn.Module,
    batches_fn: BatchesFn,
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device | str,
    dtype: FeatureDtype = "fp32",
    *,
    progress: bool = False,
    desc: str = "features",
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`extract_features` plus the pooled backbone feature of the same images (:func:`encode_with_pooled`).

    Returns:
        ``(features float32 [N, D], pooled float32 [N, F], labels int64 [N])``, all on ``device``.
    """
    (feats, pooled), labels = _extract(
        lambda x: encode_with_pooled(encoder, x), encoder, batches_fn, mean, std, device, dtype, progress, desc
    )
    return feats, pooled, labels


def check_labels(labels: Tensor, num_classes: int, split: str) -> None:
    """Raise a one-line ``ValueError`` unless every label lies in ``[0, num_classes)`` (one host sync)."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if labels.numel() == 0:
        raise ValueError(f"empty feature set: the '{split}' split has no labels")
    lo, hi = torch.aminmax(labels)
    lo_i, hi_i = int(lo), int(hi)
    if lo_i < 0 or hi_i >= num_classes:
        raise ValueError(
            f"class-count mismatch: '{split}' labels span [{lo_i}, {hi_i}] but num_classes={num_classes}; "
            "fix the dataset's num_classes or its labels"
        )
