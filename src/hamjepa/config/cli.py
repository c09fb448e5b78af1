"""``hamjepa config CONFIG [key=value ...]``: the resolved config with every key's documentation.

Loading a config needs the registered components, which sit above this layer: the top-level CLI hands in the
loader (:func:`hamjepa.components.load_config`) and the catalog (:data:`hamjepa.components.CATALOG`, whose
objective and encoder classes document the ``objective:`` and ``model:`` keys) when it registers the command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hamjepa.config.catalog import ComponentCatalog
    from hamjepa.config.schema import Config

ConfigLoader = Callable[[str, Sequence[str]], "Config"]
"""``(file, overrides) -> Config``: :func:`hamjepa.components.load_config`."""
CatalogGetter = Callable[[], "ComponentCatalog"]
"""``() -> ComponentCatalog``: the catalog ``load`` validates against (:data:`hamjepa.components.CATALOG`),
fetched on use so that ``hamjepa --help`` does not import the components."""


def run_config(args: argparse.Namespace, *, load: ConfigLoader, catalog: CatalogGetter) -> int:
    """Print the resolved config of ``args.args`` (a YAML file and overrides), loaded with ``load``, with each
    key's help (the ``objective:`` and encoder keys' from the classes of ``catalog()``)."""
    from hamjepa.config import ConfigError
    from hamjepa.config.describe import describe_config

    configs = [a for a in args.args if "=" not in a]
    overrides = [a for a in args.args if "=" in a]
    if len(configs) != 1:
        raise ConfigError(
            f"config: expected one CONFIG file followed by key=value overrides, got {configs or 'none'} "
            "(e.g. `hamjepa config configs/cifar100_hamjepa.yaml train.epochs=5`)"
        )
    cfg = load(configs[0], overrides)
    title = f"{configs[0]}" + (f" with {' '.join(overrides)}" if overrides else "") + ", resolved and validated"
    print(describe_config(cfg, title=title, catalog=catalog()), end="")
    return 0


def add_parser(subparsers: Any, *, load: ConfigLoader, catalog: CatalogGetter) -> None:
    """Register ``config`` on an ``argparse`` subparsers object; ``load`` loads a config file with overrides,
    validating it against the components ``catalog()`` returns."""
    p = subparsers.add_parser(
        "config",
        help="print a config resolved (defaults + file + overrides) with every key's documentation",
        description=(
            "Load CONFIG with its key=value overrides exactly as `hamjepa train` would (a mistyped key is an "
            "error naming the closest one) and print the result as YAML, each key preceded by its documentation. "
            "The output is itself a valid config file."
        ),
        epilog="Example: hamjepa config configs/cifar100_hamjepa.yaml data.subset=512 > my_config.yaml",
    )
    p.add_argument(
        "args",
        nargs="+",
        metavar="CONFIG [key=value ...]",
        help="YAML config file followed by dotted overrides (key.subkey=value)",
    )
    p.set_defaults(func=partial(run_config, load=load, catalog=catalog))
