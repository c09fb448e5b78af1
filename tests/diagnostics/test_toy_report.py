"""``hamjepa diagnose toy`` (``run_toy_diagnostics``) at reduced settings."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from hamjepa.diagnostics.cli import add_parser
from hamjepa.diagnostics.toy_report import ToySettings, run_toy_diagnostics
from hamjepa.errors import HamjepaError

FIGURES = (
    "energy_drift_heatmap",
    "reversibility",
    "liouville_area",
    "liouville_blob",
    "energy_vs_time",
    "symplecticity_defect",
    "covariance_stability",
    "sliced_projections",
)
STEPS = 30


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def toy_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One reduced CLI run (harmonic oscillator; figures dominate the cost) shared by the tests below."""
    out = tmp_path_factory.mktemp("toy")
    args = _parse(
        [
            "diagnose",
            "toy",
            "--out",
            str(out),
            "--system",
            "harmonic",
            "--grid",
            "13",
            "--steps",
            str(STEPS),
            "--blob",
            "7",
            "--ensemble",
            "24",
            "--samples",
            "12",
        ]
    )
    assert args.func(args) == 0
    return out


def test_cli_writes_every_figure(toy_out: Path) -> None:
    for name in FIGURES:
        png = toy_out / "harmonic" / f"{name}.png"
        assert png.is_file() and png.stat().st_size > 1000, name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_summary_contents(toy_out: Path) -> None:
    summary = json.loads((toy_out / "summary.json").read_text())
    assert summary["settings"]["steps"] == STEPS and summary["settings"]["grid"] == 13
    system = summary["systems"]["harmonic"]
    rows = system["integrators"]
    assert set(rows) == {"explicit_euler", "symplectic_euler", "leapfrog"}
    assert system["analytic_checks"]["euler_area_ratio_measured"] == pytest.approx((1 + 0.1**2) ** STEPS, rel=1e-12)
    assert rows["leapfrog"]["area_ratio_max_abs_deviation"] < 1e-13
    assert rows["explicit_euler"]["symplecticity_fraction_at_roundoff"] == 0.0
    assert rows["leapfrog"]["symplecticity_defect"]["max"] < 1e-15
    assert (
        rows["leapfrog"]["reversibility_error"]["median"]
        < 1e-4
        < rows["explicit_euler"]["reversibility_error"]["median"]
    )
    assert set(system["figures"]) == set(FIGURES)
    for row in rows.values():
        sliced = row["sliced"]
        assert sliced["directions"] == 64 and sliced["steps"] == STEPS
        assert len(sliced["curves"]["sliced_w1_rel"]) == STEPS + 1 and sliced["curves"]["sliced_w1_rel"][0] == 0.0
    # harmonic oscillator: explicit Euler scales the ensemble by sqrt(1 + dt^2) per step (and rotates it), so
    # projected variances grow by about STEPS * log(1 + dt^2); leapfrog only rotates / shears them
    euler = rows["explicit_euler"]["sliced"]["log_var_ratio_final"]["median"]
    assert euler == pytest.approx(STEPS * math.log(1 + 0.1**2), abs=0.05)
    assert euler > 3 * rows["leapfrog"]["sliced"]["log_var_ratio_final"]["median_abs"]


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="grid"):
        run_toy_diagnostics("unused", settings=ToySettings(grid=1))
    with pytest.raises(ValueError, match="unknown integrator"):
        run_toy_diagnostics("unused", integrators=["rk4"], settings=ToySettings(steps=2, grid=3))


def test_cli_diagnose_missing_run_dir(tmp_path: Path) -> None:
    args = _parse(["diagnose", str(tmp_path / "nope")])
    with pytest.raises(HamjepaError, match="neither 'toy' nor an existing run"):  # main() prints `error: ...`
        args.func(args)
