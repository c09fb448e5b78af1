"""A diverging integrator (explicit Euler on the Duffing oscillator) is reported as diverged, not plotted as NaN."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from hamjepa.diagnostics.toy_plots import DIVERGED_ABOVE, _until_diverged
from hamjepa.diagnostics.toy_report import ToySettings, run_toy_diagnostics


def test_until_diverged_cuts_at_the_first_non_finite_or_huge_value() -> None:
    t = np.arange(6.0)
    values = np.array([1.0, 2.0, 4.0, DIVERGED_ABOVE * 10, np.inf, np.nan])
    kept_t, kept, at = _until_diverged(t, values)
    assert kept.tolist() == [1.0, 2.0, 4.0] and kept_t.tolist() == [0.0, 1.0, 2.0] and at == 3.0
    same_t, same, none = _until_diverged(t, np.ones(6))
    assert none is None and same.size == 6 and same_t is t


def test_duffing_euler_runs_without_overflow_warnings(tmp_path: Path) -> None:
    # blob=41 (the default) is what drove the area past 1e300 and matplotlib's log axis into overflow.
    settings = ToySettings(grid=5, blob=41, ensemble=16, symplectic_samples=8, sliced_directions=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # matplotlib's "overflow encountered in exp" included
        summary = run_toy_diagnostics(
            tmp_path, systems=["duffing"], integrators=["explicit_euler", "leapfrog"], settings=settings
        )
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written == json.loads(json.dumps(summary))
    assert (tmp_path / "duffing" / "liouville_area.png").stat().st_size > 0
    assert (tmp_path / "duffing" / "sliced_projections.png").stat().st_size > 0
