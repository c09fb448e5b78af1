"""Build the train stream and the eval data of a run from its config (the engine's entry points)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hamjepa.components import config_from_dict
from hamjepa.config import Config, DataConfig
from hamjepa.data.build import build_train_stream
from hamjepa.data.eval_data import EvalData, build_eval_data
from hamjepa.data.sources import pack_cifar100


def resolve_data_path(data: DataConfig) -> Path:
    """The file or folder the data lives in; ``source=torchvision`` packs CIFAR-100 once under its root."""
    if not data.path:
        raise ValueError(
            "config: 'data.path' is empty; point it at the packed .npz, the torchvision root or the image folder."
        )
    path = Path(data.path).expanduser()
    if data.source == "torchvision":
        packed = path / "cifar100.npz"
        if not packed.is_file():
            pack_cifar100(path, packed, download=data.download)
        return packed
    return path


def train_stream_from_config(cfg: Config, *, device: torch.device, rank: int = 0, world_size: int = 1):
    """The resumable train stream of ``cfg.data`` on ``device`` for this rank's shard."""
    d = cfg.data
    return build_train_stream(
        "cifar100" if d.dataset == "cifar100" else d.dataset,
        resolve_data_path(d),
        batch_size=d.batch_size,
        seed=cfg.seed,
        device=device,
        n_global=d.global_views,
        n_local=d.local_views,
        rank=rank,
        world_size=world_size,
        num_workers=d.num_workers,
        subset=d.subset,
        on_corrupt=d.on_corrupt,
    )


def build_eval_data_from_config(
    config: Config | dict[str, Any], *, num_workers: int | None = None, subset: int | None = None
) -> EvalData:
    """Eval data (train and test splits, eval transforms of docs/spec.md §H.1) for a run's config.

    ``num_workers`` (JPEG decoding for folder data) defaults to the config's ``data.num_workers``, ``subset``
    (a stratified slice per split) to ``data.eval_subset``.
    """
    cfg = config if isinstance(config, Config) else config_from_dict(config)
    d = cfg.data
    return build_eval_data(
        d.dataset,
        resolve_data_path(d),
        batch_size=d.eval_batch_size,
        num_workers=d.num_workers if num_workers is None else num_workers,
        subset=d.eval_subset if subset is None else subset,
        on_corrupt=d.on_corrupt,
    )
