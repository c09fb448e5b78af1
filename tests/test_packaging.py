"""Packaging metadata that setuptools accepts without deprecation warnings (issue 17, item 3)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

if sys.version_info < (3, 11):
    pytest.skip("tomllib needs Python 3.11", allow_module_level=True)
import tomllib

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())


def test_license_is_an_spdx_string_and_setuptools_is_new_enough_to_read_it() -> None:
    # The TOML-table form ({text = ...}) is deprecated (refused by setuptools from February 2027).
    assert isinstance(PYPROJECT["project"]["license"], str)
    assert PYPROJECT["project"]["license"] == "MIT"
    # SPDX license expressions need setuptools >= 77 (PEP 639).
    (spec,) = [r for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")]
    match = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", spec)
    assert match and int(match.group(1)) >= 77, spec
    classifiers = PYPROJECT["project"].get("classifiers", [])
    assert not [c for c in classifiers if c.startswith("License ::")]  # PEP 639 forbids both
