"""``hamjepa diagnose TARGET``: toy-system geometry diagnostics (``TARGET = toy``) or the structural checks
of a trained run's predictor (``TARGET = RUN_DIR`` or a checkpoint file)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hamjepa.errors import HamjepaError

TOY_DEFAULT_OUT = Path("runs") / "diagnostics_toy"
"""Output folder of ``hamjepa diagnose toy`` when ``--out`` is not given."""

TOY_SYSTEMS = ("pendulum", "harmonic", "duffing")
"""Names of :data:`hamjepa.diagnostics.toy_systems.SYSTEMS` (a test keeps them equal), written out so that
``--help`` does not import torch."""


def _fmt(value: float | None) -> str:
    return "diverged" if value is None else f"{value:.3f}"


def _run_toy(args: argparse.Namespace) -> int:
    from hamjepa.diagnostics.toy_report import ToySettings, run_toy_diagnostics

    systems = list(TOY_SYSTEMS) if args.system == "all" else [args.system]
    settings = ToySettings(
        dt=args.dt,
        steps=args.steps if args.steps is not None else 250,
        grid=args.grid,
        blob=args.blob,
        ensemble=args.ensemble,
        symplectic_samples=args.samples,
        seed=args.seed,
        sliced_directions=args.directions,
    )
    out = Path(args.out) if args.out else TOY_DEFAULT_OUT
    start = time.perf_counter()
    summary = run_toy_diagnostics(out, systems=systems, settings=settings)
    for name, sys_summary in summary["systems"].items():
        print(f"[{name}]")
        for integ, row in sys_summary["integrators"].items():
            drift = row["energy_drift_abs"]["median"]
            print(
                f"  {integ:17s} median|energy drift| {drift if drift is None else f'{drift:.3e}'}  "
                f"median reversal err {row['reversibility_error']['median']:.3e}  "
                f"area ratio(T) {row['area_ratio_final']}  "
                f"median sympl. defect {row['symplecticity_defect']['median']:.3e}"
            )
            sl = row["sliced"]
            final = sl["log_var_ratio_final"]
            print(
                f"  {'':17s} sliced: W1(T,0)/std {_fmt(sl['sliced_w1_rel_final'])}  "
                f"median |log var ratio| {_fmt(final['median_abs'])}  spread over directions {_fmt(final['spread'])}"
            )
    print(f"wrote {out}/summary.json and figures in {time.perf_counter() - start:.1f}s")
    return 0


def _run_predictor(args: argparse.Namespace) -> int:
    from hamjepa.diagnostics.learned_report import run_dir_diagnostics

    target = Path(args.target)
    if not target.exists():
        raise HamjepaError(f"diagnose: {target} is neither 'toy' nor an existing run directory / checkpoint")
    result = run_dir_diagnostics(
        target,
        out_dir=args.out,
        num_states=args.num_states,
        rollout_steps=args.steps if args.steps is not None else 1000,
        device=args.device,
        probes=args.probes,
        dense_samples=args.dense_samples,
        seed=args.seed,
        sliced_directions=args.directions,
        rollout_samples=args.rollout_samples,
    )
    brief = {
        "predictor": result["predictor"],
        "dim": result["dim"],
        "symplecticity_defect": result["symplecticity"]["defect"],
        "reconstruction_abs_error": result["reconstruction"]["abs_error"],
        "dense_log_abs_det": result["dense"]["log_abs_det"] if result["dense"] else None,
        "sliced": {k: v for k, v in result["rollout"]["sliced"].items() if k != "curves"}
        if result["rollout"]
        else None,
        "files": result["files"],
    }
    print(json.dumps(brief, indent=2))
    return 0


def _diagnose(args: argparse.Namespace) -> int:
    # A bad target (missing, no checkpoint, no predictor) raises a HamjepaError / ValueError: the top-level CLI
    # prints it as one `error:` line and exits 2.
    return _run_toy(args) if args.target == "toy" else _run_predictor(args)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``diagnose`` command on ``subparsers``."""
    p = subparsers.add_parser(
        "diagnose",
        help="geometry diagnostics: toy systems (TARGET=toy) or a trained run's predictor (TARGET=RUN_DIR)",
        description=(
            "TARGET=toy: energy drift, reversibility, Liouville area, energy vs time, symplecticity defect and "
            "covariance stability of explicit Euler / symplectic Euler / leapfrog on the pendulum, harmonic "
            "oscillator and Duffing oscillator (docs/spec.md §I), and the sliced-projection view (App. D.4): "
            "the ensemble projected on random unit directions, with the drift of those 1-D distributions from "
            "t = 0 (sliced "
            "Wasserstein-1, log projected-variance ratios). TARGET=RUN_DIR (or a checkpoint file): float64 "
            "symplecticity defect, forward-backward reconstruction, log|det J|, singular-value pairing and "
            "long-rollout energy drift of the run's predictor on encoded test images, and the sliced-projection drift "
            "of the rolled-out ensemble of embeddings."
        ),
    )
    p.add_argument("target", metavar="TARGET", help="'toy' or a run directory / checkpoint file")
    p.add_argument(
        "--out",
        default=None,
        help="output directory (default: runs/diagnostics_toy for toy, RUN_DIR/diagnostics for a run)",
    )
    p.add_argument("--system", default="all", choices=["all", *TOY_SYSTEMS], help="toy system (toy only)")
    p.add_argument("--grid", type=int, default=151, help="heatmap grid side (toy only; default 151)")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="rollout length: T for toy (default 250), predictor applications for a run (default 1000)",
    )
    p.add_argument("--dt", type=float, default=0.1, help="integrator step (toy only; default 0.1)")
    p.add_argument("--blob", type=int, default=41, help="Liouville blob grid side (toy only; default 41)")
    p.add_argument("--ensemble", type=int, default=256, help="random initial conditions (toy only; default 256)")
    p.add_argument("--samples", type=int, default=200, help="states for the toy symplecticity test (default 200)")
    p.add_argument(
        "--directions",
        type=int,
        default=64,
        help="random unit directions of the sliced-projection diagnostic (toy and run; default 64)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of random initial conditions / probes (default 0)")
    p.add_argument("--device", default="cpu", help="device for the run-directory checks (default cpu)")
    p.add_argument("--num-states", type=int, default=256, help="test images encoded for a run (default 256)")
    p.add_argument(
        "--rollout-samples",
        type=int,
        default=64,
        help="encoded states rolled out (energy drift and the sliced view) for a run (default 64)",
    )
    p.add_argument("--probes", type=int, default=8, help="JVP probe pairs per state for a run (default 8)")
    p.add_argument(
        "--dense-samples",
        type=int,
        default=4,
        help="states with a dense Jacobian (log-det, singular values) for a run (default 4)",
    )
    p.set_defaults(func=_diagnose)
