"""Process-group setup for ``torchrun`` launches (single- or multi-node).

``torchrun --nproc_per_node=N -m hamjepa train CONFIG`` sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and the
rendezvous variables; :func:`init_distributed_from_env` then joins the default process group (NCCL on
CUDA, gloo on CPU). Multi-node runs use the usual torchrun flags (``--nnodes``, ``--node_rank``,
``--rdzv_endpoint``); nothing else changes.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import torch
import torch.distributed as dist


def join_process_group(backend: str, **kwargs: Any) -> None:
    """``torch.distributed.init_process_group(backend, **kwargs)``, with ``torch._dynamo`` imported first.

    Importing ``torch._dynamo`` (which ``torchvision``, ``torch.optim`` and ``torch.compile`` do on first use)
    *after* the default group exists leaves references to that group behind (torch 2.14: ten), so
    :func:`torch.distributed.destroy_process_group` no longer frees it: gloo's worker threads then outlive
    the interpreter's shutdown and a thread still releasing a collective that ran inside a backward pass
    aborts the process ("terminate called without an active exception", SIGABRT) after all work is done.
    Importing it before the group is created keeps ``destroy_process_group`` effective. Every process
    group in this project (``torchrun`` launches and the multi-process tests) is joined through here.

    Args:
        backend: ``"nccl"`` or ``"gloo"``.
        **kwargs: passed on (``init_method``, ``rank``, ``world_size``, ...).
    """
    importlib.import_module("torch._dynamo")
    dist.init_process_group(backend=backend, **kwargs)


def init_distributed_from_env(device: str = "auto") -> bool:
    """Join the process group when launched by torchrun (``WORLD_SIZE > 1``); returns True if it did."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    join_process_group("nccl" if use_cuda else "gloo")
    return True


def shutdown_distributed() -> None:
    """Leave the process group if one was joined."""
    if dist.is_initialized():
        dist.destroy_process_group()
