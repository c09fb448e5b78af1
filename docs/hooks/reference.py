"""Generated pages of the documentation site (an mkdocs hook; the functions also run without mkdocs).

Three kinds of page are written at build time from the code itself, so they cannot drift from it:

* ``reference/configs.md``: every field of the config dataclasses reachable from ``hamjepa.config.Config``
  (dotted key, type, default, attribute docstring) and the keyword arguments of every registered objective
  and encoder (with their ``Args:`` entries);
* ``reference/cli.md``: the ``--help`` text of ``hamjepa`` and of every (nested) subcommand, found by walking
  the argparse parser of ``hamjepa.cli.build_parser``;
* ``api/<name>.md``: one mkdocstrings page per subpackage of ``src/hamjepa`` (plus one for the top-level
  modules), found on disk, so a new subpackage gets its page without editing the site.

Pages under ``docs/`` may link to repository files outside it (``docs/RESULTS.md`` links the benchmark
figures as ``../benchmarks/...``, which works when browsing the repository): such files are copied into the
site under ``repo/`` and the links rewritten to them.

mkdocs calls :func:`on_config` (fills the ``API`` entry of the nav), :func:`on_files` (adds the generated
pages and the linked repository files) and :func:`on_page_markdown` (rewrites those links).
``tests/test_docs_site.py`` checks the generators cover every config key and every subcommand.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import os
import posixpath
import re
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE_DIR = SRC / "hamjepa"
DOCS_DIR = ROOT / "docs"
REPO_FILES_DIR = "repo"
"""Site folder that receives repository files linked from the pages (``../benchmarks/x.png`` -> ``repo/...``)."""
_LINK = re.compile(r"(\]\()(\.\./[^)\s#]+)([^)]*\))")
API_NAV_PLACEHOLDER = "api/"
"""The value of the ``API`` nav entry in mkdocs.yml that :func:`on_config` replaces with the API pages."""
HELP_WIDTH = 100
"""Terminal width the ``--help`` texts are formatted for (fixed, so the page does not depend on the shell)."""


def _ensure_importable() -> None:
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))


# --------------------------------------------------------------------------------------------------------
# Config reference


def class_docstrings(cls: type) -> dict[str, str]:
    """Attribute docstrings of ``cls`` and its dataclass bases (:func:`hamjepa.config.describe.class_docstrings`,
    which ``hamjepa config`` prints too)."""
    _ensure_importable()
    from hamjepa.config.describe import class_docstrings as docstrings

    return docstrings(cls)


def argument_docstrings(cls: type) -> dict[str, str]:
    """The ``Args:`` entries of an objective's or encoder's docstrings
    (:func:`hamjepa.config.describe.argument_docstrings`, which ``hamjepa config`` prints too)."""
    _ensure_importable()
    from hamjepa.config.describe import argument_docstrings as docstrings

    return docstrings(cls)


def type_name(tp: Any) -> str:
    """Readable annotation: ``int | None``, ``'a' | 'b'``, ``tuple[float, float]``, ``dict[str, Any]``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None):
        return "None"
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_name(a) for a in args)}]" if args else name
    if tp is Any:
        return "Any"
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _yaml_value(value: Any) -> str:
    if value is dataclasses.MISSING:
        return "(required)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, str):
        return repr(value) if value == "" else value
    return str(value)


@dataclasses.dataclass
class ConfigField:
    """One leaf of the config tree."""

    key: str
    """Dotted key, as written in an override (``train.epochs``)."""
    type: str
    default: str
    doc: str


@dataclasses.dataclass
class ConfigSection:
    """One dataclass of the config tree (the root has ``name == ''``)."""

    name: str
    cls: type
    fields: list[ConfigField]


def config_sections() -> list[ConfigSection]:
    """Every dataclass section reachable from ``hamjepa.config.Config``, root first, in field order."""
    _ensure_importable()
    from hamjepa.config import Config

    sections: list[ConfigSection] = []

    def visit(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        docs = class_docstrings(cls)
        section = ConfigSection(prefix.rstrip("."), cls, [])
        sections.append(section)
        nested = []
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if f.metadata.get("written_flat"):  # model.kwargs: listed per encoder (encoder_tables)
                continue
            if dataclasses.is_dataclass(tp):
                nested.append((tp, f"{prefix}{f.name}."))
                continue
            value = _default(f)
            section.fields.append(
                ConfigField(f"{prefix}{f.name}", type_name(tp), _yaml_value(value), docs.get(f.name, ""))
            )
        for tp, sub in nested:
            visit(tp, sub)

    visit(Config, "")
    return sections


def config_keys() -> list[str]:
    """Every dotted leaf key of the config tree (what the reference page must cover)."""
    return [f.key for s in config_sections() for f in s.fields]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    # Python-Markdown's tables keep a pipe inside a code span in its cell (no escaping needed or wanted).
    return f"`{text}`"


def objective_tables() -> list[tuple[str, type, list[tuple[str, str, str, str]]]]:
    """For each registered objective: (name, class, [(key, type, default, description)]) of its config
    keywords."""
    _ensure_importable()
    from hamjepa.components import CATALOG
    from hamjepa.config import objective_schema
    from hamjepa.objectives import available_objectives, get_objective_class

    out = []
    for name in available_objectives():
        cls, rows = get_objective_class(name), []
        docs = argument_docstrings(cls)
        for key, (param, tp) in objective_schema(name, catalog=CATALOG).items():
            default = dataclasses.MISSING if param.default is inspect.Parameter.empty else param.default
            rows.append((key, type_name(tp), _yaml_value(default), docs.get(key, "")))
        out.append((name, cls, rows))
    return out


def encoder_tables() -> list[tuple[str, type, list[tuple[str, str, str, str]]]]:
    """For each registered encoder: (name, class, [(key, type, default, description)]) of its ``model:``
    keywords."""
    _ensure_importable()
    from hamjepa.components import CATALOG
    from hamjepa.config import encoder_schema
    from hamjepa.models import available_encoders, get_encoder_class

    out = []
    for name in available_encoders():
        cls, rows = get_encoder_class(name), []
        docs = argument_docstrings(cls)
        for key, (param, tp) in encoder_schema(name, catalog=CATALOG).items():
            default = dataclasses.MISSING if param.default is inspect.Parameter.empty else param.default
            rows.append((key, type_name(tp), _yaml_value(default), docs.get(key, "")))
        out.append((name, cls, rows))
    return out


def _keyword_tables(section: str, tables: list[tuple[str, type, list[tuple[str, str, str, str]]]]) -> list[str]:
    """One table per registered class: ``section.key``, type, default and description of its keywords."""
    lines: list[str] = []
    for name, cls, rows in tables:
        summary = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
        lines += [
            f"### `{section}.name: {name}`",
            "",
            f"Class: `{cls.__module__}.{cls.__qualname__}`. {summary}",
            "",
            "| key | type | default | description |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| `{section}.{key}` | {_code(tp)} | {_code(default)} | {_cell(doc) or '—'} |"
            for key, tp, default, doc in rows
        ]
        lines.append("")
    return lines


def config_reference_markdown() -> str:
    """The configs reference page (Markdown)."""
    lines = [
        "# Configs reference",
        "",
        "Generated from the config dataclasses (`hamjepa.config`) and the component registries when the site is",
        "built, so it always matches the code. A run's YAML file has one mapping per section; every key can",
        "also be overridden on the command line with its dotted name, e.g. `train.epochs=80 seed=1`. Unknown",
        "keys, wrong types and impossible combinations are rejected with one `error:` line naming the fix.",
        "",
        "Values are shown as you would write them in YAML (`null` is Python's `None`).",
        "",
    ]
    for section in config_sections():
        lines += [f"## `{section.name}`" if section.name else "## Top level", ""]
        doc = inspect.getdoc(section.cls) or ""
        if doc and section.name:
            lines += [doc.split("\n\n")[0].replace("\n", " "), ""]
        lines += [
            f"Dataclass: `{section.cls.__module__}.{section.cls.__qualname__}`.",
            "",
            "| key | type | default | description |",
            "|---|---|---|---|",
        ]
        for f in section.fields:
            lines.append(f"| `{f.key}` | {_code(f.type)} | {_code(f.default)} | {_cell(f.doc) or '—'} |")
        lines.append("")
    lines += [
        "## `objective`",
        "",
        "The objective section is `name` plus keyword arguments of the registered objective class: its",
        "constructor signature *is* the schema (the `predictor` argument is built from the `predictor`",
        "section). The descriptions are the `Args:` entries of the class's docstring.",
        "",
    ]
    lines += _keyword_tables("objective", objective_tables())
    lines += [
        "## `model` keywords per encoder",
        "",
        "Besides `model.name` and the engine keys above, the model section holds the keyword arguments of the",
        "registered encoder class (its constructor signature is the schema; a config without `model.name` is",
        "`resnet18_tokens`). The descriptions are the `Args:` entries of the class's docstring.",
        "",
    ]
    lines += _keyword_tables("model", encoder_tables())
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------
# CLI reference


@contextlib.contextmanager
def _fixed_width(width: int) -> Iterator[None]:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def walk_parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Yield ``(command path, parser)`` for ``parser`` and every nested subcommand, depth first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) in seen:  # aliases share one parser
                    continue
                seen.add(id(sub))
                yield from walk_parsers(sub, (*path, name))


def cli_commands() -> list[tuple[tuple[str, ...], str]]:
    """``(command path, --help text)`` of ``hamjepa`` and every subcommand."""
    _ensure_importable()
    from hamjepa.cli import build_parser

    with _fixed_width(HELP_WIDTH):
        return [(path, sub.format_help()) for path, sub in walk_parsers(build_parser())]


def cli_reference_markdown() -> str:
    """The CLI reference page (Markdown)."""
    lines = [
        "# CLI reference",
        "",
        "The `--help` text of every `hamjepa` command, generated from the argparse parser when the site is",
        "built. `python -m hamjepa` is the same program; under `torchrun` use `-m hamjepa`.",
        "Every user mistake prints one `error:` line naming the problem and the fix and exits with status 2.",
        "",
    ]
    for path, text in cli_commands():
        title = " ".join(("hamjepa", *path))
        lines += [f"## `{title}`", "", "```text", text.rstrip(), "```", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------
# API pages


def _is_package(path: Path) -> bool:
    """A folder holding Python modules (an ``__init__.py`` is required for mkdocstrings to collect it)."""
    return path.is_dir() and not path.name.startswith(("_", ".")) and any(path.glob("*.py"))


def api_modules() -> list[tuple[str, list[str]]]:
    """``(page name, [module paths])``: one page per subpackage, and ``hamjepa`` for the top-level modules."""
    top = ["hamjepa", *sorted(f"hamjepa.{p.stem}" for p in PACKAGE_DIR.glob("*.py") if not p.stem.startswith("_"))]
    packages = sorted(p.name for p in PACKAGE_DIR.iterdir() if _is_package(p))
    return [("hamjepa", top)] + [(name, [f"hamjepa.{name}"]) for name in packages]


def api_page_markdown(name: str, modules: list[str]) -> str:
    """One API page: an mkdocstrings block per module (subpackages render their submodules too)."""
    title = "`hamjepa` (top-level modules)" if name == "hamjepa" else f"`hamjepa.{name}`"
    where = "src/hamjepa/" + ("" if name == "hamjepa" else f"{name}/")
    lines = [
        f"# {title}",
        "",
        f"Generated from the docstrings of `{where}`; the documentation site (`mkdocs serve`) renders them here.",
        "",
    ]
    for module in modules:
        options = "    options:\n      show_submodules: false\n" if module == "hamjepa" else ""
        lines += [f"::: {module}", options]
    return "\n".join(lines)


def api_nav() -> list[dict[str, str]]:
    """Nav entries of the API pages."""
    return [{("hamjepa" if n == "hamjepa" else f"hamjepa.{n}"): f"api/{n}.md"} for n, _ in api_modules()]


REFRESH_COMMAND = "docs/hooks/reference.py --write"
"""Rewrites the committed copies of the generated pages (``docs/reference/``, ``docs/api/``)."""


def write_generated_pages(docs_dir: Path = DOCS_DIR) -> list[Path]:
    """Write every generated page under ``docs_dir`` (committed, so links work in a repository viewer too);
    removes API pages of subpackages that no longer exist. Returns the files written."""
    pages = generated_pages()
    for old in (docs_dir / "api").glob("*.md"):
        if f"api/{old.name}" not in pages:
            old.unlink()
    written = []
    for rel, content in pages.items():
        target = docs_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        written.append(target)
    return written


def generated_pages() -> dict[str, str]:
    """Every generated page: ``{path under docs/: Markdown}``."""
    pages = {
        "reference/configs.md": config_reference_markdown(),
        "reference/cli.md": cli_reference_markdown(),
    }
    for name, modules in api_modules():
        pages[f"api/{name}.md"] = api_page_markdown(name, modules)
    return pages


# --------------------------------------------------------------------------------------------------------
# Links from docs/ to repository files outside it


def repo_links(page: str, markdown: str) -> dict[str, str]:
    """``{link as written: repository path}`` for each ``../`` link of ``page`` to an existing repo file."""
    out: dict[str, str] = {}
    page_dir = posixpath.dirname(page)
    for _, target, _ in _LINK.findall(markdown):
        path = (DOCS_DIR / page_dir / target).resolve()
        if path.is_file() and ROOT in path.parents and DOCS_DIR not in path.parents:
            out[target] = path.relative_to(ROOT).as_posix()
    return out


def rewrite_repo_links(page: str, markdown: str) -> str:
    """Point ``page``'s ``../`` links to repository files at their copies under ``repo/`` in the site."""
    links = repo_links(page, markdown)
    up = "../" * page.count("/")

    def swap(m: re.Match) -> str:
        repo_path = links.get(m.group(2))
        return m.group(0) if repo_path is None else f"{m.group(1)}{up}{REPO_FILES_DIR}/{repo_path}{m.group(3)}"

    return _LINK.sub(swap, markdown)


# --------------------------------------------------------------------------------------------------------
# mkdocs hooks


def _replace_placeholder(nav: Any) -> Any:
    if isinstance(nav, list):
        return [_replace_placeholder(item) for item in nav]
    if isinstance(nav, dict):
        return {k: (api_nav() if v == API_NAV_PLACEHOLDER else _replace_placeholder(v)) for k, v in nav.items()}
    return nav


def _nav_paths(nav: Any) -> set[str]:
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, list):
        return {p for item in nav for p in _nav_paths(item)}
    if isinstance(nav, dict):
        return {p for value in nav.values() for p in _nav_paths(value)}
    return set()


def _page_title(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip().strip("`")
    return path.stem


def complete_nav(nav: list[Any]) -> list[Any]:
    """``nav`` with the API pages filled in and any page of ``docs/`` it does not list appended under ``More``
    (so a page added without editing mkdocs.yml is still reachable)."""
    nav = _replace_placeholder(nav)
    listed = _nav_paths(nav)
    extra = [
        {_page_title(path): rel}
        for path in sorted(DOCS_DIR.rglob("*.md"))
        if "hooks" not in path.relative_to(DOCS_DIR).parts
        and (rel := path.relative_to(DOCS_DIR).as_posix()) not in listed
    ]
    return [*nav, {"More": extra}] if extra else nav


def on_config(config: Any) -> Any:
    """Fill the ``API: api/`` nav entry and list the pages missing from the nav (:func:`complete_nav`)."""
    if config.nav:
        config.nav = complete_nav(config.nav)
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages to the build."""
    from mkdocs.structure.files import File

    committed = {f.src_uri: f for f in files}
    stale = []
    for path, content in generated_pages().items():
        if path in committed:  # the committed copy (readable in a repository viewer) must be current
            if Path(committed[path].abs_src_path).read_text() != content:
                stale.append(path)
        else:
            files.append(File.generated(config, path, content=content))
    if stale:
        from mkdocs.exceptions import PluginError

        raise PluginError(f"generated pages out of date: {', '.join(stale)}; run `python {REFRESH_COMMAND}`")
    linked: set[str] = set()
    for page in list(files.documentation_pages()):
        if page.abs_src_path and Path(page.abs_src_path).is_file():
            linked.update(repo_links(page.src_uri, Path(page.abs_src_path).read_text()).values())
    for repo_path in sorted(linked):
        files.append(File.generated(config, f"{REPO_FILES_DIR}/{repo_path}", abs_src_path=str(ROOT / repo_path)))
    return files


_SPHINX_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj|const):(?=<code>)")


def strip_sphinx_roles(html: str) -> str:
    """Drop the ``:func:`` / ``:class:`` ... prefixes that Sphinx-style docstrings leave before a code span."""
    return _SPHINX_ROLE.sub("", html)


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Tidy the rendered docstrings (see :func:`strip_sphinx_roles`)."""
    return strip_sphinx_roles(html)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Rewrite links to repository files outside ``docs/`` (see the module docstring)."""
    return rewrite_repo_links(page.file.src_uri, markdown)


if __name__ == "__main__":
    import argparse as _argparse

    _parser = _argparse.ArgumentParser(description="Write the generated documentation pages into docs/.")
    _parser.add_argument("--write", action="store_true", required=True, help="rewrite docs/reference and docs/api")
    _parser.parse_args()
    _ensure_importable()
    for _file in write_generated_pages():
        print(f"wrote {_file.relative_to(ROOT)}")
