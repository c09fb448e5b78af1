"""The package is layered: the training engine never imports the evaluator (it gets callbacks instead)."""

from __future__ import annotations

import ast
from pathlib import Path

import hamjepa

ENGINE = Path(hamjepa.__file__).parent / "engine"


def _imported_modules(path: Path) -> list[str]:
    """Absolute names of every module imported anywhere in ``path`` (top level and inside functions)."""
    package = "hamjepa.engine"
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against hamjepa.engine
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.append(module)
            names += [f"{module}.{alias.name}" for alias in node.names]
    return names


def test_the_import_scanner_sees_relative_function_level_and_from_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def f():\n    from ..evaluation import knn\n    import hamjepa.evaluation.cli\n"
        "from hamjepa import evaluation\n"
    )
    names = _imported_modules(probe)
    assert "hamjepa.evaluation.knn" in names
    assert "hamjepa.evaluation.cli" in names
    assert "hamjepa.evaluation" in names


def test_engine_never_imports_evaluation() -> None:
    files = sorted(ENGINE.glob("*.py"))
    assert len(files) > 5
    offenders = {
        f"{path.name}: {name}"
        for path in files
        for name in _imported_modules(path)
        if name == "hamjepa.evaluation" or name.startswith("hamjepa.evaluation.")
    }
    assert not offenders, f"hamjepa.engine imports hamjepa.evaluation: {sorted(offenders)}"
