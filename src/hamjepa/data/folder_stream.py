"""Streaming ImageFolder train stream: DataLoader workers decode JPEGs and take the RandomResizedCrop of
every view on the full-size uint8 image (torchvision ``resized_crop``, bilinear + antialias), so that views
of equal size can be batched; flip, colour, grayscale, blur, solarize and normalisation run on the device.

Reproducibility: the crops of image ``i`` in epoch ``e`` come from a generator seeded by
``(seed, e, i)`` and the device ops of step ``s`` from ``(seed, e, s)``, and the epoch permutation from
``(seed, e)``; resuming skips the first ``position`` batches of the epoch without decoding them, so a resumed
run sees exactly the same batches (given the same files).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from hamjepa.data.augment import MultiViewAugment
from hamjepa.data.augment_params import sample_crop_params
from hamjepa.data.imagefolder import ImageFolderSource
from hamjepa.data.loader import StreamPosition, Views, check_sharding, stack_views
from hamjepa.data.seeding import TAG_AUGMENT, TAG_CROP, epoch_permutation, make_generator


class _CroppedViews(Dataset):
    """Item ``(index, epoch)`` -> (one uint8 ``[n_views, 3, S, S]`` tensor per view group, label)."""

    def __init__(self, source: ImageFolderSource, augment: MultiViewAugment, seed: int) -> None:
        self.source = source
        self.groups = augment.groups
        self.ratio = augment.settings.ratio
        self.seed = seed

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, item: tuple[int, int]) -> tuple[list[torch.Tensor], int]:
        from torchvision.transforms.v2.functional import resized_crop

        index, epoch = item
        image = self.source.decode(index)
        gen = make_generator("cpu", self.seed, epoch, index, TAG_CROP)
        out = []
        for g in self.groups:
            box = sample_crop_params(g.n_views, image.shape[1], image.shape[2], g.scale, self.ratio, gen)
            crops = [
                resized_crop(image, int(t), int(left), int(h), int(w), [g.size, g.size], antialias=True)
                for t, left, h, w in zip(box.top, box.left, box.height, box.width, strict=True)
            ]
            out.append(torch.stack(crops))
        return out, self.source.samples[index][1]


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
        self._dataloader: DataLoader | None = None

    def __len__(self) -> int:
        return self.steps_per_epoch

    def _loader(self) -> DataLoader:
        """One DataLoader for the stream's life with persistent workers (spec A.3): no worker restart per
        epoch. Its batch sampler reads the stream's epoch/position whenever an iteration starts; a seed
        changed by ``load_state_dict`` rebuilds it (the workers' dataset holds the seed)."""
        if self._dataloader is None or self._dataloader.dataset.seed != self.seed:
            self._dataloader = DataLoader(
                _CroppedViews(self.source, self.augment, self.seed),
                batch_sampler=_EpochBatches(self),
                num_workers=self.num_workers,
                pin_memory=self.device.type == "cuda",
                prefetch_factor=self.prefetch_factor if self.num_workers > 0 else None,
                persistent_workers=self.num_workers > 0,
            )
        return self._dataloader

    def __iter__(self) -> Iterator[tuple[Views, torch.Tensor]]:
        epoch, step = self.epoch, self.position
        for crops, labels in self._loader():
            # crops: one uint8 [b, n_views, 3, S, S] per group -> [n_views, b, 3, S, S] on the device
            groups = [c.to(self.device, non_blocking=True).transpose(0, 1) for c in crops]
            b = groups[0].shape[1]
            size = self.augment.groups[0].size
            gen = make_generator(self.device, self.seed, epoch, step, TAG_AUGMENT)
            params = self.augment.sample_params(b * self.world_size, size, size, gen)
            params = params.select_images(self.rank * b, (self.rank + 1) * b)
            views = stack_views(self.augment.apply_after_crop(groups, params))
            step += 1
            self.position = step
            yield views, labels.to(self.device, non_blocking=True)
