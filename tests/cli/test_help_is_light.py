"""``hamjepa --help`` and every subcommand's ``--help`` run without importing torch (issue 22, item 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

_PROBE = """
import json, sys
from hamjepa.cli import main
for command in json.loads(sys.argv[1]):
    try:
        main([*command, "--help"])
    except SystemExit as exc:
        assert exc.code == 0, (command, exc.code)
    if "torch" in sys.modules:
        print("TORCH_IMPORTED by", *command, file=sys.stderr)
        break
else:
    print("TORCH_FREE", file=sys.stderr)
"""


def _command_paths() -> list[tuple[str, ...]]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "hooks"))
    try:
        from reference import walk_parsers  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    from hamjepa.cli import build_parser

    return [path for path, _ in walk_parsers(build_parser())]


def test_every_help_is_torch_free() -> None:
    paths = _command_paths()
    assert () in paths and ("train",) in paths and ("reproduce", "dynamics") in paths
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(paths)], capture_output=True, text=True, env=env, check=True
    )
    assert done.stderr.strip().splitlines()[-1] == "TORCH_FREE", done.stderr[-2000:]


@pytest.mark.parametrize(
    ("written_out", "source"),
    [
        ("hamjepa.diagnostics.cli:TOY_SYSTEMS", "hamjepa.diagnostics.toy_systems:SYSTEMS"),
        ("hamjepa.sequences.cli:METHODS", "hamjepa.sequences.benchmark:METHODS"),
        ("hamjepa.sequences.cli:TASKS", "hamjepa.sequences.benchmark:TASKS"),
    ],
)
def test_names_written_out_for_help_match_their_source(written_out: str, source: str) -> None:
    import importlib

    def value(ref: str) -> tuple[str, ...]:
        module, name = ref.split(":")
        return tuple(getattr(importlib.import_module(module), name))

    assert value(written_out) == value(source)


def test_lazy_package_exports_resolve() -> None:
    import hamjepa.data
    import hamjepa.diagnostics
    import hamjepa.evaluation
    import hamjepa.inference
    import hamjepa.theory

    for package in (hamjepa.data, hamjepa.diagnostics, hamjepa.evaluation, hamjepa.inference, hamjepa.theory):
        for name in package.__all__:
            assert getattr(package, name) is not None, (package.__name__, name)
        assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = hamjepa.evaluation.nope
