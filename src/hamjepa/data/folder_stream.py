"""Streaming ImageFolder train stream: per image, only decoding and the RandomResizedCrop of every view run
on the CPU (DataLoader workers; see :mod:`~hamjepa.data.folder_views` for the decoders: libjpeg-turbo,
DCT-scaled decoding of large JPEGs, or batched nvJPEG on CUDA); flip, colour, grayscale, blur, solarize and
normalisation run batched on the device.

Reproducibility: the crops of image ``i`` in epoch ``e`` come from a generator seeded by
``(seed, e, i)`` and the device ops of step ``s`` from ``(seed, e, s)``, and the epoch permutation from
``(seed, e)``; resuming skips the first ``position`` batches of the epoch without decoding them, so a resumed
run sees exactly the same batches (given the same files and decoder).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader

from hamjepa.data.augment import MultiViewAugment
from hamjepa.data.folder_views import (
    DecodeMode,
    FolderViews,
    OnCorrupt,
    ViewsBatch,
    collate_views,
    crop_resize_float,
    decode_jpegs_on,
    resolve_decode,
)
from hamjepa.data.imagefolder import CorruptImageError, ImageFolderSource, decode_rgb_bytes
from hamjepa.data.loader import StreamPosition, Views, check_sharding, stack_views
from hamjepa.data.seeding import TAG_AUGMENT, epoch_permutation, make_generator

log = logging.getLogger(__name__)


class _EpochBatches:
    """Batch sampler yielding this rank's ``[(index, epoch), ...]`` lists from the stream's position on."""

    def __init__(self, stream: ImageFolderStream) -> None:
        self.stream = stream

    def __len__(self) -> int:
        return self.stream.steps_per_epoch - self.stream.position

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        s = self.stream
        perm = epoch_permutation(s.num_samples, s.seed, s.epoch).tolist()
        for step in range(s.position, s.steps_per_epoch):
            glob = perm[step * s.batch_size : (step + 1) * s.batch_size]
            lb = len(glob) // s.world_size
            yield [(i, s.epoch) for i in glob[s.rank * lb : (s.rank + 1) * lb]]


class ImageFolderStream(StreamPosition):
    """Train stream over an :class:`ImageFolderSource` with worker-side crops and device-side augmentation.

    Args:
        source: the train split.
        batch_size: GLOBAL batch size.
        augment: the multi-view augmentation (crop settings are used in the workers).
        seed: base seed.
        device: where the views are produced.
        rank, world_size: this process's shard.
        num_workers: DataLoader worker processes (0 decodes in the main process).
        drop_last: drop the incomplete last batch (required with ``world_size > 1``).
        prefetch_factor: batches prefetched per worker.
        decode: ``"auto"`` (batched decoding on the device when it is CUDA, in the workers otherwise),
            ``"workers"`` or ``"device"``.
        on_corrupt: ``"error"`` stops at the first file that cannot be decoded (one line naming it);
            ``"skip"`` replaces it with the next readable image, logs a warning and records it in
            :attr:`skipped_files` (drained by :meth:`pop_skipped`, which the trainer logs).
        dct_scaling: decode large JPEGs at 1/2, 1/4 or 1/8 size when every crop still has the output
            resolution (workers only).

    Iteration yields ``(views, labels)`` like :class:`~hamjepa.data.loader.DeviceResidentStream`.
    """

    def __init__(
        self,
        source: ImageFolderSource,
        batch_size: int,
        augment: MultiViewAugment,
        seed: int,
        device: torch.device | str,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 8,
        drop_last: bool = True,
        prefetch_factor: int = 2,
        decode: DecodeMode = "auto",
        on_corrupt: OnCorrupt = "error",
        dct_scaling: bool = True,
    ) -> None:
        self.local_batch = check_sharding(batch_size, rank, world_size, drop_last)
        if drop_last and len(source) < batch_size:
            raise ValueError(f"batch_size={batch_size} exceeds the {len(source)} images; lower batch_size")
        super().__init__(len(source), batch_size, seed, drop_last)
        self.source = source
        self.augment = augment
        self.device = torch.device(device)
        self.rank = rank
        self.world_size = world_size
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.decode = resolve_decode(decode, self.device)
        self.on_corrupt = on_corrupt
        self.dct_scaling = dct_scaling
        self.skipped_files: list[tuple[str, str]] = []
        self._reported: set[tuple[int, str]] = set()
        self._views = FolderViews(source, augment, self.seed, self.decode, on_corrupt, dct_scaling)
        self._dataloader: DataLoader | None = None

    def __len__(self) -> int:
        return self.steps_per_epoch

    def _loader(self) -> DataLoader:
        """One DataLoader for the stream's life with persistent workers (docs/spec.md §A.3): no worker restart per
        epoch. Its batch sampler reads the stream's epoch/position whenever an iteration starts; a seed
        changed by ``load_state_dict`` rebuilds it (the workers' dataset holds the seed)."""
        if self._dataloader is None or self._views.seed != self.seed:
            self._views = FolderViews(
                self.source, self.augment, self.seed, self.decode, self.on_corrupt, self.dct_scaling
            )
            self._dataloader = DataLoader(
                self._views,
                batch_sampler=_EpochBatches(self),
                num_workers=self.num_workers,
                collate_fn=collate_views,
                pin_memory=self.device.type == "cuda",
                prefetch_factor=self.prefetch_factor if self.num_workers > 0 else None,
                persistent_workers=self.num_workers > 0,
            )
        return self._dataloader

    def pop_skipped(self) -> list[tuple[str, str]]:
        """The ``(path, reason)`` of the corrupt files skipped since the last call (``on_corrupt="skip"``)."""
        out, self.skipped_files = self.skipped_files, []
        return out

    def _skip(self, path: str, reason: str) -> None:
        """Record and log a skipped file (once per epoch: a corrupt file can be hit by two neighbours)."""
        if (self.epoch, path) in self._reported:
            return
        self._reported.add((self.epoch, path))
        log.warning("data: skipped corrupt image %s (%s); data.on_corrupt=skip", path, reason)
        self.skipped_files.append((path, reason))

    def _device_crops(self, batch: ViewsBatch, epoch: int) -> list[torch.Tensor]:
        """One uint8 ``[n_views, b, 3, S, S]`` tensor per view group on the device, decoding the batch's
        encoded JPEGs there; labels of skipped images are replaced in ``batch.labels``."""
        if not batch.encoded:
            assert batch.crops is not None
            return [c.to(self.device, non_blocking=True).transpose(0, 1) for c in batch.crops]
        b = len(batch.labels)
        groups = [
            torch.empty((g.n_views, b, 3, g.size, g.size), dtype=torch.uint8, device=self.device)
            for g in self.augment.groups
        ]
        if batch.crops is not None:
            pos = torch.tensor(batch.crop_positions, device=self.device)
            for out, c in zip(groups, batch.crops, strict=True):
                out[:, pos] = c.to(self.device, non_blocking=True).transpose(0, 1)
        failed: list[int] = []
        last_bad = ("", "")
        images = decode_jpegs_on(self.device, batch.encoded)
        for k, image in enumerate(images):
            position, boxes = batch.encoded_positions[k], batch.boxes[k]
            if image is None:  # the device decoder refused it: decode on the CPU
                path = self.source.samples[batch.encoded_sources[k]][0]
                try:
                    image = decode_rgb_bytes(batch.encoded[k], path).to(self.device)
                except CorruptImageError as exc:
                    if self.on_corrupt == "error":
                        raise
                    self._skip(str(exc.path), exc.reason)
                    failed.append(position)
                    last_bad = (str(exc.path), exc.reason)
                    continue
            bottom = max(int((bx.top + bx.height).max()) for bx in boxes)
            right = max(int((bx.left + bx.width).max()) for bx in boxes)
            if bottom > image.shape[1] or right > image.shape[2]:
                # the header and the decoder disagree on the size: take the boxes from the decoded size
                boxes = self._views.sample_boxes(image.shape[1], image.shape[2], epoch, batch.encoded_indices[k])
            for out, box, g in zip(groups, boxes, self.augment.groups, strict=True):
                out[:, position] = crop_resize_float(image, box, g.size).round_().clamp_(0, 255).to(torch.uint8)
        good = sorted(set(range(b)) - set(failed))
        if not good:
            raise CorruptImageError(last_bad[0], f"{last_bad[1]}; and every other image of its batch is corrupt too")
        for position in failed:  # replace by the nearest readable image of the batch (crops and label)
            donor = min(good, key=lambda q: (abs(q - position), q))
            for out in groups:
                out[:, position] = out[:, donor]
            batch.labels[position] = batch.labels[donor]
        return groups

    def __iter__(self) -> Iterator[tuple[Views, torch.Tensor]]:
        epoch, step = self.epoch, self.position
        for batch in self._loader():
            if batch.error is not None:
                raise CorruptImageError(*batch.error)
            for path, reason in batch.skipped:
                self._skip(path, reason)
            groups = self._device_crops(batch, epoch)
            b = groups[0].shape[1]
            size = self.augment.groups[0].size
            gen = make_generator(self.device, self.seed, epoch, step, TAG_AUGMENT)
            params = self.augment.sample_params(b * self.world_size, size, size, gen)
            params = params.select_images(self.rank * b, (self.rank + 1) * b)
            views = stack_views(self.augment.apply_after_crop(groups, params))
            step += 1
            self.position = step
            yield views, batch.labels.to(self.device, non_blocking=True)
