"""The documentation site's generated pages cover the code, its nav is complete, and its examples run.

The site itself is built by ``scripts/test.sh`` (``mkdocs build --strict``); these tests need no mkdocs.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import re
import sys
import typing
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load_reference() -> ModuleType:
    name = "hamjepa_docs_reference"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, DOCS / "hooks" / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    return _load_reference()


def _leaf_keys(cls: type, prefix: str = "") -> list[str]:
    hints = typing.get_type_hints(cls)
    keys: list[str] = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("written_flat"):  # the encoder's keywords, checked per encoder below
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            keys += _leaf_keys(hints[f.name], f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def test_configs_page_lists_every_config_key_with_its_default(reference: ModuleType) -> None:
    from hamjepa.config import Config

    page = reference.config_reference_markdown()
    keys = _leaf_keys(Config)
    assert len(keys) > 40 and "train.epochs" in keys
    assert sorted(reference.config_keys()) == sorted(keys)
    defaults = Config().to_dict()
    for key in keys:
        row = next((line for line in page.splitlines() if line.startswith(f"| `{key}` |")), None)
        assert row is not None, f"{key} missing from the configs reference"
        value: typing.Any = defaults
        for part in key.split("."):
            value = value[part]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert f"`{value}`" in row, (key, value, row)


def test_every_config_field_has_a_description(reference: ModuleType) -> None:
    undocumented = [f.key for s in reference.config_sections() for f in s.fields if not f.doc.strip()]
    assert not undocumented, f"add an attribute docstring to these config fields: {undocumented}"


def test_configs_page_lists_every_objective_and_its_keywords(reference: ModuleType) -> None:
    from hamjepa.components import CATALOG
    from hamjepa.config import objective_schema
    from hamjepa.objectives import available_objectives

    page = reference.config_reference_markdown()
    names = available_objectives()
    assert {"hamjepa", "lejepa", "mlp_hjepa"} <= set(names)
    for name in names:
        assert f"### `objective.name: {name}`" in page
        section = page.split(f"### `objective.name: {name}`", 1)[1].split("\n### ", 1)[0]
        for key in objective_schema(name, catalog=CATALOG):
            assert f"| `objective.{key}` |" in section, (name, key)


def test_configs_page_lists_every_encoder_and_its_keywords(reference: ModuleType) -> None:
    from hamjepa.components import CATALOG
    from hamjepa.config import encoder_schema
    from hamjepa.models import available_encoders

    page = reference.config_reference_markdown()
    assert {"resnet18_tokens", "vit"} <= set(available_encoders())
    for name in available_encoders():
        section = page.split(f"### `model.name: {name}`", 1)[1].split("\n### ", 1)[0]
        for key in encoder_schema(name, catalog=CATALOG):
            assert f"| `model.{key}` |" in section, (name, key)


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _commands(sub, (*path, name))
    return out


def test_cli_page_holds_the_help_of_every_subcommand(reference: ModuleType) -> None:
    from hamjepa.cli import build_parser

    page = reference.cli_reference_markdown()
    commands = _commands(build_parser())
    assert {("train",), ("eval",), ("data", "cifar100"), ("reproduce", "dynamics")} <= set(commands)
    for path in commands:
        title = " ".join(("hamjepa", *path))
        assert f"## `{title}`" in page, title
        section = page.split(f"## `{title}`", 1)[1].split("\n## ", 1)[0]
        assert f"usage: {title}" in " ".join(section.split()), title
        assert "-h, --help" in section, title


def test_every_cli_argument_has_help_text() -> None:
    """The CLI page is generated from --help: an argument without help text is a hole in the reference."""
    from hamjepa.cli import build_parser

    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*path, name))
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                missing.append(" ".join(("hamjepa", *path, "/".join(action.option_strings) or action.dest)))

    walk(build_parser(), ())
    assert not missing, missing


def test_api_pages_cover_every_subpackage(reference: ModuleType) -> None:
    packages = {p.parent.name for p in (ROOT / "src" / "hamjepa").glob("*/*.py") if p.parent.name != "__pycache__"}
    assert {"models", "dynamics", "objectives", "data", "engine", "evaluation"} <= packages
    pages = reference.generated_pages()
    for name in packages:
        # mkdocstrings (griffe) cannot collect a namespace package inside a regular one.
        assert (ROOT / "src" / "hamjepa" / name / "__init__.py").is_file(), f"add src/hamjepa/{name}/__init__.py"
        assert f"::: hamjepa.{name}" in pages[f"api/{name}.md"], name
    assert "::: hamjepa.errors" in pages["api/hamjepa.md"]


def _nav_paths(node: typing.Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [p for item in node for p in _nav_paths(item)]
    if isinstance(node, dict):
        return [p for value in node.values() for p in _nav_paths(value)]
    return []


def _mkdocs_config() -> dict:
    # mkdocs.yml may use !!python tags in other projects; this one is plain YAML.
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


def test_nav_lists_every_page_and_every_listed_page_exists(reference: ModuleType) -> None:
    config = _mkdocs_config()
    assert config["strict"] is True
    nav = reference.complete_nav(config["nav"])
    listed = set(_nav_paths(nav))
    generated = set(reference.generated_pages())
    written = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if "hooks" not in p.parts}
    assert written <= listed and {"reference/configs.md", "api/engine.md"} <= listed
    assert listed <= written | generated, f"nav entries without a page: {sorted(listed - written - generated)}"


def test_every_written_page_has_a_place_in_the_written_nav_and_a_plain_title() -> None:
    """ "More" is a safety net, not a home: mkdocs.yml itself places every page, and no title shows markup."""
    listed = set(_nav_paths(_mkdocs_config()["nav"]))
    written = {p.relative_to(DOCS).as_posix() for p in DOCS.glob("*.md")}
    assert written <= listed, f"pages missing from mkdocs.yml's nav: {sorted(written - listed)}"
    index = (DOCS / "index.md").read_text()
    for page in sorted(written - {"index.md"}):
        title = next(line for line in (DOCS / page).read_text().splitlines() if line.startswith("# "))
        assert "`" not in title, f"{page}: the title {title!r} shows literal backticks in the nav"
        assert f"]({page})" in index, f"docs/index.md does not list {page}"


def test_a_page_missing_from_the_nav_is_appended_under_more(reference: ModuleType) -> None:
    nav = reference.complete_nav([{"Home": "index.md"}, {"API": "api/"}])
    assert nav[0] == {"Home": "index.md"} and {"hamjepa.engine": "api/engine.md"} in nav[1]["API"]
    more = nav[-1]["More"]
    assert {"The method in one page": "method.md"} in more and {"Measured results": "RESULTS.md"} in more


def test_links_from_docs_to_repository_files_are_rewritten(reference: ModuleType) -> None:
    repo_file = min((ROOT / "benchmarks" / "results").rglob("*.json")).relative_to(ROOT).as_posix()
    text = f"see [data](../{repo_file}), [missing](../benchmarks/nope.png) and [page](method.md)"
    assert reference.repo_links("RESULTS.md", text) == {f"../{repo_file}": repo_file}
    out = reference.rewrite_repo_links("RESULTS.md", text)
    assert f"[data](repo/{repo_file})" in out
    assert "[missing](../benchmarks/nope.png)" in out and "[page](method.md)" in out  # left for mkdocs to report
    nested = reference.rewrite_repo_links("guides/a.md", text.replace("(../", "(../../"))
    assert f"[data](../repo/{repo_file})" in nested


def test_sphinx_roles_are_stripped_from_rendered_docstrings(reference: ModuleType) -> None:
    html = "see :func:<code>f</code> and :class:<code>C</code>; keep a:b:<code>x</code> and :func: alone"
    assert (
        reference.strip_sphinx_roles(html)
        == "see <code>f</code> and <code>C</code>; keep a:b:<code>x</code> and :func: alone"
    )


@pytest.fixture
def clean_registry() -> typing.Iterator[None]:
    from hamjepa.models.registry import ENCODERS
    from hamjepa.objectives.registry import OBJECTIVES

    with OBJECTIVES.restoring(), ENCODERS.restoring():
        yield


@pytest.mark.parametrize("page", ["getting-started.md", "extending.md"])
def test_python_examples_in_the_docs_run(page: str, clean_registry: None) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)
    assert blocks, page
    if page == "extending.md":  # a reader who shipped the page's examples under their own names keeps them
        from hamjepa.models.registry import ENCODERS
        from hamjepa.objectives.registry import OBJECTIVES

        for names, name in ((OBJECTIVES, "view_mse"), (ENCODERS, "patch_tokens")):
            if name in names:
                names.unregister(name)
    defined: dict[str, typing.Any] = {}  # what the blocks define (each block runs on its own)
    for block in blocks:
        namespace: dict[str, typing.Any] = {"__name__": f"docs_{page}"}
        exec(compile(block, page, "exec"), namespace)
        defined.update(namespace)
    namespace = defined
    if page == "extending.md":
        from hamjepa.objectives import get_objective_class

        assert get_objective_class("view_mse").__name__ == "ViewMSEObjective"
        assert namespace["out"].loss.ndim == 0 and set(namespace["out"].terms) == {"pred", "budget", "total"}
        from hamjepa.models import get_encoder_class

        assert get_encoder_class("patch_tokens").__name__ == "PatchTokenEncoder"
        assert namespace["z"].shape == (4, 2048)


def test_method_page_describes_the_default_force_computation() -> None:
    from hamjepa.config.schema import PredictorConfig

    text = (DOCS / "method.md").read_text()
    default = PredictorConfig().force
    assert f"(`predictor.force: {default}`, the default" in text, "docs/method.md must describe the default force"


def test_links_between_pages_resolve_in_a_repository_viewer() -> None:
    """Every relative link to a page resolves to a committed file, so docs/ reads in a repository viewer too."""
    link = re.compile(r"\]\(([^)#\s:]+\.md)(?:#[^)]*)?\)")
    for page in sorted(DOCS.rglob("*.md")):
        if "hooks" in page.parts:
            continue
        for target in link.findall(page.read_text()):
            assert (page.parent / target).resolve().is_file(), f"{page.relative_to(ROOT)} links to missing {target}"


def test_committed_generated_pages_are_current(reference: ModuleType) -> None:
    for rel, content in reference.generated_pages().items():
        committed = DOCS / rel
        assert committed.is_file(), f"docs/{rel} is not committed; run python {reference.REFRESH_COMMAND}"
        assert committed.read_text() == content, f"docs/{rel} is out of date; run python {reference.REFRESH_COMMAND}"
    pages = {f"api/{p.name}" for p in (DOCS / "api").glob("*.md")}
    assert pages <= set(reference.generated_pages()), "an API page of a subpackage that no longer exists"
