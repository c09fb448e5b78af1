"""One generic name -> class registry, the mechanism behind every registered component.

The objectives (``objective.name``) and the encoders (``model.name``) are two instances of :class:`Registry`
(:mod:`hamjepa.objectives.registry`, :mod:`hamjepa.models.registry`); a component registers itself with the
instance's decorator, and the config layer finds it by name. Example::

    from torch import nn

    from hamjepa.registry import Registry

    heads: Registry[nn.Module] = Registry("head", nn.Module)

    @heads.register("linear")
    class LinearHead(nn.Module): ...

    heads.get("linear")  # LinearHead
    heads.get("linaer")  # ValueError: unknown head 'linaer'; available: linear. Did you mean 'linear'?

Tests register a class for the length of a block with :meth:`Registry.temporarily`, or undo whatever a block
registered with :meth:`Registry.restoring`; neither touches the registry's storage directly.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")
C = TypeVar("C", bound=type)


class Registry(Generic[T]):
    """Classes registered by name, all subclasses of one base class.

    Args:
        kind: what the classes are, in messages (``"objective"``, ``"encoder"``).
        base: the class every registered class must subclass.
        load_builtins: called (once, on the first look-up) to import the modules that register the built-in
            classes; None when there are none. A registry in a package usually passes a function importing
            the package, so that ``get`` works whatever the user imported first.
    """

    def __init__(self, kind: str, base: type[T], *, load_builtins: Callable[[], object] | None = None) -> None:
        self.kind = kind
        self.base = base
        self._load_builtins = load_builtins
        self._classes: dict[str, type[T]] = {}

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.base.__qualname__}, {len(self._classes)} registered)"

    def _builtins(self) -> None:
        if self._load_builtins is not None:
            load, self._load_builtins = self._load_builtins, None
            try:
                load()
            except BaseException:
                self._load_builtins = load  # retried (and the error raised again) on the next look-up
                raise

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")

    def add(self, name: str, cls: type[T]) -> None:
        """Register ``cls`` under ``name`` (what the :meth:`register` decorator does).

        Raises:
            ValueError: if ``name`` is empty, ``cls`` is not a subclass of the base class, or ``name`` is
                already registered to a different class (registering the same class again is a no-op).
        """
        self._check_name(name)
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise ValueError(f"registering {self.kind} {name!r} needs a {self.base.__qualname__} subclass, got {cls!r}")
        existing = self._classes.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(
                f"{self.kind} name {name!r} is already registered to {existing.__qualname__}; choose another name"
            )
        self._classes[name] = cls

    def register(self, name: str) -> Callable[[C], C]:
        """Class decorator registering the decorated class under ``name`` (see :meth:`add` for the checks)."""
        self._check_name(name)

        def decorator(cls: C) -> C:
            self.add(name, cls)
            return cls

        return decorator

    def unregister(self, name: str) -> type[T]:
        """Remove ``name`` and return its class.

        Raises:
            ValueError: for a name that is not registered (the message lists the registered ones).
        """
        cls = self.get(name)
        del self._classes[name]
        return cls

    def get(self, name: str) -> type[T]:
        """The class registered under ``name``.

        Raises:
            ValueError: for an unknown name; the message lists the available names and the closest match.
        """
        self._builtins()
        cls = self._classes.get(name) if isinstance(name, str) else None
        if cls is not None:
            return cls
        available = sorted(self._classes)
        close = difflib.get_close_matches(str(name), available, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown {self.kind} {name!r}; available: {', '.join(available)}.{hint}")

    def available(self) -> list[str]:
        """Sorted names of all registered classes (the built-ins included)."""
        self._builtins()
        return sorted(self._classes)

    def __contains__(self, name: object) -> bool:
        self._builtins()
        return name in self._classes

    @contextmanager
    def temporarily(self, name: str, cls: type[T]) -> Iterator[type[T]]:
        """Register ``cls`` under ``name`` for the length of a ``with`` block (tests); yields ``cls``.

        The name must be free (or already ``cls``'s); on exit the registry is as it was before the block.
        """
        with self.restoring():
            self.add(name, cls)
            yield cls

    @contextmanager
    def restoring(self) -> Iterator[None]:
        """On leaving the ``with`` block, the registry holds exactly what it held on entering it (tests that
        run code which registers classes)."""
        self._builtins()
        saved = dict(self._classes)
        try:
            yield
        finally:
            self._classes.clear()
            self._classes.update(saved)
