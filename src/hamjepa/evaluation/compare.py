"""Side-by-side comparison of several evaluated runs (``hamjepa compare RUN_DIR...``).

Reads each run's ``eval/metrics.json`` (a run folder, its ``eval`` or ``eval_<data set>`` folder -- the
latter written by ``hamjepa eval --data`` -- or the file itself), takes the method name from the recorded
config (``config["objective"]["name"]``; the folder name when absent), the data set from ``metrics["dataset"]``,
and writes ``compare.md`` (one Markdown table, also returned/printed) and ``compare.png`` (overlaid kNN sweeps
and spectra) into the output folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hamjepa.errors import HamjepaError

from .plots import compare_figure
from .report import load_metrics

DEFAULT_OUT = Path("runs") / "compare"
"""Output folder of ``hamjepa compare`` when ``--out`` is not given."""

COLUMNS = (
    "method",
    "run",
    "data set",
    "readout",
    "NN@20",
    "best NN (k)",
    "linear",
    "eff. rank",
    "PR",
    "cos mean",
    "norm mean",
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
    """Write ``out_dir/compare.md`` (+ ``compare.png``) for the given runs and return the Markdown table.

    Raises:
        HamjepaError: a path that does not exist or holds no metrics.json (one line naming the fix).
    """
    if not run_dirs:
        raise HamjepaError("compare needs at least one RUN_DIR")
    rows: list[tuple[str, ...]] = []
    curves: list[dict[str, Any]] = []
    for given in run_dirs:
        metrics = _load(Path(given))
        run_dir = _run_dir(Path(given))
        method = method_name(metrics, run_dir)
        for readout, b in metrics["readouts"].items():
            knn, geo = b["knn"], b["geometry"]
            rows.append(
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
                    "label": f"{method} [{run_dir.name}{_on(metrics)}] {readout}",
                    "k_values": knn["k_values"],
                    "top1": knn["top1"],
                    "eigenvalues": geo["spectrum"]["eigenvalues"],
                }
            )
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    table = "\n".join(lines) + "\n"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(table)
    if figure:
        compare_figure(curves, out / "compare.png")
    return table
