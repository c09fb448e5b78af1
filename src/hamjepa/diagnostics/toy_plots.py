"""Figures of ``hamjepa diagnose toy`` (one panel per integrator; Matplotlib's object API on the Agg canvas,
no pyplot state, no display needed). Each ``plot_*`` function draws one figure from the arrays of
:mod:`hamjepa.diagnostics.toy_metrics` and returns the path it wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import SymLogNorm
from matplotlib.figure import Figure

from hamjepa.diagnostics.sliced import SlicedDrift
from hamjepa.diagnostics.toy_metrics import EPS64
from hamjepa.diagnostics.toy_systems import INTEGRATOR_LABELS, ToySystem

__all__ = [
    "DIVERGED_ABOVE",
    "plot_area",
    "plot_blobs",
    "plot_covariance",
    "plot_defects",
    "plot_energy_time",
    "plot_heatmaps",
    "plot_reversibility",
    "plot_sliced",
]


def _save(fig: Figure, path: Path) -> str:
    fig.savefig(path, dpi=100)
    return str(path)


def _panels(n_rows: int, n_cols: int, title: str, *, height: float = 3.6) -> tuple[Figure, np.ndarray]:
    # A fixed layout: constrained/tight layout engines cost ~1 s of CPU per figure here.
    fig = Figure(figsize=(5.0 * n_cols, height * n_rows + 0.6))
    axes = np.asarray(fig.subplots(n_rows, n_cols, squeeze=False))
    top = 1.0 - 0.9 / (height * n_rows + 0.6)
    fig.subplots_adjust(left=0.07, right=0.97, bottom=0.5 / (height * n_rows), top=top, wspace=0.45, hspace=0.55)
    fig.suptitle(title)
    return fig, axes


def _log_if_wide(ax: Any, values: np.ndarray) -> None:
    """Switch a positive series spanning more than two decades (e.g. a diverging Euler run) to a log axis."""
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 100.0:
        ax.set_yscale("log")


DIVERGED_ABOVE = 1e12
"""A plotted ratio beyond this (or not finite) counts as diverged: the curve stops there and the title says when."""


def _until_diverged(
    t: np.ndarray, values: np.ndarray, limit: float = DIVERGED_ABOVE
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """The finite prefix of a curve, ``(t, values, time of divergence or None)``; keeps axes off 1e300 values."""
    bad = np.flatnonzero(~np.isfinite(values) | (np.abs(values) > limit))
    if bad.size == 0:
        return t, values, None
    return t[: bad[0]], values[: bad[0]], float(t[bad[0]])


def _system_box(system: ToySystem) -> list[float]:
    return [*system.q_range, *system.p_range]


def plot_heatmaps(system: ToySystem, drift: dict[str, np.ndarray], dt: float, steps: int, path: Path) -> str:
    names = list(drift)
    magnitudes = np.concatenate([np.abs(v[np.isfinite(v)]) for v in drift.values()])
    lim = max(float(np.quantile(magnitudes, 0.995)) if magnitudes.size else 0.0, 1e-3)
    norm = SymLogNorm(linthresh=1e-2, vmin=-lim, vmax=lim, base=10)
    fig, axes = _panels(1, len(names), f"{system.title}: relative energy drift after T={steps} (dt={dt})")
    for ax, name in zip(axes[0], names, strict=True):
        values = drift[name]
        diverged = float(np.mean(np.isinf(values)))
        shown = np.clip(np.where(np.isinf(values), np.sign(values) * lim, values), -lim, lim)
        im = ax.imshow(shown, origin="lower", extent=_system_box(system), aspect="auto", cmap="RdBu_r", norm=norm)
        extra = f", diverged {diverged:.1%}" if diverged > 0 else ""
        ax.set_title(f"{INTEGRATOR_LABELS[name]}\nmedian |drift| {np.nanmedian(np.abs(values)):.2e}{extra}")
        ax.set_xlabel("q (initial)")
        ax.set_ylabel("p (initial)")
        fig.colorbar(im, ax=ax, label="(H_T − H_0)/(H_0 + 1e-3), symlog")
    return _save(fig, path)


def plot_reversibility(system: ToySystem, errors: dict[str, np.ndarray], steps: int, path: Path) -> str:
    fig, axes = _panels(1, len(errors), f"{system.title}: time-reversal error after 2×{steps} steps")
    for ax, (name, err) in zip(axes[0], errors.items(), strict=True):
        logged = np.log10(np.where(np.isfinite(err), err, np.nan) + 1e-12)
        finite = logged[np.isfinite(logged)]
        lo, hi = np.quantile(finite, [0.02, 0.98]) if finite.size else (-12.0, 0.0)
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        im = ax.imshow(
            logged, origin="lower", extent=_system_box(system), aspect="auto", cmap="viridis", vmin=lo, vmax=hi
        )
        ax.set_title(f"{INTEGRATOR_LABELS[name]}\nmedian error {np.nanmedian(err):.2e}")
        ax.set_xlabel("q (initial)")
        ax.set_ylabel("p (initial)")
        fig.colorbar(im, ax=ax, label="log10(error + 1e-12)")
    return _save(fig, path)


def plot_area(system: ToySystem, ratios: dict[str, np.ndarray], dt: float, path: Path) -> str:
    fig, axes = _panels(2, len(ratios), f"{system.title}: Liouville area of a blob (float64, no wrap)")
    for col, (name, ratio) in enumerate(ratios.items()):
        t, ratio, diverged_at = _until_diverged(np.arange(ratio.size) * dt, ratio)
        top, bottom = axes[0, col], axes[1, col]
        top.plot(t, ratio, color="C0", label="A(t)/A(0)")
        top.axhline(1.0, color="k", lw=0.8, ls="--", label="area preserved")
        final = f"diverged at t·dt = {diverged_at:g}" if diverged_at is not None else f"final ratio {ratio[-1]:.6g}"
        top.set_title(f"{INTEGRATOR_LABELS[name]}\n{final}")
        top.set_xlabel("time t·dt")
        top.set_ylabel("A(t)/A(0)")
        _log_if_wide(top, ratio)
        top.legend(loc="best")
        bottom.semilogy(t, np.abs(ratio - 1.0) + 1e-16, color="C3", label="|A(t)/A(0) − 1| + 1e-16")
        bottom.set_xlabel("time t·dt")
        bottom.set_ylabel("area error (log)")
        bottom.legend(loc="best")
    return _save(fig, path)


def plot_blobs(system: ToySystem, results: dict[str, Any], steps: int, path: Path) -> str:
    fig, axes = _panels(1, len(results), f"{system.title}: blob at t=0 and t=T={steps}", height=4.2)
    for ax, (name, res) in zip(axes[0], results.items(), strict=True):
        start, end = res.blob_start.reshape(-1, 2), res.blob_end.reshape(-1, 2)
        end = end[np.isfinite(end).all(axis=1)]
        ax.scatter(start[:, 0], start[:, 1], s=1, color="C0", label="t = 0")
        ax.scatter(end[:, 0], end[:, 1], s=1, color="C1", label=f"t = {steps}")
        ax.set_title(f"{INTEGRATOR_LABELS[name]}\ngrid-area ratio {res.ratio[-1]:.4g}, hull ratio {res.hull_ratio:.3g}")
        ax.set_xlabel("q")
        ax.set_ylabel("p")
        ax.legend(loc="best", markerscale=8)
    return _save(fig, path)


def plot_energy_time(system: ToySystem, drift: dict[str, np.ndarray], dt: float, path: Path) -> str:
    fig, axes = _panels(1, len(drift), f"{system.title}: relative energy drift of a random ensemble")
    for ax, (name, r) in zip(axes[0], drift.items(), strict=True):
        t = np.arange(r.shape[0]) * dt
        with np.errstate(invalid="ignore"):
            q25, med, q75 = np.nanquantile(np.where(np.isfinite(r), r, np.nan), [0.25, 0.5, 0.75], axis=1)
        ax.fill_between(t, q25, q75, color="C0", alpha=0.3, label="25–75 % band")
        ax.plot(t, med, color="C0", label="median")
        ax.axhline(0.0, color="k", lw=0.8, ls="--")
        ax.set_title(f"{INTEGRATOR_LABELS[name]}\nfinal median {med[-1]:.3e}")
        ax.set_xlabel("time t·dt")
        ax.set_ylabel("(E_t − E_0)/max(E_0, 1e-3)")
        ax.legend(loc="best")
    return _save(fig, path)


def plot_defects(system: ToySystem, defects: dict[str, np.ndarray], path: Path) -> str:
    fig, axes = _panels(2, len(defects), f"{system.title}: symplecticity defect ||JᵀΩJ − Ω||_F (float64)")
    # Shared bins across integrators so that round-off and O(dt^2) defects are visibly far apart.
    top_all = max(float(np.max(np.maximum(d, EPS64))) for d in defects.values())
    hi = max(top_all, 100 * EPS64)
    log_bins = np.linspace(np.log10(EPS64) - 0.25, np.log10(hi) + 0.25, 41)
    geo_bins = np.geomspace(EPS64 / 1.5, hi * 1.5, 41)
    for col, (name, delta) in enumerate(defects.items()):
        clipped = np.maximum(delta, EPS64)
        top, bottom = axes[0, col], axes[1, col]
        top.hist(np.log10(clipped), bins=log_bins, color="C2", label=f"{delta.size} states")
        top.axvline(np.log10(EPS64), color="k", ls="--", lw=0.8, label="float64 eps")
        frac = float(np.mean(delta <= EPS64))
        top.set_title(f"{INTEGRATOR_LABELS[name]}\nmedian {np.median(delta):.2e}, {frac:.0%} ≤ eps")
        top.set_xlabel("log10 max(δ, eps)")
        top.set_ylabel("count")
        top.legend(loc="upper center")
        bottom.hist(clipped, bins=geo_bins, color="C4", label="max(δ, eps), log bins")
        bottom.set_xscale("log")
        bottom.set_xlabel("δ = ||JᵀΩJ − Ω||_F")
        bottom.set_ylabel("count")
        bottom.legend(loc="upper center")
    return _save(fig, path)


def plot_covariance(system: ToySystem, cov: dict[str, Any], path: Path) -> str:
    rows = (("trace", "tr C"), ("logdet", "log det(C + 1e-9 I)"), ("lambda_min", "λ_min(C + 1e-9 I)"))
    fig, axes = _panels(3, len(cov), f"{system.title}: ensemble covariance over time", height=2.8)
    for col, (name, res) in enumerate(cov.items()):
        for row, (attr, label) in enumerate(rows):
            ax = axes[row, col]
            ax.plot(res.times, getattr(res, attr), color=f"C{row}", label=label)
            if attr != "logdet":
                _log_if_wide(ax, getattr(res, attr))
            ax.set_xlabel("time t·dt")
            ax.set_ylabel(label)
            ax.legend(loc="best")
            if row == 0:
                ax.set_title(INTEGRATOR_LABELS[name])
    return _save(fig, path)


def plot_sliced(system: ToySystem, sliced: dict[str, SlicedDrift], dt: float, path: Path) -> str:
    fig, axes = _panels(1, 3, f"{system.title}: random 1-D projections of the ensemble (Cramér–Wold view)")
    ax_w, ax_v, ax_h = axes[0]
    for i, (name, res) in enumerate(sliced.items()):
        curves = {k: np.asarray(v, dtype=float) for k, v in res.curves().items()}
        # One cut for all curves of an integrator: where a log ratio (or W1 in units of std) passes log(1e12).
        worst = np.max(np.abs(np.stack([curves[k] for k in ("sliced_w1_rel", "log_var_ratio_max")])), axis=0)
        t, _, diverged_at = _until_diverged(res.times * dt, worst, limit=float(np.log(DIVERGED_ABOVE)))
        n = t.size
        label = INTEGRATOR_LABELS[name] + (f" (diverged at t·dt = {diverged_at:g})" if diverged_at is not None else "")
        ax_w.plot(t, curves["sliced_w1_rel"][:n], color=f"C{i}", label=label)
        lo, hi = curves["log_var_ratio_min"][:n], curves["log_var_ratio_max"][:n]
        ax_v.plot(t, curves["log_var_ratio_median"][:n], color=f"C{i}", label=label)
        ax_v.fill_between(t, lo, hi, color=f"C{i}", alpha=0.2)
        final = res.projections_first[-1]
        if i == 0:
            ax_h.hist(res.projections_first[0], bins=30, histtype="step", color="k", label="t = 0")
        if np.isfinite(final).all():
            ax_h.hist(final, bins=30, histtype="step", color=f"C{i}", label=f"{label}, t = T")
    ax_w.set_xlabel("time t·dt")
    ax_w.set_ylabel("mean W1(t, 0) / std(0)")
    ax_w.set_title("sliced Wasserstein-1 from t = 0")
    ax_w.legend(loc="best", fontsize=7)
    ax_v.axhline(0.0, color="k", lw=0.6)
    ax_v.set_xlabel("time t·dt")
    ax_v.set_ylabel("log Var(aᵀx_t) / Var(aᵀx_0)")
    ax_v.set_title("projected variance: median, min–max over directions")
    ax_v.legend(loc="best", fontsize=7)
    ax_h.set_xlabel("projection on the first direction")
    ax_h.set_ylabel("count")
    ax_h.set_title("1-D distribution at t = 0 and t = T")
    ax_h.legend(loc="best", fontsize=7)
    return _save(fig, path)
