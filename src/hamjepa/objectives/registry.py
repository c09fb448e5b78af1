"""Name -> class registry of objectives (``@register_objective("my_objective")``); ``objective.name`` selects one.

A :class:`~hamjepa.registry.Registry` instance, :data:`OBJECTIVES`; the functions below are its documented API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hamjepa.objectives.base import Objective
from hamjepa.registry import Registry

__all__ = ["DEFAULT_OBJECTIVE", "OBJECTIVES", "available_objectives", "get_objective_class", "register_objective"]

DEFAULT_OBJECTIVE = "hamjepa"
"""The objective of a config (or an old run's ``config.yaml``) without an ``objective:`` section: the paper's
HamJEPA. The one place outside the objective's own file that names it (handed to the config layer by
:data:`hamjepa.components.CATALOG`)."""


def _load_builtin_objectives() -> None:
    # Importing the package registers the built-in objectives (no-op once imported).
    import hamjepa.objectives  # noqa: F401


OBJECTIVES: Registry[Objective] = Registry("objective", Objective, load_builtins=_load_builtin_objectives)
"""The objectives by name (tests: ``OBJECTIVES.temporarily(name, cls)``, ``OBJECTIVES.restoring()``)."""

T = TypeVar("T", bound=type[Objective])


def register_objective(name: str) -> Callable[[T], T]:
    """Class decorator registering an :class:`Objective` subclass under ``name`` (the config's ``objective.name``).

    Raises:
        ValueError: if ``name`` is empty or already registered to a different class, or the decorated
            object is not an ``Objective`` subclass.
    """
    return OBJECTIVES.register(name)


def available_objectives() -> list[str]:
    """Sorted names of all registered objectives."""
    return OBJECTIVES.available()


def get_objective_class(name: str) -> type[Objective]:
    """Return the objective class registered under ``name``.

    Raises:
        ValueError: for an unknown name; the message lists the available names and the closest match.
    """
    return OBJECTIVES.get(name)
