"""Geometry diagnostics (spec section I and the learned-predictor checks).

- :mod:`hamjepa.diagnostics.toy_systems` -- pendulum / harmonic / Duffing as separable Hamiltonians, run by the
  predictor's own integrators (explicit Euler, symplectic Euler, leapfrog).
- :mod:`hamjepa.diagnostics.toy_metrics` -- the six docs/spec.md §I diagnostics as array-returning functions.
- :mod:`hamjepa.diagnostics.toy_report` -- ``run_toy_diagnostics``: figures + ``summary.json``.
- :mod:`hamjepa.diagnostics.learned_predictor` -- ``diagnose_predictor`` for trained predictors.
- :mod:`hamjepa.diagnostics.learned_report` -- ``run_dir_diagnostics`` (``hamjepa diagnose RUN_DIR``).
"""

from __future__ import annotations

from hamjepa.lazy_exports import lazy_exports

# Imported on first use (hamjepa.lazy_exports): importing the package, e.g. for `--help`, loads no torch.
__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".learned_predictor": ("diagnose_predictor",),
        ".toy_report": (
            "ToySettings",
            "run_toy_diagnostics",
        ),
    },
)
