"""Side-by-side comparison of several evaluated runs (``hamjepa compare RUN_DIR...``).

Reads each run's ``eval/metrics.json`` (a run folder, its ``eval`` or ``eval_<data set>`` folder -- the
latter written by ``hamjepa eval --data`` -- or the file itself), takes the method name from the recorded
config (``config["objective"]["name"]``; the folder name when absent), the data set from ``metrics["dataset"]``,
and writes ``compare.md`` (the tables, also returned/printed) and ``compare.png`` (overlaid kNN sweeps and
spectra) into the output folder.

Numbers of different protocols never share a column: the rows are grouped into one table per protocol
setting (:func:`~hamjepa.evaluation.report.protocol_setting`: the protocol, its kNN vote and its probe
recipe), each under a heading that names it, and each accuracy column's name carries the protocol. Schema-1
metrics.json files (before the standard protocol) read as token-protocol results.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hamjepa.errors import HamjepaError

from .plots import compare_figure
from .report import PROTOCOL_TITLES, load_metrics, protocol_blocks, protocol_setting

DEFAULT_OUT = Path("runs") / "compare"
"""Output folder of ``hamjepa compare`` when ``--out`` is not given."""

ACCURACY_COLUMNS = ("kNN@20", "best kNN (k)", "linear")
"""Accuracy columns of a compare table, each prefixed with the table's protocol (e.g. ``token kNN@20``)."""
GEOMETRY_COLUMNS = ("eff. rank", "PR", "cos mean", "norm mean")


def columns(protocol: str) -> tuple[str, ...]:
    """The header of one protocol's compare table."""
    return (
        "method",
        "run",
        "data set",
        "readout",
        *(f"{protocol} {c}" for c in ACCURACY_COLUMNS),
        *GEOMETRY_COLUMNS,
    )


def method_name(metrics: dict[str, Any], run_dir: Path) -> str:
    """``config["objective"]["name"]`` when recorded, else the run folder's name."""
    cfg = metrics.get("config")
    if isinstance(cfg, dict):
        obj = cfg.get("objective")
        if isinstance(obj, dict) and obj.get("name"):
            return str(obj["name"])
    return run_dir.name


def _run_dir(path: Path) -> Path:
    p = path.resolve()
    if p.is_file():
        p = p.parent
    return p.parent if p.name == "eval" or p.name.startswith("eval_") else p


def _load(given: Path) -> dict[str, Any]:
    if not given.exists():
        raise HamjepaError(f"compare: {given} does not exist; pass run folders written by `hamjepa train`")
    try:
        return load_metrics(given)
    except FileNotFoundError:
        raise HamjepaError(
            f"compare: {given} has no eval/metrics.json (not evaluated yet?); run `hamjepa eval {given}` first, "
            "or pass the eval_<data set> folder of `hamjepa eval --data`"
        ) from None


def _on(metrics: dict[str, Any]) -> str:
    return f" on {metrics['dataset']}" if metrics.get("dataset") else ""


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def compare_runs(run_dirs: Sequence[str | Path], out_dir: str | Path, *, figure: bool = True) -> str:
    """Write ``out_dir/compare.md`` (+ ``compare.png``) for the given runs and return the Markdown text.

    The text holds one table per protocol setting (see the module docstring), token protocol first.

    Raises:
        HamjepaError: a path that does not exist or holds no metrics.json (one line naming the fix).
    """
    if not run_dirs:
        raise HamjepaError("compare needs at least one RUN_DIR")
    tables: dict[tuple[str, str], list[tuple[str, ...]]] = {}
    curves: list[dict[str, Any]] = []
    for given in run_dirs:
        metrics = _load(Path(given))
        run_dir = _run_dir(Path(given))
        method = method_name(metrics, run_dir)
        for protocol, readout, b in protocol_blocks(metrics):
            knn, geo = b["knn"], b["geometry"]
            tables.setdefault((protocol, protocol_setting(protocol, b)), []).append(
                (
                    method,
                    run_dir.name,
                    str(metrics.get("dataset") or "-"),
                    readout,
                    _pct(knn["nn20"]),
                    f"{_pct(knn['best_top1'])} ({knn['best_k']})",
                    _pct(b["linear_probe"]["top1"]),
                    f"{geo['spectrum']['effective_rank']:.2f}",
                    f"{geo['spectrum']['participation_ratio']:.2f}",
                    f"{geo['cosine']['mean']:.4f}",
                    f"{geo['norms']['mean']:.4g}",
                )
            )
            curves.append(
                {
                    "label": f"{method} [{run_dir.name}{_on(metrics)}] {protocol}: {readout}",
                    "protocol": protocol,
                    "k_values": knn["k_values"],
                    "top1": knn["top1"],
                    "eigenvalues": geo["spectrum"]["eigenvalues"],
                }
            )
    order = sorted(tables, key=lambda key: (key[0] != "token", key[0]))  # token first; stable otherwise
    parts = []
    for protocol, setting in order:
        header = columns(protocol)
        lines = [f"## {PROTOCOL_TITLES.get(protocol, protocol)}", "", setting, ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in tables[(protocol, setting)]]
        parts.append("\n".join(lines) + "\n")
    text = "\n".join(parts)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(text)
    if figure:
        compare_figure(curves, out / "compare.png")
    return text
