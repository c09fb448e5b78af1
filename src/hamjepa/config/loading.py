"""Loading a config: YAML files (safe loader), dotted command-line overrides, and the validated build.

:func:`config_from_dict` and :func:`load_config` take the registered components as ``catalog=`` (the config
layer imports no registry); users call :func:`hamjepa.components.load_config`, which hands in the library's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from hamjepa.config.catalog import ComponentCatalog
from hamjepa.config.coercion import build_dataclass
from hamjepa.config.schema import Config, ConfigError
from hamjepa.config.validation import check_combinations, validate_model, validate_objective


def config_from_dict(values: dict[str, Any], *, catalog: ComponentCatalog) -> Config:
    """Build and validate a :class:`Config` from a nested dict (YAML content, a run's ``config.yaml``, the
    ``config`` of a checkpoint or an export).

    Args:
        values: the nested mapping. Without an ``objective:`` section it means ``catalog.default_objective``
            (configs and runs written before the section existed); without ``model.name``,
            ``catalog.default_encoder``.
        catalog: the registered components (:data:`hamjepa.components.CATALOG`).
    """
    if not isinstance(values, dict):
        raise ConfigError(f"config: the top level must be a mapping, got {type(values).__name__}.")
    values = dict(values)
    objective = values.pop("objective", {"name": catalog.default_objective})
    if not isinstance(objective, dict):
        raise ConfigError("config: 'objective' must be a mapping with at least 'name'.")
    model = values.pop("model", {})
    if not isinstance(model, dict):
        raise ConfigError(f"config: 'model' must be a mapping of keys, got {model!r}.")
    cfg = build_dataclass(Config, values, "")
    cfg.model = validate_model(model, image_size=cfg.data.image_size, catalog=catalog)
    cfg.objective = validate_objective(objective, catalog=catalog)
    check_combinations(cfg, catalog=catalog)
    return cfg


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into (``['a','b','c']``, YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"config: override '{text}' must look like key.subkey=value (e.g. train.epochs=80).")
    key, raw = text.split("=", 1)
    if not key:
        raise ConfigError(f"config: override '{text}' has an empty key.")
    return key.split("."), yaml.safe_load(raw) if raw != "" else ""


def apply_overrides(values: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply dotted overrides to a nested dict (in place) and return it."""
    for text in overrides:
        path, value = parse_override(text)
        node = values
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"config: override '{text}': '{part}' is a value, not a section.")
            node = child
        node[path[-1]] = value
    return values


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"config: file not found: {path}. Pass a YAML config file (the repository's configs/ folder has one "
            "per method; `hamjepa config FILE` prints a config with every key explained)."
        )
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config: {path} is not valid YAML: {err}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config: {path} must hold a mapping at the top level.")
    return values


def load_config(path: str | Path, overrides: Sequence[str] | None = None, *, catalog: ComponentCatalog) -> Config:
    """Load a YAML config, apply dotted overrides, validate against ``catalog``, and return the typed
    :class:`Config` (users: :func:`hamjepa.components.load_config`)."""
    values = apply_overrides(load_yaml(path), list(overrides or []))
    return config_from_dict(values, catalog=catalog)


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML."""
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
