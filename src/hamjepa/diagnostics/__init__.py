"""Geometry diagnostics (spec section I and the learned-predictor checks).

- :mod:`hamjepa.diagnostics.toy_systems` -- pendulum / harmonic / Duffing and explicit Euler, symplectic Euler,
  leapfrog maps.
- :mod:`hamjepa.diagnostics.toy_metrics` -- the six docs/spec.md §I diagnostics as array-returning functions.
- :mod:`hamjepa.diagnostics.toy_report` -- ``run_toy_diagnostics``: figures + ``summary.json``.
- :mod:`hamjepa.diagnostics.learned_predictor` -- ``diagnose_predictor`` for trained predictors.
- :mod:`hamjepa.diagnostics.learned_report` -- ``run_dir_diagnostics`` (``hamjepa diagnose RUN_DIR``).
"""

from hamjepa.diagnostics.learned_predictor import diagnose_predictor
from hamjepa.diagnostics.toy_report import ToySettings, run_toy_diagnostics

__all__ = ["ToySettings", "diagnose_predictor", "run_toy_diagnostics"]
