"""Name -> class registry of objectives (``@register_objective("hamjepa")``)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import TypeVar

from hamjepa.objectives.base import Objective

_REGISTRY: dict[str, type[Objective]] = {}

T = TypeVar("T", bound=type[Objective])


def register_objective(name: str) -> Callable[[T], T]:
    """Class decorator registering an :class:`Objective` subclass under ``name``.

    Raises:
        ValueError: if ``name`` is empty or already registered to a different class, or the decorated
            object is not an ``Objective`` subclass.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"objective name must be a non-empty string, got {name!r}")

    def decorator(cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, Objective)):
            raise ValueError(f"register_objective({name!r}) must decorate an Objective subclass, got {cls!r}")
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(
                f"objective name {name!r} is already registered to {existing.__qualname__}; choose another name"
            )
        _REGISTRY[name] = cls
        return cls

    return decorator


def _load_builtin_objectives() -> None:
    # Importing the package registers the built-in objectives (no-op once imported).
    import hamjepa.objectives  # noqa: F401


def available_objectives() -> list[str]:
    """Sorted names of all registered objectives."""
    _load_builtin_objectives()
    return sorted(_REGISTRY)


def get_objective_class(name: str) -> type[Objective]:
    """Return the objective class registered under ``name``.

    Raises:
        ValueError: for an unknown name; the message lists the available names and the closest match.
    """
    _load_builtin_objectives()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        available = sorted(_REGISTRY)
        close = difflib.get_close_matches(str(name), available, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown objective {name!r}; available: {', '.join(available)}.{hint}") from None
