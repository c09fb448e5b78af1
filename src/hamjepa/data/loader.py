"""Device-resident training stream: the whole uint8 train set lives on the device, batches are gathered
and augmented there (no host work per step beyond seeding a generator).

Batches and augmentations depend only on ``(seed, epoch, step)``: the epoch permutation comes from a CPU
generator seeded by ``(seed, epoch)``, the augmentation parameters of step ``s`` from a generator seeded by
``(seed, epoch, s)``. ``batch_size`` is the GLOBAL batch: with ``world_size`` ranks, rank ``r`` takes images
``r*b : (r+1)*b`` (``b = batch_size // world_size``) of every global batch and the matching slice of the
global batch's augmentation parameters, so a 2-rank run sees exactly the views of a 1-rank run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch

from hamjepa.data.augment import AugmentDraws, MultiViewAugment
from hamjepa.data.seeding import TAG_AUGMENT, epoch_permutation, make_generator

Views = torch.Tensor | list[torch.Tensor]
"""float32 ``[V, B, 3, S, S]``, or one ``[n_views, B, 3, S, S]`` tensor per view size."""


def check_sharding(batch_size: int, rank: int, world_size: int, drop_last: bool) -> int:
    """Validate the global batch / rank layout; returns the per-rank batch ``batch_size // world_size``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    if batch_size % world_size != 0:
        raise ValueError(
            f"batch_size={batch_size} (the global batch) is not divisible by world_size={world_size}; "
            f"use a multiple of {world_size}"
        )
    if world_size > 1 and not drop_last:
        raise ValueError("drop_last=False is only supported with world_size=1 (ranks need equal batches)")
    return batch_size // world_size


def steps_for(num_samples: int, batch_size: int, drop_last: bool) -> int:
    """Batches per epoch."""
    return num_samples // batch_size if drop_last else math.ceil(num_samples / batch_size)


def stack_views(groups: list[torch.Tensor]) -> Views:
    """One ``[V, B, 3, S, S]`` tensor when all groups share a size, else the list of groups."""
    if len(groups) == 1:
        return groups[0]
    if len({g.shape[-1] for g in groups}) == 1:
        return torch.cat(groups, dim=0)
    return groups


class StreamPosition:
    """Seed/epoch/position bookkeeping shared by the train streams (``state_dict`` of plain ints)."""

    def __init__(self, num_samples: int, batch_size: int, seed: int, drop_last: bool) -> None:
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = int(seed)
        self.drop_last = drop_last
        self.epoch = 0
        self.position = 0

    def pop_skipped(self) -> list[tuple[str, str]]:
        """The ``(path, reason)`` of the corrupt files skipped since the last call; none here (only a stream
        that decodes files can meet one, see :class:`~hamjepa.data.folder_stream.ImageFolderStream`)."""
        return []

    @property
    def steps_per_epoch(self) -> int:
        """Batches per epoch."""
        return steps_for(self.num_samples, self.batch_size, self.drop_last)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches are yielded next.

        A new epoch starts at position 0; calling it with the current epoch keeps the position, so
        ``load_state_dict(state)`` followed by ``set_epoch(state["epoch"])`` resumes mid-epoch.
        """
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if epoch != self.epoch:
            self.epoch = int(epoch)
            self.position = 0

    def state_dict(self) -> dict[str, int]:
        """``seed``, ``epoch``, ``position`` (batches yielded this epoch) and the layout checked on load."""
        return {
            "seed": self.seed,
            "epoch": self.epoch,
            "position": self.position,
            "batch_size": self.batch_size,
            "num_samples": self.num_samples,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the next batch is the one an uninterrupted run would produce."""
        for key in ("batch_size", "num_samples"):
            if key in state and int(state[key]) != getattr(self, key):
                raise ValueError(
                    f"data state: saved {key}={int(state[key])} but this stream has {getattr(self, key)}; "
                    "resume with the same data set and global batch size"
                )
        position = int(state["position"])
        if not 0 <= position <= self.steps_per_epoch:
            raise ValueError(f"data state: position {position} outside [0, {self.steps_per_epoch}]")
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.position = position


class DeviceResidentStream(StreamPosition):
    """Shuffled, sharded, augmented batches of a device-resident uint8 image tensor.

    Args:
        images: uint8 ``[N, 3, H, W]`` on the training device.
        labels: int64 ``[N]`` (moved to the images' device).
        batch_size: the GLOBAL batch size (all ranks together).
        augment: the multi-view augmentation.
        seed: base seed (non-negative).
        rank, world_size: this process's shard.
        drop_last: drop the last incomplete batch (required with ``world_size > 1``).

    Iteration yields ``(views, labels)``: views float32 ``[V, b, 3, S, S]`` (a list per size when local views
    differ in size), labels int64 ``[b]``, ``b = batch_size // world_size``, both on the images' device.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        augment: MultiViewAugment,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"images must be uint8 [N, 3, H, W], got {images.dtype} {list(images.shape)}; "
                "convert NHWC arrays with .permute(0, 3, 1, 2)"
            )
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(f"labels must be [N] with N={images.shape[0]}, got {list(labels.shape)}")
        self.local_batch = check_sharding(batch_size, rank, world_size, drop_last)
        if drop_last and images.shape[0] < batch_size:
            raise ValueError(
                f"batch_size={batch_size} exceeds the {images.shape[0]} images (drop_last would leave no "
                "batch); lower batch_size"
            )
        super().__init__(images.shape[0], batch_size, seed, drop_last)
        self.images = images
        self.labels = labels.to(device=images.device, dtype=torch.int64)
        self.augment = augment
        self.rank = rank
        self.world_size = world_size
        self._perm_epoch: int | None = None
        self._perm: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        """Device of the images and of the yielded batches."""
        return self.images.device

    def __len__(self) -> int:
        return self.steps_per_epoch

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self._perm_epoch != epoch or self._perm is None:
            self._perm = epoch_permutation(self.num_samples, self.seed, epoch).to(self.device)
            self._perm_epoch = epoch
        return self._perm

    def draws_for(self, epoch: int, step: int, global_batch: int) -> AugmentDraws:
        """The raw augmentation uniforms of the whole global batch of ``(epoch, step)``."""
        gen = make_generator(self.device, self.seed, epoch, step, TAG_AUGMENT)
        return self.augment.draw_uniforms(global_batch, gen)

    def raw_batch_at(self, epoch: int, step: int) -> tuple[torch.Tensor, AugmentDraws, torch.Tensor]:
        """This rank's un-augmented batch: ``(uint8 images [b, 3, H, W], augmentation uniforms, labels [b])``.

        ``augment.apply(images, augment.params_from_draws(draws, H, W))`` gives the views of
        :meth:`batch_at`; the compiled training step does that inside its graph.
        """
        if not 0 <= step < self.steps_per_epoch:
            raise ValueError(f"step must be in [0, {self.steps_per_epoch}), got {step}")
        perm = self._permutation(epoch)
        start = step * self.batch_size
        global_idx = perm[start : start + self.batch_size]
        gb = global_idx.shape[0]  # < batch_size only for the last batch with drop_last=False
        lb = gb // self.world_size
        idx = global_idx[self.rank * lb : (self.rank + 1) * lb]
        draws = self.draws_for(epoch, step, gb).select_images(self.rank * lb, (self.rank + 1) * lb)
        return self.images[idx], draws, self.labels[idx]

    def batch_at(self, epoch: int, step: int) -> tuple[Views, torch.Tensor]:
        """This rank's ``(views, labels)`` of batch ``step`` of ``epoch`` (independent of history)."""
        images, draws, labels = self.raw_batch_at(epoch, step)
        _, _, h, w = self.images.shape
        views = stack_views(self.augment.apply(images, self.augment.params_from_draws(draws, h, w)))
        return views, labels

    def __iter__(self) -> Iterator[tuple[Views, torch.Tensor]]:
        epoch = self.epoch
        for step in range(self.position, self.steps_per_epoch):
            batch = self.batch_at(epoch, step)
            self.position = step + 1
            yield batch

    def raw_batches(self) -> Iterator[tuple[torch.Tensor, AugmentDraws, torch.Tensor]]:
        """Like iterating the stream, but yields :meth:`raw_batch_at` (augmentation left to the caller)."""
        epoch = self.epoch
        for step in range(self.position, self.steps_per_epoch):
            batch = self.raw_batch_at(epoch, step)
            self.position = step + 1
            yield batch
