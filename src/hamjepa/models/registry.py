"""Name -> class registry of encoders (``@register_encoder("resnet18_tokens")``); ``model.name`` selects one.

This module imports only the :class:`~hamjepa.models.protocol.Encoder` base class, so a user module can
``from hamjepa.models.registry import register_encoder`` (or ``from hamjepa.models import ...``) in any import
order without importing every built-in encoder first.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import TypeVar

from hamjepa.models.protocol import Encoder

__all__ = ["DEFAULT_ENCODER", "available_encoders", "get_encoder_class", "register_encoder"]

DEFAULT_ENCODER = "resnet18_tokens"
"""The encoder of a config (or an old run's ``config.yaml``) without ``model.name``: the paper's ResNet-18."""

_REGISTRY: dict[str, type[Encoder]] = {}

T = TypeVar("T", bound=type[Encoder])


def register_encoder(name: str) -> Callable[[T], T]:
    """Class decorator registering an :class:`Encoder` subclass under ``name`` (the config's ``model.name``).

    Raises:
        ValueError: if ``name`` is empty or already registered to a different class, or the decorated
            object is not an ``Encoder`` subclass.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"encoder name must be a non-empty string, got {name!r}")

    def decorator(cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, Encoder)):
            raise ValueError(f"register_encoder({name!r}) must decorate an Encoder subclass, got {cls!r}")
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(
                f"encoder name {name!r} is already registered to {existing.__qualname__}; choose another name"
            )
        _REGISTRY[name] = cls
        return cls

    return decorator


def _load_builtin_encoders() -> None:
    # Importing the package registers the built-in encoders (no-op once imported).
    import hamjepa.models  # noqa: F401


def available_encoders() -> list[str]:
    """Sorted names of all registered encoders."""
    _load_builtin_encoders()
    return sorted(_REGISTRY)


def get_encoder_class(name: str) -> type[Encoder]:
    """Return the encoder class registered under ``name``.

    Raises:
        ValueError: for an unknown name; the message lists the available names and the closest match.
    """
    _load_builtin_encoders()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        available = sorted(_REGISTRY)
        close = difflib.get_close_matches(str(name), available, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown encoder {name!r}; available: {', '.join(available)}.{hint}") from None
