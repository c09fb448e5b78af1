"""Numerical verification of the Section-3 / Appendix-A statements of docs/spec.md §J.

Every check is a function ``check_xxx(ctx) -> list[CheckRow]``; a row states the claim, the closed-form
value, the numerically obtained value (by brute force, sampling or direct computation — never by
re-evaluating the closed form), the tolerance and whether it passed. :func:`run_all_checks` runs them all.
All computations are float64 and seeded by :class:`TheoryContext`.

The checks live by topic: :mod:`~hamjepa.theory.covariance` (Section 3), :mod:`~hamjepa.theory.symplectic`
(J.9) and :mod:`~hamjepa.theory.anti_collapse` (Lemmas A.9 - A.14); this module is their registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import torch

from hamjepa.theory.anti_collapse import check_anti_collapse
from hamjepa.theory.context import CheckRow, TheoryContext
from hamjepa.theory.covariance import (
    check_gibbs_lift,
    check_max_entropy,
    check_metric_isotropy,
    check_minimax,
    check_price_of_isotropy,
    check_spd_cone,
)
from hamjepa.theory.regret import check_non_identifiability, check_regret, regret
from hamjepa.theory.symplectic import check_symplectic_facts

__all__ = ["CHECKS", "CheckRow", "TheoryContext", "regret", "run_all_checks"]


CHECKS: dict[str, Callable[[TheoryContext], list[CheckRow]]] = {
    "minimax": check_minimax,
    "max_entropy": check_max_entropy,
    "price_of_isotropy": check_price_of_isotropy,
    "metric_isotropy": check_metric_isotropy,
    "gibbs_lift": check_gibbs_lift,
    "spd_cone": check_spd_cone,
    "regret": check_regret,
    "non_identifiability": check_non_identifiability,
    "symplectic_facts": check_symplectic_facts,
    "anti_collapse": check_anti_collapse,
}


def run_all_checks(dim: int = 6, budget: float = 2.0, seed: int = 0) -> list[dict[str, object]]:
    """Run every check in :data:`CHECKS` with one seeded context; returns the rows as dicts (+ ``group``)."""
    ctx = TheoryContext(dim=dim, budget=budget, seed=seed)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threading only adds overhead
    try:
        return [{"group": name, **asdict(row)} for name, fn in CHECKS.items() for row in fn(ctx)]
    finally:
        torch.set_num_threads(previous)
