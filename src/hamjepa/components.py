"""The registered components, handed to the config layer, and the one user-facing way to load a config.

The config layer (:mod:`hamjepa.config`) sits below the objectives and the encoders and imports neither
registry; it validates against a :class:`~hamjepa.config.ComponentCatalog` handed in by its caller. This module
is that caller for the whole library: :data:`CATALOG` looks components up in the objective and encoder
registries at call time, so a component registered by a user's module (``hamjepa --import MODULE``, a
``hamjepa.plugins`` entry point, or a plain import before loading) is visible. Example::

    from hamjepa.components import load_config

    cfg = load_config("configs/cifar100_hamjepa.yaml", ["train.epochs=1", "data.subset=512"])

:func:`config_from_dict` reads a config already parsed into a mapping (a run's ``config.yaml``, the ``config``
of a checkpoint or of an export). Every command (``train``, ``config``, ``eval``, ``embed``, ``export``,
``reproduce``, checkpoint and export loading) loads its config through these two functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hamjepa.config import ComponentCatalog, Config
from hamjepa.config import config_from_dict as _config_from_dict
from hamjepa.config import load_config as _load_config
from hamjepa.models.registry import DEFAULT_ENCODER, available_encoders, get_encoder_class
from hamjepa.objectives.registry import DEFAULT_OBJECTIVE, available_objectives, get_objective_class

__all__ = ["CATALOG", "RegistryCatalog", "config_from_dict", "load_config"]


@dataclass(frozen=True)
class RegistryCatalog:
    """A :class:`~hamjepa.config.ComponentCatalog` backed by the objective and encoder registries."""

    default_objective: str = DEFAULT_OBJECTIVE
    """The objective of a config without an ``objective:`` section."""
    default_encoder: str = DEFAULT_ENCODER
    """The encoder of a config without ``model.name``."""

    def objective_class(self, name: str) -> type:
        """:func:`hamjepa.objectives.get_objective_class` (a ``ValueError`` naming the registered ones)."""
        return get_objective_class(name)

    def encoder_class(self, name: str) -> type:
        """:func:`hamjepa.models.get_encoder_class` (a ``ValueError`` naming the registered ones)."""
        return get_encoder_class(name)

    def objective_names(self) -> list[str]:
        """The registered objectives, sorted."""
        return available_objectives()

    def encoder_names(self) -> list[str]:
        """The registered encoders, sorted."""
        return available_encoders()


CATALOG: ComponentCatalog = RegistryCatalog()
"""The library's components: every registered objective and encoder, plugins included."""


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Load a YAML config, apply dotted overrides (``["train.epochs=80", "seed=1"]``), validate it against the
    registered components and return the typed :class:`~hamjepa.config.Config`.

    Raises:
        hamjepa.config.ConfigError: a missing file, invalid YAML, an unknown key or component name (with the
            closest valid one), a wrong type or an impossible combination; the message names the key and the fix.
    """
    return _load_config(path, overrides, catalog=CATALOG)


def config_from_dict(values: dict[str, Any]) -> Config:
    """Build and validate a :class:`~hamjepa.config.Config` from a nested mapping (see :func:`load_config`)."""
    return _config_from_dict(values, catalog=CATALOG)
