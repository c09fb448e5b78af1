"""A config written out with the documentation of every key (``hamjepa config CONFIG [overrides]``).

The documentation of a key is the attribute docstring under its field in :mod:`hamjepa.config.schema`
(the string right after ``name: type = value``), the same text the site's config reference shows.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import textwrap
from typing import Any

import yaml

from hamjepa.config.schema import Config

__all__ = ["attribute_docstrings", "class_docstrings", "describe_config"]


def attribute_docstrings(cls: type) -> dict[str, str]:
    """Attribute docstrings of a class body: the string literal right after ``name: type = value``."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, following in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = inspect.cleandoc(following.value.value)
    return docs


def class_docstrings(cls: type) -> dict[str, str]:
    """Attribute docstrings of ``cls`` and its dataclass bases (the subclass wins)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            docs.update(attribute_docstrings(klass))
    return docs


def _scalar(value: Any) -> str:
    """``value`` as one line of YAML flow style (``42``, ``null``, ``[0.9, 0.999]``, ``'a: b'``)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _comment(text: str, indent: str, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n\n"):
        wrapped = textwrap.wrap(" ".join(paragraph.replace("``", "`").split()), width=max(width - len(indent) - 2, 40))
        lines += [f"{indent}# {line}" for line in wrapped]
    return lines


def _section(obj: Any, indent: str, width: int) -> list[str]:
    docs = class_docstrings(type(obj))
    lines: list[str] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        lines += _comment(docs.get(f.name, ""), indent, width)
        if f.metadata.get("written_flat"):  # model.kwargs: the encoder's arguments sit flat in the section
            lines += [f"{indent}{k}: {_scalar(v)}" for k, v in value.items()]
        elif dataclasses.is_dataclass(value):
            lines.append(f"{indent}{f.name}:")
            lines += _section(value, indent + "  ", width)
        elif isinstance(value, dict):
            lines.append(f"{indent}{f.name}:" + ("" if value else " {}"))
            lines += [f"{indent}  {k}: {_scalar(v)}" for k, v in value.items()]
        else:
            lines.append(f"{indent}{f.name}: {_scalar(value)}")
    return lines


def describe_config(cfg: Config, *, title: str = "", width: int = 100) -> str:
    """``cfg`` as YAML (loadable: ``yaml.safe_load`` gives ``cfg.to_dict()``) with each key's documentation
    as a comment above it.

    Args:
        cfg: a validated config.
        title: a first comment line (e.g. the file and overrides it came from).
        width: wrap the comments to this many columns.
    """
    head = _comment(title, "", width) if title else []
    return "\n".join([*head, *_section(cfg, "", width)]) + "\n"
