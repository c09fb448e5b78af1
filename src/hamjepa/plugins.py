"""Components from outside the package: plugin modules imported before a command runs.

An objective (or any other registered component) defined in the user's own module is registered when that
module is imported. The ``hamjepa`` command imports such modules before the subcommand runs:

* ``hamjepa --import MODULE ...`` (repeatable): a module on ``sys.path`` (``PYTHONPATH=. hamjepa --import
  my_objectives train ...``);
* every entry point of the group ``hamjepa.plugins`` of the installed distributions, e.g. in the plugin's
  ``pyproject.toml``::

      [project.entry-points."hamjepa.plugins"]
      my_objectives = "my_package.objectives"

The modules loaded are recorded in every run's ``provenance.jsonl`` (key ``plugins``; see
:func:`hamjepa.provenance.provenance`) and in an export's manifest, so that ``eval``, ``embed``, ``export`` and
``train --resume`` of such a run name the module to import when it is missing (:func:`missing_plugins_hint`).
Library users import their module themselves; :func:`import_plugins` also records it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib.metadata import entry_points

from hamjepa.errors import HamjepaError

ENTRY_POINT_GROUP = "hamjepa.plugins"
"""The entry-point group whose modules the ``hamjepa`` command imports at start-up."""

_LOADED: list[str] = []


class PluginError(HamjepaError):
    """A plugin module that cannot be imported; the message names the module and the fix."""


def import_plugins(modules: Iterable[str]) -> list[str]:
    """Import each module (which registers its components) and record it; returns the modules imported.

    Raises:
        PluginError: a module that cannot be imported (the message carries the original error).
    """
    done = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as err:  # any failure of a user's module is reported as one line
            raise PluginError(
                f"--import {name}: cannot import it ({type(err).__name__}: {err}); put the folder holding it on "
                "PYTHONPATH (e.g. PYTHONPATH=. hamjepa --import ...) or install its package"
            ) from err
        if name not in _LOADED:
            _LOADED.append(name)
        done.append(name)
    return done


def load_entry_points(group: str = ENTRY_POINT_GROUP) -> list[str]:
    """Import the module of every installed entry point of ``group``; returns the modules imported."""
    modules = []
    for point in entry_points(group=group):
        try:
            point.load()
        except Exception as err:
            raise PluginError(
                f"entry point {point.name!r} of group {group!r} ({point.value}) failed to load "
                f"({type(err).__name__}: {err}); fix or uninstall the package that provides it"
            ) from err
        module = point.value.split(":")[0]
        if module not in _LOADED:
            _LOADED.append(module)
        modules.append(module)
    return modules


def loaded_plugins() -> list[str]:
    """The plugin modules imported in this process so far, in order."""
    return list(_LOADED)


def missing_plugins_hint(recorded: Iterable[str]) -> str:
    """A sentence naming the recorded plugin modules not imported in this process (``""`` when none).

    Appended to "cannot read this config" messages: a run trained with ``--import my_objectives`` needs it
    again for ``eval``, ``embed``, ``export`` and ``--resume``.
    """
    missing = [name for name in dict.fromkeys(recorded) if name not in _LOADED]
    if not missing:
        return ""
    flags = " ".join(f"--import {name}" for name in missing)
    return (
        f"; the run was trained with the plugin module(s) {', '.join(missing)}: "
        f"run `hamjepa {flags} <command> ...` with the module on PYTHONPATH"
    )
