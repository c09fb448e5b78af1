"""Small helpers around :mod:`torch.distributed` that are no-ops without a process group.

Regularisers use :func:`all_reduce_sum` on their sufficient statistics so that the penalty *and its
gradient* equal the global-batch values: the collective is autograd-aware (the gradient of a summed
statistic is all-reduced as well), which is what a loss computed on the concatenated batch would give.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True when a default process group is initialised and has more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """Rank of this process (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 (and always without a process group)."""
    return get_rank() == 0


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks, differentiably; identity without a process group.

    Args:
        tensor: any shape. Every rank must call this with the same shape and dtype.

    Returns:
        A tensor of the same shape holding the sum over ranks. Backward all-reduces the incoming
        gradient (sum), so ``d(sum_r x_r)/d x_local`` is applied on every rank.
    """
    if not is_distributed():
        return tensor
    return _AllReduceSum.apply(tensor)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the backward sums the incoming gradients over ranks as well."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        out = grad.contiguous().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out


def all_gather_cat(tensor: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along ``dim`` (rank order), differentiably; identity without a group.

    Args:
        tensor: any shape; every rank must pass the same shape and dtype.
        dim: the axis to concatenate along (the batch axis).

    Returns:
        The concatenation. Backward all-reduces (sums) the incoming gradient over ranks and returns this
        rank's slice, the same convention as :func:`all_reduce_sum`: when every rank back-propagates the same
        global loss, a rank's local gradient is ``world_size`` times its share of the single-process one.
    """
    if not is_distributed():
        return tensor
    return _AllGatherCat.apply(tensor, dim)


class _AllGatherCat(torch.autograd.Function):
    """Concatenation over ranks; the backward sums the gradient over ranks and keeps this rank's slice."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, dim: int) -> torch.Tensor:
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        ctx.dim, ctx.size = dim, tensor.shape[dim]
        return torch.cat(parts, dim=dim)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        out = grad.contiguous().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out.narrow(ctx.dim, dist.get_rank() * ctx.size, ctx.size), None


def broadcast_int(value: int, src: int = 0) -> int:
    """Broadcast a Python int from ``src`` to every rank (identity without a process group)."""
    if not is_distributed():
        return value
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    t = torch.tensor([value], dtype=torch.long, device=device)
    dist.broadcast(t, src=src)
    return int(t.item())
