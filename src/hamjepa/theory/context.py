"""What every theory check shares: the seeded :class:`TheoryContext` and the :class:`CheckRow` it returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from hamjepa.theory.linalg import random_spd


@dataclass(frozen=True)
class CheckRow:
    """One verified statement.

    Attributes:
        ref: the paper's reference (e.g. ``"Thm 3.2"``).
        claim: what is checked, in words.
        closed_form: the value the theory predicts (``None`` for pure inequalities).
        numerical: the value obtained numerically.
        tolerance: the pass criterion in words.
        passed: whether it holds.
    """

    ref: str
    claim: str
    closed_form: float | None
    numerical: float
    tolerance: str
    passed: bool


@dataclass
class TheoryContext:
    """Shared setup: dimension ``d``, energy budget ``c``, a seeded generator and a random SPD ``H``."""

    dim: int = 6
    budget: float = 2.0
    seed: int = 0
    gen: torch.Generator = field(init=False)
    h: Tensor = field(init=False)

    def __post_init__(self) -> None:
        if self.dim < 2:
            raise ValueError(f"dim must be >= 2 (the non-identifiability results need d >= 2), got {self.dim}")
        if not self.budget > 0:
            raise ValueError(f"budget must be > 0, got {self.budget}")
        self.gen = torch.Generator().manual_seed(self.seed)
        self.h = random_spd(self.dim, self.gen)

    def spd(self, dim: int | None = None, log10_range: tuple[float, float] = (-1.0, 1.0)) -> Tensor:
        return random_spd(dim or self.dim, self.gen, log10_range=log10_range)

    def randn(self, *shape: int) -> Tensor:
        return torch.randn(*shape, generator=self.gen, dtype=torch.float64)


def rel_error(a: float, b: float) -> float:
    """``|a - b| / |b|`` (guarded against ``b = 0``)."""
    return abs(a - b) / max(abs(b), 1e-300)


def row(ref: str, claim: str, closed: float | None, num: float, tol: str, ok: bool) -> CheckRow:
    """A :class:`CheckRow` with plain-float values."""
    return CheckRow(ref, claim, None if closed is None else float(closed), float(num), tol, bool(ok))
