"""``eval/metrics.json`` and ``eval/report.md`` writers.

metrics.json schema (version 1; accuracies are fractions in [0, 1]; times in seconds)::

    {
      "schema_version": 1,
      "checkpoint": str | null,          # checkpoint file the encoder came from
      "config": dict | null,             # the run's resolved config (as saved in the checkpoint)
      "dataset": str | null,
      "num_classes": int,
      "split_qp": bool,                  # true: readouts q, p, qp; false: readout z
      "n_train": int, "n_test": int,
      "options": {...},                  # the EvalOptions used (k sweep, probe settings, seeds, dtype)
      "knn_k_dropped": [int],            # default-sweep k left out for exceeding n_train (usually [])
      "readouts": {
        "<name>": {                      # "q" | "p" | "qp" (split_qp) or "z"; + objective extras ("ham")
          "feature_dim": int,
          "knn": {"k_values": [int], "top1": [float], "top5": [float], "nn20": float | null,
                  "best_k": int, "best_top1": float, "weighted": bool, "temperature": float | null},
          "linear_probe": {"epochs": int, "batch_size": int, "lr": float, "weight_decay": float,
                           "seed": int, "top1": float, "top5": float, "final_train_loss": float},
          "geometry": {
            "spectrum": {"n_used": int, "q_used": int, "eigenvalues": [float],   # top-q, descending
                         "effective_rank": float, "participation_ratio": float},
            "cosine": {"mean", "std", "p10", "p50", "p90", "min", "max": float},  # random test pairs
            "norms":  {"mean", "std", "p10", "p50", "p90", "min", "max": float}   # test-feature L2 norms
          }
        }
      },
      "timing": {"features": float, "knn": float, "linear_probe": float, "geometry": float,
                 "outputs": float, "total": float}
    }
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


def write_metrics(metrics: dict[str, Any], path: Path) -> Path:
    """Write ``metrics`` as indented JSON (non-JSON config values are written with ``str``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2, default=str) + "\n")
    return path


def load_metrics(path: Path) -> dict[str, Any]:
    """Read a metrics.json (given as the file, its ``eval`` folder or the run folder)."""
    p = Path(path)
    for cand in (p, p / "metrics.json", p / "eval" / "metrics.json"):
        if cand.is_file():
            return json.loads(cand.read_text())
    raise FileNotFoundError(f"no metrics.json at {p} (looked in {p}, {p}/metrics.json, {p}/eval/metrics.json)")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def readout_table(name: str, block: dict[str, Any]) -> str:
    """Markdown table of one readout's block of metrics.json."""
    knn, probe, geo = block["knn"], block["linear_probe"], block["geometry"]
    spec, cos, norms = geo["spectrum"], geo["cosine"], geo["norms"]
    rows = [
        ("feature dim", str(block["feature_dim"])),
        ("kNN NN@20 top-1 (%)", _pct(knn["nn20"])),
        (f"kNN best top-1 (%) @k={knn['best_k']}", _pct(knn["best_top1"])),
        (
            "kNN sweep top-1 (%)",
            ", ".join(f"k={k}: {_pct(a)}" for k, a in zip(knn["k_values"], knn["top1"], strict=True)),
        ),
        ("linear probe top-1 / top-5 (%)", f"{_pct(probe['top1'])} / {_pct(probe['top5'])}"),
        (f"effective rank (top-{spec['q_used']}, n={spec['n_used']})", f"{spec['effective_rank']:.2f}"),
        ("participation ratio", f"{spec['participation_ratio']:.2f}"),
        ("random-pair cosine mean / std", f"{cos['mean']:.4f} / {cos['std']:.4f}"),
        ("cosine p10 / p50 / p90", f"{cos['p10']:.4f} / {cos['p50']:.4f} / {cos['p90']:.4f}"),
        ("feature norm mean / std", f"{norms['mean']:.4g} / {norms['std']:.4g}"),
    ]
    lines = [f"## Readout `{name}`", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", f"![summary {name}](plots/summary_{name}.png)", ""]
    return "\n".join(lines)


def render_report(metrics: dict[str, Any]) -> str:
    """The whole report.md text."""
    head = [
        "# Frozen-feature evaluation",
        "",
        f"- checkpoint: `{metrics.get('checkpoint')}`",
        f"- dataset: {metrics.get('dataset')} ({metrics['num_classes']} classes, "
        f"{metrics['n_train']} train / {metrics['n_test']} test)",
        f"- split_qp: {metrics['split_qp']}",
        "- timing (s): " + ", ".join(f"{k} {v:.2f}" for k, v in metrics["timing"].items()),
    ]
    if metrics.get("knn_k_dropped"):
        dropped, n_train = metrics["knn_k_dropped"], metrics["n_train"]
        head.append(f"- kNN sweep without k = {dropped} (larger than the {n_train} train images)")
    head.append("")
    return "\n".join(head + [readout_table(n, b) for n, b in metrics["readouts"].items()])


def write_report(metrics: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(metrics))
    return path
