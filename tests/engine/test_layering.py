"""The package is layered, and every ``hamjepa`` import in ``src/hamjepa`` respects the layers.

The order (lowest first) is written down in docs/CONTRACTS.md ("Layers"); this file is its executable form.
Every import is checked: module level, inside functions and under ``TYPE_CHECKING``, absolute and relative,
found by walking the syntax tree of every module. The rules:

1. An import points down or stays inside its own unit (``hamjepa.<unit>``), never up.
2. The units import each other without a cycle (so two units of one layer never import each other both ways).
3. The module-level imports between modules have no cycle (no cycle is hidden by a function-level import).
4. Function-level ``hamjepa`` imports appear only in CLI modules (``hamjepa.cli`` and ``hamjepa.<unit>.cli``):
   they keep ``hamjepa --help`` from importing torch by importing a command's machinery inside its handler.
5. Importing the package root (``from hamjepa import __version__``) is allowed anywhere: its body imports no
   ``hamjepa`` module at module level.

Any exception is an entry of :data:`ALLOWED` with its reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hamjepa

PACKAGE_DIR = Path(hamjepa.__file__).parent
CONTRACTS = Path(__file__).resolve().parents[2] / "docs" / "CONTRACTS.md"

LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "errors",
        "numerics",
        "seeding",
        "distributed",
        "provenance",
        "plugins",
        "atomic_files",
        "lazy_exports",
        "registry",
    ),
    ("config",),
    ("models", "dynamics"),
    ("objectives",),
    ("components",),
    ("data",),
    ("engine",),
    ("evaluation",),
    ("inference",),
    ("cli", "__main__", "reproduce", "diagnostics", "theory"),
    ("sequences",),
)
"""Units (``hamjepa.<unit>``: a subpackage or a top-level module), lowest layer first."""

ROOT = "hamjepa"
"""The package root: ``__version__`` and the lazy :func:`hamjepa.load`."""

ALLOWED: dict[tuple[str, str], str] = {
    ("hamjepa", "hamjepa.inference.model"): "`hamjepa.load` imports its loader on first call, so that "
    "`import hamjepa` stays free of torch.",
    ("hamjepa.objectives.registry", "hamjepa.objectives"): "the registry imports its own package to register the "
    "built-in objectives on first use (the package imports the registry at module level).",
    ("hamjepa.models.registry", "hamjepa.models"): "the registry imports its own package to register the "
    "built-in encoders on first use (the package imports the registry at module level).",
    ("hamjepa.inference.model", "hamjepa.inference.export"): "`load` dispatches export folders to "
    "`load_export`, which builds a `HamjepaModel` (model <-> export); goes when export's reader is split "
    "from its writer.",
    ("hamjepa.reproduce.cli", "hamjepa.sequences.cli"): "`hamjepa reproduce dynamics` is the entry of the "
    "dynamics experiment (on top of the library) under the one `reproduce` command.",
}
"""``(importer, imported module) -> reason`` for imports that break a rule above."""


@dataclass(frozen=True)
class Import:
    """One imported ``hamjepa`` module (``from m import n`` counts ``m.n`` when that is a module)."""

    importer: str
    target: str
    line: int
    function_level: bool
    type_checking: bool


def module_name(path: Path, package_dir: Path = PACKAGE_DIR) -> str:
    """``hamjepa.engine.trainer`` for ``.../hamjepa/engine/trainer.py`` (a package is its ``__init__``)."""
    parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str, package_dir: Path) -> bool:
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    return (package_dir / rel).with_suffix(".py").is_file() or (package_dir / rel / "__init__.py").is_file()


def _nodes_under(tree: ast.AST, kinds: tuple[type, ...]) -> set[int]:
    return {id(inner) for node in ast.walk(tree) if isinstance(node, kinds) for inner in ast.walk(node)}


def imports_of(path: Path, package_dir: Path = PACKAGE_DIR) -> Iterator[Import]:
    """Every ``hamjepa`` import in ``path``, wherever it sits in the file."""
    name = module_name(path, package_dir)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    in_function = _nodes_under(tree, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
    type_checking = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{node.module}" if node.module else anchor
            targets = [
                f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}", package_dir) else base
                for alias in node.names
            ]
        else:
            continue
        for target in dict.fromkeys(targets):
            if target == ROOT or target.startswith(ROOT + "."):
                yield Import(name, target, node.lineno, id(node) in in_function, id(node) in type_checking)


def all_imports() -> list[Import]:
    return [imp for path in sorted(PACKAGE_DIR.rglob("*.py")) for imp in imports_of(path)]


def unit(module: str) -> str:
    """``engine`` for ``hamjepa.engine.trainer``; ``hamjepa`` for the package root."""
    return module.split(".")[1] if "." in module else ROOT


def layer(module: str) -> int:
    """Index of the layer of ``module`` in :data:`LAYERS`."""
    name = "cli" if module == ROOT else unit(module)  # the root's lazy `load` is a command-level facade
    for index, units in enumerate(LAYERS):
        if name in units:
            return index
    raise AssertionError(f"{module}: unit {name!r} is in no layer; add it to LAYERS and docs/CONTRACTS.md")


def is_cli_module(module: str) -> bool:
    return module == "hamjepa.cli" or module.endswith(".cli")


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_scanner_sees_relative_function_level_type_checking_and_from_imports(tmp_path: Path) -> None:
    package = tmp_path / "hamjepa"
    (package / "engine").mkdir(parents=True)
    (package / "evaluation").mkdir()
    for name in ("__init__.py", "engine/__init__.py", "evaluation/__init__.py", "evaluation/knn.py", "errors.py"):
        (package / name).write_text("")
    probe = package / "engine" / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\nimport torch\nfrom hamjepa import errors, __version__\n"
        "if TYPE_CHECKING:\n    from hamjepa.evaluation import knn\n"
        "def f():\n    from ..evaluation import knn\n    import hamjepa.evaluation\n"
    )
    found = {(i.target, i.function_level, i.type_checking) for i in imports_of(probe, package)}
    assert found == {
        ("hamjepa.errors", False, False),
        ("hamjepa", False, False),
        ("hamjepa.evaluation.knn", False, True),
        ("hamjepa.evaluation.knn", True, False),
        ("hamjepa.evaluation", True, False),
    }
    assert {i.importer for i in imports_of(probe, package)} == {"hamjepa.engine.probe"}


def test_every_unit_has_a_layer_and_the_layers_are_written_down() -> None:
    units = {unit(module_name(path)) for path in PACKAGE_DIR.rglob("*.py")} - {ROOT}
    for name in sorted(units):
        layer(f"hamjepa.{name}")
    listed = [name for units_ in LAYERS for name in units_]
    assert len(listed) == len(set(listed)), "a unit is listed in two layers"
    written = " < ".join(", ".join(units_) for units_ in LAYERS)
    text = " ".join(CONTRACTS.read_text().replace("`", "").split())
    assert written in text, f"docs/CONTRACTS.md must state the order: {written}"


def test_every_import_points_down() -> None:
    imports = all_imports()
    assert len(imports) > 300  # the scanner sees the whole package
    upward = sorted(
        f"{i.importer}:{i.line} imports {i.target} (layer {layer(i.importer)} -> {layer(i.target)})"
        for i in imports
        if i.target != ROOT and layer(i.target) > layer(i.importer) and (i.importer, i.target) not in ALLOWED
    )
    assert not upward, "imports that point up the layer order (docs/CONTRACTS.md, Layers):\n" + "\n".join(upward)


def test_the_package_root_imports_nothing_and_is_imported_only_for_its_version() -> None:
    imports = all_imports()
    from_root = [i for i in imports if i.importer == ROOT and not i.function_level and not i.type_checking]
    assert not from_root, f"hamjepa/__init__.py must import no hamjepa module at module level: {from_root}"
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == ROOT and not node.level:
                names = {alias.name for alias in node.names}
                modules = {n for n in names if _is_module(f"{ROOT}.{n}", PACKAGE_DIR)}
                assert names - modules <= {"__version__"}, f"{path}: imports {names - modules} from the root"


def test_units_import_each_other_without_a_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for i in all_imports():
        if unit(i.importer) != unit(i.target) and (i.importer, i.target) not in ALLOWED and i.target != ROOT:
            graph.setdefault(unit(i.importer), set()).add(unit(i.target))
    cycle = _find_cycle(graph)
    assert cycle is None, f"units that import each other in a cycle: {' -> '.join(cycle or [])}"
    assert "inference" not in graph.get("evaluation", set())


def test_module_level_imports_have_no_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for i in all_imports():
        if not i.function_level and not i.type_checking and i.target != i.importer:
            graph.setdefault(i.importer, set()).add(i.target)
    cycle = _find_cycle(graph)
    assert cycle is None, f"modules that import each other in a cycle at module level: {' -> '.join(cycle or [])}"


def test_function_level_imports_only_in_cli_modules() -> None:
    hidden = sorted(
        f"{i.importer}:{i.line} imports {i.target} inside a function"
        for i in all_imports()
        if i.function_level and not is_cli_module(i.importer) and (i.importer, i.target) not in ALLOWED
    )
    assert not hidden, (
        "move these imports to the top of the module (function-level imports are for CLI start-up time only; "
        "a cycle they hide means a helper sits in the wrong layer):\n" + "\n".join(hidden)
    )


def test_every_allowed_exception_is_still_needed_and_has_a_reason() -> None:
    seen = {(i.importer, i.target) for i in all_imports()}
    for edge, reason in ALLOWED.items():
        assert edge in seen, f"{edge} is allowed but no longer imported: drop it from ALLOWED"
        assert len(reason.split()) >= 5, f"{edge}: give the reason"
