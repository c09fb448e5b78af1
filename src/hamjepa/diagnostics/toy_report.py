"""``hamjepa diagnose toy``: run the six docs/spec.md §I diagnostics on the toy systems, draw figures, write a summary.

Layout written under ``out_dir``::

    summary.json                      settings + per system / integrator summary numbers + analytic checks
    <system>/energy_drift_heatmap.png relative energy drift after T steps (symlog colour)
    <system>/reversibility.png        log10 time-reversal error
    <system>/liouville_area.png       A(t)/A(0) and |A(t)/A(0) - 1|
    <system>/liouville_blob.png       the blob at t = 0 and t = T
    <system>/energy_vs_time.png       median and 25-75 % band of the relative drift
    <system>/symplecticity_defect.png histograms of ||J^T Omega J - Omega||_F
    <system>/covariance_stability.png trace, log det, lambda_min of the ensemble covariance
    <system>/sliced_projections.png   drift of random 1-D projections of the ensemble (App. D.4)

Every figure except ``sliced_projections.png`` (which overlays the integrators) has one panel (column) per
integrator. Figures use Matplotlib's object API with the Agg
canvas (no pyplot state, no display needed).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hamjepa.diagnostics.sliced import SlicedDrift, random_unit_directions, sliced_drift
from hamjepa.diagnostics.toy_metrics import (
    EPS64,
    covariance_stability,
    energy_drift_grid,
    energy_vs_time,
    euler_pendulum_defect,
    liouville_area,
    reversibility_grid,
    symplecticity_defect,
    uniform_states,
)
from hamjepa.diagnostics.toy_plots import (
    plot_area,
    plot_blobs,
    plot_covariance,
    plot_defects,
    plot_energy_time,
    plot_heatmaps,
    plot_reversibility,
    plot_sliced,
)
from hamjepa.diagnostics.toy_systems import (
    INTEGRATOR_LABELS,
    INTEGRATORS,
    SYSTEMS,
    ToySystem,
    get_system,
    rollout,
)
from hamjepa.provenance import provenance

__all__ = ["ToySettings", "run_toy_diagnostics"]


@dataclass(frozen=True)
class ToySettings:
    """Settings of the toy diagnostics (docs/spec.md §I defaults).

    Attributes:
        dt: integrator step.
        steps: rollout length ``T``.
        grid: side of the initial-condition grid of the heatmaps (``grid x grid``).
        blob: side of the Liouville blob grid.
        ensemble: number of random initial conditions for energy-vs-time and covariance.
        symplectic_samples: number of random states for the symplecticity defect.
        seed: NumPy generator seed of the random initial conditions (one fresh generator per system) and
            of the sliced-projection directions.
        sliced_directions: random unit directions of the sliced-projection diagnostic.
    """

    dt: float = 0.1
    steps: int = 250
    grid: int = 151
    blob: int = 41
    ensemble: int = 256
    symplectic_samples: int = 200
    seed: int = 0
    sliced_directions: int = 64

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""
        if not (self.dt > 0 and math.isfinite(self.dt)):
            raise ValueError(f"dt must be a positive finite number, got {self.dt}")
        for name, minimum in (
            ("steps", 1),
            ("grid", 2),
            ("blob", 2),
            ("ensemble", 2),
            ("symplectic_samples", 1),
            ("sliced_directions", 1),
        ):
            value = getattr(self, name)
            if value < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _quantiles(values: np.ndarray) -> dict[str, float | None]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"median": None, "q25": None, "q75": None, "max": None}
    return {
        "median": float(np.median(finite)),
        "q25": float(np.quantile(finite, 0.25)),
        "q75": float(np.quantile(finite, 0.75)),
        "max": float(finite.max()),
    }


def sliced_ensemble(
    system: ToySystem, integrator: str, s: ToySettings, ensemble: np.ndarray, directions: torch.Tensor
) -> SlicedDrift:
    """Sliced drift of the ensemble rolled out by ``integrator`` (float32, wrapped, every step; like docs/spec.md
    §I.6)."""
    x0 = torch.from_numpy(ensemble).to(torch.float32)
    _, traj = rollout(system, INTEGRATORS[integrator], x0, s.dt, s.steps, wrap=True, record_every=1)
    assert traj is not None
    return sliced_drift(traj, directions)


def _diagnose_system(system: ToySystem, integrators: Sequence[str], s: ToySettings, out_dir: Path) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(s.seed)
    ensemble = uniform_states(system, s.ensemble, rng)
    sym_states = uniform_states(system, s.symplectic_samples, rng)

    drift, rev, area, etime, defects, dets, cov, sliced = {}, {}, {}, {}, {}, {}, {}, {}
    directions = random_unit_directions(ensemble.shape[1], s.sliced_directions, s.seed)
    for name in integrators:
        step = INTEGRATORS[name]
        drift[name] = energy_drift_grid(system, step, s.dt, s.steps, s.grid)
        rev[name] = reversibility_grid(system, step, s.dt, s.steps, s.grid)
        area[name] = liouville_area(system, step, s.dt, s.steps, blob=s.blob)
        etime[name] = energy_vs_time(system, step, s.dt, s.steps, ensemble)
        defects[name], dets[name] = symplecticity_defect(system, step, s.dt, sym_states)
        cov[name] = covariance_stability(system, step, s.dt, s.steps, ensemble)
        sliced[name] = sliced_ensemble(system, name, s, ensemble, directions)

    figures = {
        "energy_drift_heatmap": plot_heatmaps(system, drift, s.dt, s.steps, out_dir / "energy_drift_heatmap.png"),
        "reversibility": plot_reversibility(system, rev, s.steps, out_dir / "reversibility.png"),
        "liouville_area": plot_area(
            system, {k: v.ratio for k, v in area.items()}, s.dt, out_dir / "liouville_area.png"
        ),
        "liouville_blob": plot_blobs(system, area, s.steps, out_dir / "liouville_blob.png"),
        "energy_vs_time": plot_energy_time(system, etime, s.dt, out_dir / "energy_vs_time.png"),
        "symplecticity_defect": plot_defects(system, defects, out_dir / "symplecticity_defect.png"),
        "covariance_stability": plot_covariance(system, cov, out_dir / "covariance_stability.png"),
        "sliced_projections": plot_sliced(system, sliced, s.dt, out_dir / "sliced_projections.png"),
    }

    per_integrator: dict[str, Any] = {}
    for name in integrators:
        d = drift[name]
        valid = d[~np.isnan(d)]
        r_final = etime[name][-1]
        c = cov[name]
        per_integrator[name] = {
            "label": INTEGRATOR_LABELS[name],
            "energy_drift_abs": _quantiles(np.abs(valid)),
            "energy_drift_diverged_fraction": float(np.mean(np.isinf(valid))) if valid.size else 0.0,
            "reversibility_error": _quantiles(rev[name].ravel()),
            "area_ratio_final": _finite_or_none(area[name].ratio[-1]),
            "area_ratio_max_abs_deviation": _finite_or_none(np.max(np.abs(area[name].ratio - 1.0))),
            "hull_area_ratio_final": _finite_or_none(area[name].hull_ratio),
            "energy_vs_time_final": _quantiles(r_final),
            "symplecticity_defect": _quantiles(defects[name]),
            "symplecticity_fraction_at_roundoff": float(np.mean(defects[name] <= EPS64)),
            "det_jacobian_max_abs_minus_1": float(np.max(np.abs(dets[name] - 1.0))),
            "covariance": {
                key: {"start": _finite_or_none(getattr(c, key)[0]), "end": _finite_or_none(getattr(c, key)[-1])}
                for key in ("trace", "logdet", "lambda_min")
            },
            "sliced": {**sliced[name].summary(), "curves": sliced[name].curves()},
        }
    return {
        "title": system.title,
        "integrators": per_integrator,
        "analytic_checks": _analytic_checks(system, s, sym_states, defects, area),
        "figures": figures,
    }


def _analytic_checks(
    system: ToySystem, s: ToySettings, states: np.ndarray, defects: dict[str, np.ndarray], area: dict[str, Any]
) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    if system.name == "pendulum" and "explicit_euler" in defects:
        predicted = euler_pendulum_defect(states[:, 0], s.dt)
        checks["euler_defect_vs_sqrt2_dt2_abs_cos_q_max_abs_error"] = float(
            np.max(np.abs(defects["explicit_euler"] - predicted))
        )
    if system.name == "harmonic" and "explicit_euler" in area:
        predicted = (1.0 + s.dt**2) ** s.steps
        checks["euler_area_ratio_predicted"] = predicted
        checks["euler_area_ratio_measured"] = float(area["explicit_euler"].ratio[-1])
    if "leapfrog" in area:
        checks["leapfrog_area_ratio_max_abs_deviation"] = float(np.max(np.abs(area["leapfrog"].ratio - 1.0)))
    return checks


def run_toy_diagnostics(
    out_dir: str | Path,
    *,
    systems: Sequence[str] = tuple(SYSTEMS),
    integrators: Sequence[str] = tuple(INTEGRATORS),
    settings: ToySettings | None = None,
) -> dict[str, Any]:
    """Run all toy diagnostics, write figures under ``out_dir/<system>/`` and ``out_dir/summary.json``.

    Args:
        out_dir: output directory (created).
        systems: names from :data:`~hamjepa.diagnostics.toy_systems.SYSTEMS`.
        integrators: names from :data:`~hamjepa.diagnostics.toy_systems.INTEGRATORS`.
        settings: :class:`ToySettings`; ``None`` means the defaults of docs/spec.md §I.

    Returns:
        The summary dictionary that was written to ``summary.json``.
    """
    settings = settings or ToySettings()
    settings.validate()
    if not systems:
        raise ValueError("systems must name at least one toy system")
    for name in integrators:
        if name not in INTEGRATORS:
            raise ValueError(f"unknown integrator {name!r}; choose from {sorted(INTEGRATORS)}")
    if not integrators:
        raise ValueError("integrators must name at least one integrator")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "kind": "diagnose_toy",
        "provenance": provenance(),
        "settings": asdict(settings),
        "systems": {},
    }
    # The toy arrays are small (<= grid^2 elements): intra-op threading only adds synchronisation
    # overhead, which is catastrophic on a loaded machine (measured 20x slower with 2 threads).
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name in systems:
            system = get_system(name)
            summary["systems"][name] = _diagnose_system(system, integrators, settings, out / name)
    finally:
        torch.set_num_threads(previous_threads)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False))
    return summary
