"""Numerical verification of docs/spec.md §J: every check passes, and the key claims are re-asserted directly."""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

import pytest
import torch

import hamjepa.theory.checks as checks
import hamjepa.theory.covariance as covariance
from hamjepa.theory.checks import CHECKS, TheoryContext, regret
from hamjepa.theory.cli import add_parser
from hamjepa.theory.linalg import random_spd, spd_inv_sqrt, worst_case_variance


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_every_check_passes(name: str) -> None:
    rows = CHECKS[name](TheoryContext(dim=6, budget=2.0, seed=0))
    assert rows
    failed = [r for r in rows if not r.passed]
    assert not failed, failed


def test_minimax_brute_force_lands_on_closed_form() -> None:
    gen = torch.Generator().manual_seed(5)
    d, c = 4, 3.0
    h = random_spd(d, gen)
    found = covariance._minimise_worst_case_variance(h, c, torch.eye(d, dtype=torch.float64))
    star = (c / d) * torch.linalg.inv(h)
    assert float((found - star).norm() / star.norm()) < 1e-4
    assert float(worst_case_variance(h, found)) == pytest.approx(d / c, rel=1e-4)
    # Any other feasible covariance is worse, e.g. the isotropic one (Thm 3.4 ratio > 1 for H not ∝ I).
    iso = (c / float(torch.trace(h))) * torch.eye(d, dtype=torch.float64)
    assert float(worst_case_variance(h, iso)) > d / c * (1 + 1e-3)


def test_regret_blows_up_along_h_eps() -> None:
    gen = torch.Generator().manual_seed(7)
    d, c = 5, 1.0
    b = random_spd(d, gen)
    b_is = spd_inv_sqrt(b)

    def r(eps: float) -> float:
        diag = torch.ones(d, dtype=torch.float64)
        diag[0] = eps
        return regret(b, b_is @ torch.diag(diag) @ b_is, c)

    eps_values = [10.0**-k for k in range(0, 10)]
    values = [r(e) for e in eps_values]
    assert values[0] == pytest.approx(1.0, abs=1e-10)  # eps = 1: H = B^{-1}, the oracle shape
    assert all(b2 > b1 for b1, b2 in itertools.pairwise(values))
    for bound in (10.0, 1e4, 1e8):
        assert any(v > bound for v in values), bound
    for e, v in zip(eps_values, values, strict=True):
        assert v == pytest.approx((d - 1 + e) / (d * e), rel=1e-6)


def test_context_validation() -> None:
    with pytest.raises(ValueError, match="dim"):
        TheoryContext(dim=1)
    with pytest.raises(ValueError, match="budget"):
        TheoryContext(budget=0.0)


def test_cli_writes_json_and_markdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cheap = {k: CHECKS[k] for k in ("price_of_isotropy", "spd_cone", "regret")}
    monkeypatch.setattr(checks, "CHECKS", cheap)
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["theory", "--out", str(tmp_path), "--seed", "3", "--dim", "4"])
    assert args.func(args) == 0
    data = json.loads((tmp_path / "theory.json").read_text())
    assert data["settings"] == {"dim": 4, "budget": 2.0, "seed": 3}
    assert {row["group"] for row in data["checks"]} == set(cheap)
    assert all(row["passed"] for row in data["checks"])
    assert math.isfinite(data["checks"][0]["numerical"])
    md = (tmp_path / "theory.md").read_text()
    assert "| ref | claim |" in md and "checks passed" in md
    assert "Thm 3.4" in capsys.readouterr().out


def test_cli_reports_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    failing = checks.CheckRow("X", "deliberately false", 1.0, 2.0, "equal", False)
    monkeypatch.setattr(checks, "CHECKS", {"false": lambda ctx: [failing]})
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["theory"])
    assert args.func(args) == 1
