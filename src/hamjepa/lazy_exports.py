"""Package attributes imported on first use (PEP 562), so that importing a package stays light.

A package's ``__init__`` declares which names each submodule exports; importing the package imports none of
them (and so not torch), while ``from hamjepa.evaluation import evaluate`` imports ``.pipeline`` when asked.
This keeps ``hamjepa --help`` and every subcommand's ``--help`` free of torch: the command-line modules live
inside these packages. Example::

    __all__, __getattr__, __dir__ = lazy_exports(__name__, {".pipeline": ("evaluate",)})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` of ``package`` exporting ``exports`` (submodule -> names) lazily.

    Args:
        package: the package's ``__name__``.
        exports: relative submodule name (``".pipeline"``) -> the names it exports through the package.

    Raises:
        ValueError: when two submodules export the same name.
    """
    owner: dict[str, str] = {}
    for module, names in exports.items():
        for name in names:
            if name in owner:
                raise ValueError(f"{package}: {name!r} is exported by both {owner[name]} and {module}")
            owner[name] = module

    def __getattr__(name: str) -> Any:
        module = owner.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value  # cache: later look-ups do not come back here
        return value

    def __dir__() -> list[str]:
        return sorted(set(importlib.import_module(package).__dict__) | set(owner))

    return sorted(owner), __getattr__, __dir__
