"""The ``hamjepa`` command line.

Subcommands: ``train``, ``config``, ``eval``, ``compare``, ``embed``, ``export``, ``bench``, ``data``,
``diagnose``, ``theory``, ``reproduce``.
Every user mistake (bad config key, bad data path, bad checkpoint) prints one ``error:`` line and exits 2.
Run ``hamjepa <subcommand> --help`` for the options of each.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from hamjepa import __version__
from hamjepa.errors import HamjepaError
from hamjepa.plugins import import_plugins, load_entry_points

# Modules that register subcommands with ``add_parser(subparsers)``, in help order. Before them
# :func:`build_parser` registers train and bench with the evaluation callbacks (the engine never imports the
# evaluation), then config with the components' config loader and catalog (the config layer sits below the
# registries).
_SUBCOMMAND_MODULES = (
    "hamjepa.evaluation.cli",  # eval, compare
    "hamjepa.inference.cli",  # embed, export
    "hamjepa.data.cli",  # data
    "hamjepa.diagnostics.cli",  # diagnose
    "hamjepa.theory.cli",  # theory
    "hamjepa.reproduce.cli",  # reproduce
)


def _training_callbacks(cfg: Any) -> Any:
    """The evaluation's training callbacks, imported on use so that ``--help`` does not import torch."""
    from hamjepa.evaluation.callbacks import callbacks_from_config

    return callbacks_from_config(cfg)


def _load_config(path: str, overrides: Sequence[str]) -> Any:
    """:func:`hamjepa.components.load_config`, imported on use so that ``--help`` does not import torch."""
    from hamjepa.components import load_config

    return load_config(path, overrides)


def _catalog() -> Any:
    """:data:`hamjepa.components.CATALOG` (what :func:`_load_config` validates against), imported on use."""
    from hamjepa.components import CATALOG

    return CATALOG


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="hamjepa",
        description=(
            "HamJEPA: joint-embedding predictive learning with Hamiltonian latent dynamics. Train HamJEPA, "
            "LeJEPA+SIGReg, MLP-HJEPA or BiJEPA, evaluate frozen features, and check the geometry."
        ),
        epilog="Example: hamjepa train configs/cifar100_hamjepa.yaml data.path=data/cifar100.npz train.epochs=30",
    )
    parser.add_argument("--version", action="version", version=f"hamjepa {__version__}")
    parser.add_argument(
        "--import",
        dest="plugins",
        action="append",
        default=[],
        metavar="MODULE",
        help=(
            "import MODULE before the command runs, so the objectives it registers can be trained, evaluated, "
            "embedded, exported and resumed (repeatable; modules of the 'hamjepa.plugins' entry points are "
            "imported always)"
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from hamjepa.config import cli as config_cli
    from hamjepa.engine import cli as engine_cli

    engine_cli.add_parser(sub, callbacks=_training_callbacks)  # train, bench
    config_cli.add_parser(sub, load=_load_config, catalog=_catalog)  # config
    for name in _SUBCOMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hamjepa`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        load_entry_points()
        import_plugins(args.plugins)
        return int(args.func(args) or 0)
    except HamjepaError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # argument checks of the library: one line too, traceback on request
        if os.environ.get("HAMJEPA_DEBUG"):
            raise
        print(f"error: {' '.join(str(err).split())} (set HAMJEPA_DEBUG=1 for the traceback)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = getattr(args, "interrupt_hint", None)
        print(f"interrupted; {hint}" if hint else "interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
