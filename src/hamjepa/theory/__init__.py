"""Numerical checks of the paper's Section 3 / Appendix A results (spec section J).

- :mod:`hamjepa.theory.linalg` -- SPD helpers, ``V_H``, entropy, participation ratio.
- :mod:`hamjepa.theory.checks` -- the registry ``CHECKS`` and ``run_all_checks``; the checks themselves,
  one function per statement, are in :mod:`~hamjepa.theory.covariance` and :mod:`~hamjepa.theory.regret` (Section 3),
  :mod:`~hamjepa.theory.symplectic` (J.9) and :mod:`~hamjepa.theory.anti_collapse` (Lemmas A.9 - A.14), on
  the shared :mod:`~hamjepa.theory.context`.
- :mod:`hamjepa.theory.report` -- Markdown table, ``theory.json`` / ``theory.md``.
"""

from hamjepa.theory.checks import CHECKS, CheckRow, TheoryContext, run_all_checks

__all__ = ["CHECKS", "CheckRow", "TheoryContext", "run_all_checks"]
