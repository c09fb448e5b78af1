"""What the config layer needs to know about the registered components, handed in by the caller.

The config layer sits below the objectives and the encoders, so it imports neither registry: whoever loads a
config hands in a :class:`ComponentCatalog`. The library's catalog, backed by the registries (plugins
included), is :data:`hamjepa.components.CATALOG`, and :func:`hamjepa.components.load_config` is the one
user-facing way to load a config with it. A test may hand in a catalog of its own.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["ComponentCatalog"]


@runtime_checkable
class ComponentCatalog(Protocol):
    """The registered objectives and encoders, as the config layer sees them.

    An objective class declares its needs as class attributes (``predictor_kind``, ``needs_phase_split``,
    ``needs_target_encoder``, ``supports_compiled_step``; see ``hamjepa.objectives.base.Objective``), which
    :func:`~hamjepa.config.validation.check_combinations` reads; the constructors' keyword arguments are the
    schemas of the ``objective:`` and ``model:`` sections.
    """

    @property
    def default_objective(self) -> str:
        """The objective of a config without an ``objective:`` section (configs and runs written before the
        section existed)."""
        ...

    @property
    def default_encoder(self) -> str:
        """The encoder of a config without ``model.name``."""
        ...

    def objective_class(self, name: str) -> type:
        """The objective class registered as ``name``; a ``ValueError`` listing the registered names (and the
        closest one) for an unknown name."""
        ...

    def encoder_class(self, name: str) -> type:
        """The encoder class registered as ``name``; a ``ValueError`` as for :meth:`objective_class`."""
        ...

    def objective_names(self) -> list[str]:
        """The registered objectives' names, sorted."""
        ...
