"""Type checking of config values against their annotations, with lossless conversions and key hints."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from hamjepa.config.schema import ConfigError


def suggest_key(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"{hint} Valid keys: {', '.join(sorted(valid))}."


def type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert lossless cases (int -> float, list -> tuple)."""
    if tp is Any or tp is inspect.Parameter.empty:
        return value
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except ConfigError:
                pass  # try the next member; the error below names them all
        raise ConfigError(f"config: '{key}' = {value!r} must be {' or '.join(type_name(a) for a in args)}.")
    if origin is Literal:
        if isinstance(value, bool) and not any(isinstance(a, bool) for a in get_args(tp)):
            # YAML 1.1 reads the bare words off/on (and no/yes) as booleans: `train.wandb=off` arrives as False.
            word = "on" if value else "off"
            if word in get_args(tp):
                return word
        if value in get_args(tp):
            return value
        close = difflib.get_close_matches(str(value), [str(a) for a in get_args(tp)], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"config: '{key}' = {value!r} is not one of {type_name(tp)}.{hint}")
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"config: '{key}' = {value!r} must be a list of {len(args)} values.")
        return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin in (list, dict):
        if not isinstance(value, origin):
            raise ConfigError(f"config: '{key}' = {value!r} must be a {origin.__name__}.")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config: '{key}' = {value!r} must be true or false.")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config: '{key}' = {value!r} must be an integer.")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads '1e-3' (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config: '{key}' = {value!r} must be a number.")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config: '{key}' = {value!r} must be a string.")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"config: '{key}' = {value!r} must be {type_name(tp)}.")


def build_dataclass(cls: type, values: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        full = f"{prefix}{key}"
        if key not in hints:
            raise ConfigError(f"config: unknown key '{full}'.{suggest_key(key, valid)}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise ConfigError(f"config: '{full}' must be a mapping of keys, got {value!r}.")
            kwargs[key] = build_dataclass(tp, value, f"{full}.")
        else:
            kwargs[key] = coerce(value, tp, full)
    return cls(**kwargs)
