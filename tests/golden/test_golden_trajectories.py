"""Numbers unchanged: every objective's float64 20-step trajectory equals the recorded one to 1e-12.

The record (``golden_trajectories.json``, made by ``tests/golden/trajectories.py``) holds every logged loss
term at every step and, for every tensor of the final encoder and objective state, its sum and sum of squares.
A change of *how* something is computed must leave all of them equal to round-off; a change of *what* is
computed regenerates the record in the same commit and says so.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from tests.golden.trajectories import CASES, GOLDEN, run_case

TOL = 1e-12


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=TOL, abs_tol=TOL)


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_trajectory_equals_the_record(case: str, tmp_path: Path, cifar100_npz: Path) -> None:
    golden = json.loads(GOLDEN.read_text())["cases"][case]
    got = run_case(case, cifar100_npz, tmp_path / case)
    assert sorted(got["terms"]) == sorted(golden["terms"]), "the logged terms changed"
    for term, values in golden["terms"].items():
        pairs = enumerate(zip(got["terms"][term], values, strict=True))
        bad = [(i + 1, a, b) for i, (a, b) in pairs if not _close(a, b)]
        assert not bad, f"{case}: term {term!r} differs at (step, now, recorded) {bad[:3]}"
    assert sorted(got["params"]) == sorted(golden["params"]), "the saved state's tensor names changed"
    for key, (s, ss) in golden["params"].items():
        now = got["params"][key]
        assert _close(now[0], s) and _close(now[1], ss), f"{case}: {key} (sum, sum of squares) {now} != {[s, ss]}"
