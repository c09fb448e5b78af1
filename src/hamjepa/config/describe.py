"""A config written out with the documentation of every key (``hamjepa config CONFIG [overrides]``).

The documentation of a key is the attribute docstring under its field in :mod:`hamjepa.config.schema`
(the string right after ``name: type = value``); that of an ``objective:`` key or of an encoder's ``model:``
key is its entry in the ``Args:`` section of the registered class's docstring (:func:`argument_docstrings`).
The site's config reference shows the same texts (``docs/hooks/reference.py`` uses these functions).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import re
import textwrap
from typing import Any

import yaml

from hamjepa.config.catalog import ComponentCatalog
from hamjepa.config.schema import Config

__all__ = ["args_section", "argument_docstrings", "attribute_docstrings", "class_docstrings", "describe_config"]


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


_ARGS_HEADER = re.compile(r"(?:Args|Arguments|Parameters)(?:\s*\([^)]*\))?:")
"""A Google-style arguments header: ``Args:``, also ``Args (keyword-only):``."""
_ARGS_ENTRY = re.compile(r"(?P<names>\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?:\([^)]*\))?:(?:\s+(?P<text>.*))?")
"""One entry of that section: ``name: text``, ``name (type): text`` or ``a, b, c: text`` (shared by the names)."""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def args_section(docstring: str | None) -> dict[str, str]:
    """The entries of the Google-style ``Args:`` sections of ``docstring``: ``{argument: text}`` (the text's
    lines joined with single spaces; an entry naming several arguments, ``a, b: text``, documents each)."""
    lines = inspect.cleandoc(docstring or "").splitlines()
    docs: dict[str, str] = {}
    i = 0
    while i < len(lines):
        header = lines[i]
        i += 1
        if not _ARGS_HEADER.fullmatch(header.strip()):
            continue
        names: list[str] = []
        entry_indent: int | None = None
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > _indent(header)):
            line = lines[i]
            i += 1
            if not line.strip():
                continue
            if entry_indent is None:
                entry_indent = _indent(line)
            match = _ARGS_ENTRY.fullmatch(line.strip()) if _indent(line) == entry_indent else None
            if match:
                names = [n.strip().lstrip("*") for n in match["names"].split(",")]
                for name in names:
                    docs[name] = match["text"] or ""
            else:  # a continuation line of the current entry
                for name in names:
                    docs[name] = f"{docs[name]} {line.strip()}".strip()
    return docs


def argument_docstrings(cls: type) -> dict[str, str]:
    """Documentation of the constructor arguments of ``cls`` (an objective or an encoder): the ``Args:``
    entries of its docstring and of its ``__init__``'s, and of those of its bases (the subclass wins)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        docs.update(args_section(klass.__dict__.get("__doc__")))
        docs.update(args_section(getattr(init, "__doc__", None)))
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


def _entries(values: dict[str, Any], docs: dict[str, str], indent: str, width: int) -> list[str]:
    lines: list[str] = []
    for key, value in values.items():
        lines += [*_comment(docs.get(key, ""), indent, width), f"{indent}{key}: {_scalar(value)}"]
    return lines


def _section(obj: Any, indent: str, width: int, arguments: dict[str, dict[str, str]], prefix: str = "") -> list[str]:
    docs = class_docstrings(type(obj))
    lines: list[str] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key_docs = arguments.get(prefix + f.name, {})
        lines += _comment(docs.get(f.name, ""), indent, width)
        if f.metadata.get("written_flat"):  # model.kwargs: the encoder's arguments sit flat in the section
            # a blank line keeps the field's comment apart from the first argument's
            lines += [""] if lines and lines[-1].lstrip().startswith("#") and value else []
            lines += _entries(value, key_docs, indent, width)
        elif dataclasses.is_dataclass(value):
            lines.append(f"{indent}{f.name}:")
            lines += _section(value, indent + "  ", width, arguments, f"{prefix}{f.name}.")
        elif isinstance(value, dict):
            lines.append(f"{indent}{f.name}:" + ("" if value else " {}"))
            lines += _entries(value, key_docs, indent + "  ", width)
        else:
            lines.append(f"{indent}{f.name}: {_scalar(value)}")
    return lines


def describe_config(cfg: Config, *, title: str = "", width: int = 100, catalog: ComponentCatalog | None = None) -> str:
    """``cfg`` as YAML (loadable: ``yaml.safe_load`` gives ``cfg.to_dict()``) with each key's documentation
    as a comment above it. A key without documentation is written bare.

    Args:
        cfg: a validated config.
        title: a first comment line (e.g. the file and overrides it came from).
        width: wrap the comments to this many columns.
        catalog: the components ``cfg`` was validated against (:data:`hamjepa.components.CATALOG`); with it
            the ``objective:`` keys and the encoder's ``model:`` keys are documented too
            (:func:`argument_docstrings` of the configured classes).
    """
    arguments: dict[str, dict[str, str]] = {}
    if catalog is not None:
        arguments["objective"] = argument_docstrings(catalog.objective_class(cfg.objective["name"]))
        arguments["model.kwargs"] = argument_docstrings(catalog.encoder_class(cfg.model.name))
    head = _comment(title, "", width) if title else []
    return "\n".join([*head, *_section(cfg, "", width, arguments)]) + "\n"
