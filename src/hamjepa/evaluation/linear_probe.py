"""Linear probe on precomputed frozen features (docs/spec.md §H.3), all readouts trained together.

Each readout gets its own ``LayerNorm(D_r)`` (learnable affine; per-sample normalisation across features)
followed by ``Linear(D_r, C)``. All heads live in one module, see the same shuffled mini-batch indices and
are updated by one AdamW (the parameters are disjoint and the loss is the *sum* of the per-readout
cross-entropies, so every head gets exactly the gradient it would get alone). Schedule: cosine annealing per
optimiser step from ``lr`` to 0 over ``epochs * ceil(N / batch_size)`` steps, no warm-up; the last partial
batch is kept; shuffling uses a CPU generator seeded ``seed``; each head is initialised (PyTorch's default
``U(-1/sqrt(D), 1/sqrt(D))`` for the Linear) from its own CPU generator seeded from ``seed`` and the readout
name, so a head trains exactly as it would alone.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .features import to_device


@dataclass
class ProbeConfig:
    """Linear-probe hyper-parameters (defaults = docs/spec.md §H.3)."""

    epochs: int = 50
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-6
    seed: int = 0
    eval_batch_size: int = 8192

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"probe epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"probe batch_size must be >= 1, got {self.batch_size}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(f"probe lr must be > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")


@dataclass
class ProbeResult:
    """Per-readout test accuracies (fractions) and the learning rate used at every optimiser step."""

    top1: dict[str, float]
    top5: dict[str, float]
    final_train_loss: dict[str, float]
    lr_trace: list[float] = field(repr=False)


def cosine_lr(step: int, total_steps: int, base_lr: float) -> float:
    """LR at optimiser step ``step`` (0-indexed): ``base_lr * (1 + cos(pi * step / total_steps)) / 2``."""
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * step / total_steps))


class ProbeHeads(nn.Module):
    """One ``LayerNorm(D_r) -> Linear(D_r, C)`` head per readout; ``forward`` maps readouts to logits."""

    def __init__(self, dims: Mapping[str, int], num_classes: int, seed: int) -> None:
        super().__init__()
        self.heads = nn.ModuleDict(
            {name: nn.Sequential(nn.LayerNorm(d), nn.Linear(d, num_classes)) for name, d in dims.items()}
        )
        with torch.no_grad():  # nn.Linear's default U(-1/sqrt(D), 1/sqrt(D)), from a per-head seeded generator
            for name, d in dims.items():
                generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
                lin = self.heads[name][1]
                bound = 1.0 / math.sqrt(d)
                lin.weight.copy_(torch.rand(lin.weight.shape, generator=generator) * 2 * bound - bound)
                lin.bias.copy_(torch.rand(lin.bias.shape, generator=generator) * 2 * bound - bound)

    def forward(self, feats: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{name: [b, D_r]}`` -> ``{name: logits [b, C]}``."""
        return {name: head(feats[name]) for name, head in self.heads.items()}


def train_linear_probes(
    train: Mapping[str, Tensor],
    train_labels: Tensor,
    test: Mapping[str, Tensor],
    test_labels: Tensor,
    num_classes: int,
    config: ProbeConfig | None = None,
    *,
    progress: bool = False,
) -> ProbeResult:
    """Train one probe per readout jointly and evaluate it.

    Args:
        train: ``{readout: features [N, D_r]}`` (all on one device, same N); train_labels: int ``[N]``.
        test: ``{readout: features [M, D_r]}`` with the same keys; test_labels: int ``[M]``.
        num_classes: ``C``.
        config: hyper-parameters (the protocol of docs/spec.md §H.3 when ``None``).

    Returns:
        :class:`ProbeResult` with top-1 / top-5 per readout.
    """
    cfg = config or ProbeConfig()
    if not train or set(train) != set(test):
        raise ValueError(f"train and test readouts must be the same non-empty set, got {list(train)} / {list(test)}")
    n = train_labels.shape[0]
    if n == 0 or test_labels.shape[0] == 0:
        raise ValueError("empty feature set: the probe needs train and test features")
    for name in train:
        if train[name].shape[0] != n or test[name].shape[0] != test_labels.shape[0]:
            raise ValueError(f"readout '{name}' has a different number of rows than its labels")
    device = train_labels.device
    gen = torch.Generator().manual_seed(cfg.seed)
    model = ProbeHeads({k: v.shape[1] for k, v in train.items()}, num_classes, cfg.seed).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=device.type == "cuda")
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    train_f = {k: v.float() for k, v in train.items()}
    y_train = train_labels.to(torch.int64)
    lr_trace: list[float] = []
    epoch_iter = range(cfg.epochs)
    if progress:
        from tqdm.auto import tqdm

        epoch_iter = tqdm(epoch_iter, desc="linear probe", unit="epoch", leave=False)
    step = 0
    sums = {k: torch.zeros((), device=device) for k in train_f}
    model.train()
    for epoch in epoch_iter:
        last_epoch = epoch == cfg.epochs - 1
        perm = to_device(torch.randperm(n, generator=gen), device)
        for b0 in range(0, n, cfg.batch_size):
            lr = cosine_lr(step, total, cfg.lr)
            for group in opt.param_groups:
                group["lr"] = lr
            lr_trace.append(lr)
            idx = perm[b0 : b0 + cfg.batch_size]
            y = y_train[idx]
            logits = model({k: v[idx] for k, v in train_f.items()})
            losses = {k: F.cross_entropy(v, y) for k, v in logits.items()}
            opt.zero_grad(set_to_none=True)
            torch.stack(list(losses.values())).sum().backward()
            opt.step()
            if last_epoch:  # mean train loss of the final epoch (reported; no per-step host sync)
                for k, v in losses.items():
                    sums[k] += v.detach() * idx.shape[0]
            step += 1
    top1, top5 = _evaluate(model, test, test_labels, num_classes, cfg.eval_batch_size)
    return ProbeResult(
        top1=top1,
        top5=top5,
        final_train_loss={k: float(v) / n for k, v in sums.items()},
        lr_trace=lr_trace,
    )


@torch.no_grad()
def _evaluate(
    model: ProbeHeads, test: Mapping[str, Tensor], labels: Tensor, num_classes: int, batch: int
) -> tuple[dict[str, float], dict[str, float]]:
    model.eval()
    m = labels.shape[0]
    y = labels.to(torch.int64).unsqueeze(1)
    top = min(5, num_classes)
    c1 = {k: torch.zeros((), device=labels.device, dtype=torch.int64) for k in test}
    c5 = {k: torch.zeros((), device=labels.device, dtype=torch.int64) for k in test}
    for b0 in range(0, m, batch):
        logits = model({k: v[b0 : b0 + batch].float() for k, v in test.items()})
        for k, lg in logits.items():
            hits = lg.topk(top, dim=1).indices == y[b0 : b0 + batch]
            c1[k] += hits[:, 0].sum()
            c5[k] += hits.any(dim=1).sum()
    return {k: int(v) / m for k, v in c1.items()}, {k: int(v) / m for k, v in c5.items()}
