"""Forecast figures of the dynamics benchmark (matplotlib, Agg backend, first seed of each method).

* ``sine_forecast.png``: a few test sequences (context solid, target dashed) with each method's 1-step
  predictor-probe forecast at the split, plus true-vs-forecast scatter over the 20 test sequences.
* ``lorenz_forecast.png``: the x-coordinate of a few test trajectories with the forecasts, plus scatter.
* ``lorenz_phase.png``: a 3-D phase portrait of test trajectories with each method's forecast next state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot_forecasts"]

_COLORS = {"jepa": "tab:orange", "bijepa": "tab:blue", "hamjepa": "tab:green"}
_LABELS = {"jepa": "JEPA", "bijepa": "BiJEPA", "hamjepa": "HamJEPA"}


def _first_seed_runs(runs: list[dict[str, Any]], task: str) -> dict[str, dict[str, Any]]:
    chosen: dict[str, dict[str, Any]] = {}
    for run in sorted(runs, key=lambda r: r["seed"]):
        if run["task"] == task and run.get("plot") and run["method"] not in chosen:
            chosen[run["method"]] = run
    return chosen


def _forecast_figure(task: str, chosen: dict[str, dict[str, Any]], path: Path, n_show: int = 4) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    any_run = next(iter(chosen.values()))
    test = np.asarray(any_run["plot"]["test"])  # [N, T, C]
    split = any_run["plot"]["split"]
    n_show = min(n_show, test.shape[0])
    fig, axes = plt.subplots(1, n_show + 1, figsize=(3.2 * (n_show + 1), 3.0))
    t = np.arange(test.shape[1])
    for i in range(n_show):
        ax = axes[i]
        ax.plot(t[: split + 1], test[i, : split + 1, 0], "k-", lw=1.2, label="context")
        ax.plot(t[split:], test[i, split:, 0], "k--", lw=1.0, alpha=0.6, label="true future")
        ax.plot([split], [test[i, split, 0]], "ko", ms=5)
        for method, run in chosen.items():
            pred = np.asarray(run["plot"]["pred_forecast"])
            ax.plot([split], [pred[i, 0]], "x", color=_COLORS[method], ms=8, mew=2, label=_LABELS[method])
        ax.set_title(f"test sequence {i}")
        ax.set_xlabel("step")
    axes[0].legend(fontsize=7)
    ax = axes[-1]
    truth = test[:, split, 0]
    lo, hi = float(truth.min()), float(truth.max())
    ax.plot([lo, hi], [lo, hi], "k:", lw=1)
    for method, run in chosen.items():
        pred = np.asarray(run["plot"]["pred_forecast"])[:, 0]
        ax.scatter(truth, pred, s=14, color=_COLORS[method], label=_LABELS[method])
    ax.set_xlabel("true value at split")
    ax.set_ylabel("predictor-probe forecast")
    ax.set_title("1-step forecast (x / value)")
    fig.suptitle(f"{task}: 1-step forecasts of the predictor probe (seed {any_run['seed']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _phase_figure(chosen: dict[str, dict[str, Any]], path: Path, n_show: int = 5) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    any_run = next(iter(chosen.values()))
    test = np.asarray(any_run["plot"]["test"])  # [N, 40, 3]
    split = any_run["plot"]["split"]
    fig = plt.figure(figsize=(6.5, 5.5))
    ax = fig.add_subplot(projection="3d")
    for i in range(min(n_show, test.shape[0])):
        ax.plot(*test[i, : split + 1].T, "k-", lw=1.0)
        ax.plot(*test[i, split:].T, "k--", lw=0.8, alpha=0.5)
        ax.scatter(*test[i, split], color="k", s=12)
        for method, run in chosen.items():
            pred = np.asarray(run["plot"]["pred_forecast"])
            ax.scatter(*pred[i], color=_COLORS[method], marker="x", s=30, label=_LABELS[method] if i == 0 else None)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_zlabel("z")
    ax.legend(fontsize=8)
    ax.set_title("Lorenz test trajectories (normalised): context, future, forecast next state")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_forecasts(runs: list[dict[str, Any]], out_dir: str | Path) -> dict[str, str]:
    """Write the figures for the sequence tasks present in ``runs``; returns ``{name: path}``."""
    out = Path(out_dir)
    files: dict[str, str] = {}
    for task in ("sine", "lorenz"):
        chosen = _first_seed_runs(runs, task)
        if not chosen:
            continue
        path = out / f"{task}_forecast.png"
        _forecast_figure(task, chosen, path)
        files[f"{task}_forecast"] = str(path)
        if task == "lorenz":
            phase = out / "lorenz_phase.png"
            _phase_figure(chosen, phase)
            files["lorenz_phase"] = str(phase)
    return files
