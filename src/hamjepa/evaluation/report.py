"""``eval/metrics.json`` and ``eval/report.md`` writers.

metrics.json schema (version 2; accuracies are fractions in [0, 1]; times in seconds). Every number belongs
to one of two protocols (:mod:`hamjepa.evaluation.protocols`): the paper's ``token`` protocol (blocks under
``readouts``) and the field's ``standard`` protocol (blocks under ``standard_readouts``); each block names
its ``protocol`` and ``protocols`` describes the settings of each::

    {
      "schema_version": 2,
      "checkpoint": str | null,          # checkpoint file the encoder came from
      "config": dict | null,             # the run's resolved config (as saved in the checkpoint)
      "dataset": str | null,
      "num_classes": int,
      "split_qp": bool,                  # true: token readouts q, p, qp; false: readout z
      "n_train": int, "n_test": int,
      "options": {...},                  # the EvalOptions used (sweeps, probe settings, seeds, dtype, protocols)
      "knn_k_dropped": [int],            # token protocol: default-sweep k above n_train (usually [])
      "protocols": {                     # one entry per protocol run
        "token" | "standard": {
          "feature": str, "readouts": [str],
          "knn": {"vote": "majority" | "weighted", "temperature": float | null, "k_values": [int],
                  ("k": 20, "k_dropped": [int])},                                   # standard only
          "linear_probe": {"recipe": "layernorm_linear_adamw_cosine" | "linear_sgd_step", <settings>}
        }
      },
      "readouts": {                      # token protocol
        "<name>": {                      # "q" | "p" | "qp" (split_qp) or "z"; + objective extras ("ham")
          "protocol": "token",
          "feature_dim": int,
          "knn": {"k_values": [int], "top1": [float], "top5": [float], "nn20": float | null,
                  "best_k": int, "best_top1": float, "weighted": bool, "temperature": float | null},
          "linear_probe": {"recipe": "layernorm_linear_adamw_cosine", "epochs": int, "batch_size": int,
                           "lr": float, "weight_decay": float, "seed": int,
                           "top1": float, "top5": float, "final_train_loss": float},
          "geometry": {
            "spectrum": {"n_used": int, "q_used": int, "eigenvalues": [float],   # top-q, descending
                         "effective_rank": float, "participation_ratio": float},
            "cosine": {"mean", "std", "p10", "p50", "p90", "min", "max": float},  # random test pairs
            "norms":  {"mean", "std", "p10", "p50", "p90", "min", "max": float}   # test-feature L2 norms
          }
        }
      },
      "standard_readouts": {             # standard protocol ({} when not run)
        "pooled": {"protocol": "standard", "feature_dim": int, "knn": {... weighted: true ...},
                   "linear_probe": {"recipe": "linear_sgd_step", "epochs", "batch_size", "lr", "momentum",
                                    "weight_decay", "milestone_epochs": [int], "gamma", "seed",
                                    "top1", "top5", "final_train_loss"},
                   "geometry": {...}}
      },
      "timing": {"features", "knn", "linear_probe", "geometry", "standard_knn", "standard_linear_probe",
                 "standard_geometry", "outputs", "total": float}   # the stages run
    }

Version 1 (before the standard protocol) had no ``protocols`` / ``standard_readouts`` and no ``protocol`` or
``recipe`` keys; its ``readouts`` are token-protocol blocks, and :func:`protocol_blocks` reads both versions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2

PROTOCOL_TITLES = {
    "token": "Token protocol (the paper's): flattened headless tokens",
    "standard": "Standard protocol (the field's): pooled backbone feature",
}
"""Section title of each protocol in report.md and compare.md."""


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


def protocol_blocks(metrics: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(protocol, readout, block)`` for every evaluated readout, token protocol first (schema 1 or 2)."""
    out = [(block.get("protocol", "token"), name, block) for name, block in metrics["readouts"].items()]
    return out + [(block["protocol"], name, block) for name, block in metrics.get("standard_readouts", {}).items()]


def protocol_setting(protocol: str, block: dict[str, Any]) -> str:
    """How a block's numbers were measured: the kNN vote and the probe recipe with its settings.

    Two blocks with the same protocol and setting may share a table column; any other pair may not.
    """
    knn, probe = block["knn"], block["linear_probe"]
    vote = f"weighted exp(sim/{knn['temperature']:g})" if knn["weighted"] else "majority"
    if probe.get("recipe", "layernorm_linear_adamw_cosine") == "layernorm_linear_adamw_cosine":
        head = f"LayerNorm + Linear, AdamW lr {probe['lr']:g} wd {probe['weight_decay']:g}, cosine"
    else:
        steps = "/".join(str(e) for e in probe["milestone_epochs"])
        head = (
            f"Linear, SGD lr {probe['lr']:g} momentum {probe['momentum']:g} wd {probe['weight_decay']:g}, "
            f"x{probe['gamma']:g} at epochs {steps}"
        )
    run = f"{probe['epochs']} epochs, batch {probe['batch_size']}"
    return f"{protocol} protocol; kNN vote {vote}; linear probe {head}, {run}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def readout_table(protocol: str, name: str, block: dict[str, Any]) -> str:
    """Markdown table of one readout's block of metrics.json; the heading names its protocol."""
    knn, probe, geo = block["knn"], block["linear_probe"], block["geometry"]
    spec, cos, norms = geo["spectrum"], geo["cosine"], geo["norms"]
    vote = f"weighted, T={knn['temperature']:g}" if knn["weighted"] else "majority vote"
    rows = [
        ("feature dim", str(block["feature_dim"])),
        (f"kNN@20 top-1 (%), {vote}", _pct(knn["nn20"])),
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
    lines = [f"### {protocol} protocol: readout `{name}`", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", f"![summary {name}](plots/summary_{name}.png)", ""]
    return "\n".join(lines)


def render_report(metrics: dict[str, Any]) -> str:
    """The whole report.md text: a header, then one section per protocol (never mixed)."""
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
    standard_dropped = metrics.get("protocols", {}).get("standard", {}).get("knn", {}).get("k_dropped")
    if standard_dropped:
        head.append(f"- standard kNN sweep without k = {standard_dropped} (larger than the train set)")
    head.append("")
    sections: list[str] = []
    blocks = protocol_blocks(metrics)
    for protocol in dict.fromkeys(p for p, _, _ in blocks):
        mine = [(name, block) for p, name, block in blocks if p == protocol]
        sections += [f"## {PROTOCOL_TITLES.get(protocol, protocol)}", "", protocol_setting(protocol, mine[0][1]), ""]
        sections += [readout_table(protocol, name, block) for name, block in mine]
    return "\n".join(head + sections)


def write_report(metrics: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(metrics))
    return path
