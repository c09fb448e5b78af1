"""Name -> class registry of encoders (``@register_encoder("resnet18_tokens")``); ``model.name`` selects one.

A :class:`~hamjepa.registry.Registry` instance, :data:`ENCODERS`; the functions below are its documented API.
This module imports only the :class:`~hamjepa.models.protocol.Encoder` base class, so a user module can
``from hamjepa.models.registry import register_encoder`` (or ``from hamjepa.models import ...``) in any import
order without importing every built-in encoder first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hamjepa.models.protocol import Encoder
from hamjepa.registry import Registry

__all__ = ["DEFAULT_ENCODER", "ENCODERS", "available_encoders", "get_encoder_class", "register_encoder"]

DEFAULT_ENCODER = "resnet18_tokens"
"""The encoder of a config (or an old run's ``config.yaml``) without ``model.name``: the paper's ResNet-18."""


def _load_builtin_encoders() -> None:
    # Importing the package registers the built-in encoders (no-op once imported).
    import hamjepa.models  # noqa: F401


ENCODERS: Registry[Encoder] = Registry("encoder", Encoder, load_builtins=_load_builtin_encoders)
"""The encoders by name (tests: ``ENCODERS.temporarily(name, cls)``, ``ENCODERS.restoring()``)."""

T = TypeVar("T", bound=type[Encoder])


def register_encoder(name: str) -> Callable[[T], T]:
    """Class decorator registering an :class:`Encoder` subclass under ``name`` (the config's ``model.name``).

    Raises:
        ValueError: if ``name`` is empty or already registered to a different class, or the decorated
            object is not an ``Encoder`` subclass.
    """
    return ENCODERS.register(name)


def available_encoders() -> list[str]:
    """Sorted names of all registered encoders."""
    return ENCODERS.available()


def get_encoder_class(name: str) -> type[Encoder]:
    """Return the encoder class registered under ``name``.

    Raises:
        ValueError: for an unknown name; the message lists the available names and the closest match.
    """
    return ENCODERS.get(name)
