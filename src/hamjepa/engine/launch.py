"""Process-group setup for ``torchrun`` launches (single- or multi-node).

``torchrun --nproc_per_node=N -m hamjepa train CONFIG`` sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and the
rendezvous variables; :func:`init_distributed_from_env` then joins the default process group (NCCL on
CUDA, gloo on CPU). Multi-node runs use the usual torchrun flags (``--nnodes``, ``--node_rank``,
``--rdzv_endpoint``); nothing else changes.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_distributed_from_env(device: str = "auto") -> bool:
    """Join the process group when launched by torchrun (``WORLD_SIZE > 1``); returns True if it did."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return True


def shutdown_distributed() -> None:
    """Leave the process group if one was joined."""
    if dist.is_initialized():
        dist.destroy_process_group()
