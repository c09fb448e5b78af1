"""Numerical checks of the paper's Section 3 / Appendix A results (spec section J).

- :mod:`hamjepa.theory.linalg` -- SPD helpers, ``V_H``, entropy, participation ratio.
- :mod:`hamjepa.theory.checks` -- one function per statement, ``run_all_checks``.
- :mod:`hamjepa.theory.report` -- Markdown table, ``theory.json`` / ``theory.md``.
"""

from hamjepa.theory.checks import CHECKS, CheckRow, TheoryContext, run_all_checks

__all__ = ["CHECKS", "CheckRow", "TheoryContext", "run_all_checks"]
