"""Where a run executes: seeding, device and precision choice, backend flags, BatchNorm sync and DDP wrapping."""

from __future__ import annotations

import os
import random

import numpy as np
import torch
from torch import nn

from hamjepa.engine.global_batchnorm import convert_to_global_batchnorm
from hamjepa.errors import HamjepaError


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> the local CUDA device when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise HamjepaError("train: 'train.device' = cuda but no CUDA device is visible; use train.device=cpu.")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def ddp_device(requested: str) -> torch.device:
    """This rank's device under torchrun: ``cuda:LOCAL_RANK`` unless ``train.device=cpu`` or no GPU is visible."""
    if requested != "cpu" and torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def training_device(requested: str, world_size: int) -> torch.device:
    """The device of this process: :func:`resolve_device` alone, :func:`ddp_device` under torchrun."""
    return resolve_device(requested) if world_size == 1 else ddp_device(requested)


def resolve_precision(precision: str, device: torch.device) -> tuple[torch.dtype | None, torch.dtype]:
    """``train.precision`` -> ``(autocast dtype or None, parameter dtype)``; ``auto`` is bf16 on CUDA, else fp32."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    amp_dtype = torch.bfloat16 if precision == "bf16" else None
    param_dtype = torch.float64 if precision == "fp64" else torch.float32
    return amp_dtype, param_dtype


def configure_backends(device: torch.device) -> None:
    """On CUDA: TF32 matmuls/convolutions and cuDNN autotuning for training (no-op elsewhere)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def synchronise_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Global-batch BatchNorm statistics: ``SyncBatchNorm`` on CUDA, the gloo-friendly version elsewhere.

    Every BatchNorm layer inside ``module`` is replaced in place (a ``module`` that is itself a BatchNorm is
    returned replaced); weights, buffers and state-dict keys are kept, so checkpoints load either way. The
    trainer applies it to the encoder and to the objective (e.g. VICReg's expander) before wrapping in DDP.
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return convert_to_global_batchnorm(module)


def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    """Wrap ``module`` in ``DistributedDataParallel`` for this rank's device."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    # find_unused_parameters: the potential MLP's output bias never gets a gradient (grad V ignores it).
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)
