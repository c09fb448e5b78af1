"""Numerical checks of the paper's Section 3 / Appendix A results (spec section J).

- :mod:`hamjepa.theory.linalg` -- SPD helpers, ``V_H``, entropy, participation ratio.
- :mod:`hamjepa.theory.checks` -- the registry ``CHECKS`` and ``run_all_checks``; the checks themselves,
  one function per statement, are in :mod:`~hamjepa.theory.covariance` and :mod:`~hamjepa.theory.regret` (Section 3),
  :mod:`~hamjepa.theory.symplectic` (J.9) and :mod:`~hamjepa.theory.anti_collapse` (Lemmas A.9 - A.14), on
  the shared :mod:`~hamjepa.theory.context`.
- :mod:`hamjepa.theory.report` -- Markdown table, ``theory.json`` / ``theory.md``.
"""

from __future__ import annotations

from hamjepa.lazy_exports import lazy_exports

# Imported on first use (hamjepa.lazy_exports): importing the package, e.g. for `--help`, loads no torch.
__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".checks": (
            "CHECKS",
            "CheckRow",
            "TheoryContext",
            "run_all_checks",
        ),
    },
)
