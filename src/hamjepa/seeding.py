"""Deterministic seed mixing (SplitMix64), so every rank and every resumed run derives the same random draws
without communication: augmentation batches, log-det projections and SIGReg directions all seed from it."""

from __future__ import annotations

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def mix_seed(*values: int) -> int:
    """Hash non-negative integers into one seed in ``[0, 2**63)`` (pure function of its arguments)."""
    state = 0x2545F4914F6CDD1D
    for value in values:
        state = _splitmix64(state ^ (int(value) & _MASK64))
    return state & ((1 << 63) - 1)
