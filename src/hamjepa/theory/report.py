"""Markdown / JSON rendering of the theory checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["format_markdown", "write_report"]


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.6g}"


def format_markdown(rows: list[dict[str, Any]]) -> str:
    """A Markdown table: reference, claim, closed form, numerical value, tolerance, pass/FAIL."""
    lines = [
        "| ref | claim | closed form | numerical | criterion | result |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        claim = str(row["claim"]).replace("|", "\\|")
        lines.append(
            f"| {row['ref']} | {claim} | {_fmt(row['closed_form'])} | {_fmt(row['numerical'])} | "
            f"{row['tolerance']} | {'pass' if row['passed'] else '**FAIL**'} |"
        )
    passed = sum(bool(r["passed"]) for r in rows)
    lines.append("")
    lines.append(f"{passed}/{len(rows)} checks passed.")
    return "\n".join(lines)


def write_report(rows: list[dict[str, Any]], out_dir: str | Path, settings: dict[str, Any]) -> dict[str, str]:
    """Write ``theory.json`` (settings + rows) and ``theory.md`` to ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "theory.json", out / "theory.md"
    json_path.write_text(json.dumps({"settings": settings, "checks": rows}, indent=2, allow_nan=False))
    md_path.write_text("# Theory checks (docs/spec.md §J)\n\n" + format_markdown(rows) + "\n")
    return {"json": str(json_path), "markdown": str(md_path)}
