"""Run-directory entry point of the learned-predictor checks and their JSON + figure report.

``hamjepa diagnose RUN_DIR`` loads the run (:func:`hamjepa.engine.checkpoint.load_run`), encodes a few
test images with the frozen encoder, runs :func:`~hamjepa.diagnostics.learned_predictor.diagnose_predictor`
on the objective's predictor and writes ``RUN_DIR/diagnostics/``::

    predictor_diagnostics.json   all numbers (see diagnose_predictor)
    symplecticity_defect.png     histogram of per-state defect estimates (+ reconstruction errors)
    singular_value_pairing.png   s_i vs 1/s_{D+1-i} and |log(s_i s_{D+1-i})| (dense check)
    rollout.png                  energy drift / norm growth over the long rollout
    sliced_projections.png       drift of random 1-D projections of the rolled-out ensemble (App. D.4)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from hamjepa.data.from_config import build_eval_data_from_config
from hamjepa.diagnostics.learned_predictor import diagnose_predictor
from hamjepa.engine.checkpoint import load_run
from hamjepa.objectives.base import Objective

__all__ = ["ObjectivePredictor", "encode_test_states", "run_dir_diagnostics", "write_predictor_report"]

EPS64 = float(np.finfo(np.float64).eps)


def _figure(n_cols: int, title: str) -> tuple[Figure, Any]:
    fig = Figure(figsize=(5.2 * n_cols, 4.2))
    axes = fig.subplots(1, n_cols, squeeze=False)[0]
    fig.subplots_adjust(left=0.08, right=0.97, bottom=0.14, top=0.8, wspace=0.35)
    fig.suptitle(title)
    return fig, axes


def write_predictor_report(result: dict[str, Any], out_dir: str | Path) -> dict[str, str]:
    """Write ``predictor_diagnostics.json`` and the figures for a :func:`diagnose_predictor` result.

    Returns:
        ``{name: path}`` of everything written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name, dim = result["predictor"], result["dim"]
    written: dict[str, str] = {}

    if result.get("symplecticity") or result.get("reconstruction"):
        written["symplecticity_defect"] = _plot_structure(result, out)

    dense = result.get("dense")
    if dense and dense.get("singular_value_pairing_max_abs_log") is not None:
        sv = np.asarray(dense["singular_values_first_sample"])
        fig, (ax_s, ax_p) = _figure(2, f"{name} (D={dim}): singular-value pairing (Lemma A.7), first state")
        idx = np.arange(1, sv.size + 1)
        ax_s.loglog(idx, sv, label="s_i (descending)")
        ax_s.loglog(idx, 1.0 / sv[::-1], ls="--", label="1 / s_{D+1−i}")
        ax_s.set_xlabel("index i")
        ax_s.set_ylabel("singular value")
        ax_s.set_title("symplectic ⇒ the two curves coincide")
        ax_s.legend(loc="best")
        pairing = np.abs(np.log(sv) + np.log(sv[::-1]))
        ax_p.semilogy(idx, np.maximum(pairing, 1e-17), color="C3", label="|log(s_i · s_{D+1−i})|")
        ax_p.set_xlabel("index i")
        ax_p.set_ylabel("pairing error")
        ax_p.set_title(f"log|det J| = {dense['log_abs_det'][0]:.3e}")
        ax_p.legend(loc="best")
        written["singular_value_pairing"] = str(out / "singular_value_pairing.png")
        fig.savefig(written["singular_value_pairing"], dpi=100)

    roll = result.get("rollout")
    if roll:
        fig, (ax_e, ax_n) = _figure(2, f"{name} (D={dim}): rollout of {roll['steps']} predictor applications")
        t = np.arange(1, roll["steps"] + 1)
        if roll["has_energy"]:
            curve = np.maximum(np.asarray(roll["energy_relative_drift_median_curve"]), 1e-17)
            ax_e.semilogy(t, curve, color="C0", label="median |H_t − H_0| / |H_0|")
            ax_e.legend(loc="best")
        else:
            ax_e.text(
                0.5,
                0.5,
                "no learned energy\n(non-Hamiltonian predictor)",
                ha="center",
                va="center",
                transform=ax_e.transAxes,
            )
        ax_e.set_xlabel("application t")
        ax_e.set_ylabel("relative energy drift")
        ax_e.set_title("learned-energy drift")
        ax_n.plot(t, roll["norm_ratio_median_curve"], color="C1", label="median |z_t| / |z_0|")
        ax_n.set_xlabel("application t")
        ax_n.set_ylabel("norm ratio")
        ax_n.set_title("state norm growth")
        ax_n.legend(loc="best")
        written["rollout"] = str(out / "rollout.png")
        fig.savefig(written["rollout"], dpi=100)
    if roll and roll.get("sliced"):
        written["sliced_projections"] = _plot_sliced(roll["sliced"], f"{name} (D={dim})", out)

    written["json"] = str(out / "predictor_diagnostics.json")
    Path(written["json"]).write_text(json.dumps(result, indent=2))
    return written


def _plot_structure(result: dict[str, Any], out: Path) -> str:
    """Histograms of the per-state symplecticity defects and reconstruction errors (those that were checked)."""
    fig, (ax_d, ax_r) = _figure(2, f"{result['predictor']} (D={result['dim']}): structural checks in float64")
    for ax, note in ((ax_d, result.get("symplecticity_note")), (ax_r, result.get("reconstruction_note"))):
        if note:
            ax.text(0.5, 0.5, note.replace(": ", ":\n", 1), ha="center", va="center", transform=ax.transAxes)
    if result.get("symplecticity"):
        defect = np.maximum(np.asarray(result["symplecticity"]["defect_frobenius_estimate"]), EPS64)
        ax_d.hist(np.log10(defect), bins=30, color="C2", label=f"{defect.size} states")
        ax_d.axvline(np.log10(EPS64), color="k", ls="--", lw=0.8, label="float64 eps")
        ax_d.legend(loc="best")
    ax_d.set_xlabel("log10 ||JᵀΩJ − Ω||_F (probe estimate)")
    ax_d.set_ylabel("count")
    ax_d.set_title("symplecticity defect")
    if result.get("reconstruction"):
        recon = np.maximum(np.asarray(result["reconstruction"]["per_state_abs_error"]), 1e-300)
        ax_r.hist(np.log10(np.maximum(recon, EPS64 * 1e-3)), bins=30, color="C4", label=f"{recon.size} states")
        ax_r.legend(loc="best")
    ax_r.set_xlabel("log10 |Ψ₋ₕ(Ψₕ(z)) − z|")
    ax_r.set_ylabel("count")
    ax_r.set_title("forward-backward reconstruction")
    path = str(out / "symplecticity_defect.png")
    fig.savefig(path, dpi=100)
    return path


def _plot_sliced(sliced: dict[str, Any], title: str, out: Path) -> str:
    curves = {k: np.asarray(v, dtype=float) for k, v in sliced["curves"].items()}  # None -> nan
    fig, (ax_w, ax_v) = _figure(2, f"{title}: {sliced['directions']} random 1-D projections of the rollout")
    t = np.arange(curves["sliced_w1_rel"].size)
    ax_w.plot(t, curves["sliced_w1_rel"], color="C0", label="mean over directions")
    ax_w.set_xlabel("application t")
    ax_w.set_ylabel("W1(t, 0) / std(0)")
    ax_w.set_title("sliced Wasserstein-1 from t = 0")
    ax_w.legend(loc="best")
    ax_v.plot(t, curves["log_var_ratio_median"], color="C1", label="median over directions")
    ax_v.fill_between(
        t, curves["log_var_ratio_min"], curves["log_var_ratio_max"], color="C1", alpha=0.2, label="min–max"
    )
    ax_v.axhline(0.0, color="k", lw=0.6)
    ax_v.set_xlabel("application t")
    ax_v.set_ylabel("log Var(aᵀz_t) / Var(aᵀz_0)")
    ax_v.set_title("projected variance")
    ax_v.legend(loc="best")
    path = str(out / "sliced_projections.png")
    fig.savefig(path, dpi=100)
    return path


class ObjectivePredictor(nn.Module):
    """An objective's :meth:`~hamjepa.objectives.base.Objective.predict` as a module ``(z, direction) -> z_hat``,
    the call shape :func:`diagnose_predictor` takes (HamJEPA's predictor, BiJEPA's forward / backward pair)."""

    def __init__(self, objective: Objective) -> None:
        super().__init__()
        self.objective = objective

    def forward(self, z: Tensor, direction: int = 1) -> Tensor:
        return self.objective.predict(z, direction)

    @property
    def energy(self) -> Callable[[Tensor], Tensor] | None:
        """The learned energy ``H(z) -> [B]`` of the objective's predictor, None when it has none (the rollout
        then reports no energy drift)."""
        found = [getattr(m, "energy", None) for m in self.objective.predictors().values()]
        return found[0] if len(found) == 1 and callable(found[0]) else None

    @torch.no_grad()
    def reversible(self, z: Tensor) -> bool:
        """Whether the objective predicts ``direction=-1`` (tried on ``z [1, D]``)."""
        try:
            self.objective.predict(z, -1)
        except (ValueError, NotImplementedError):
            return False
        return True


@torch.no_grad()
def encode_test_states(encoder: nn.Module, eval_data: Any, num_states: int, device: torch.device) -> Tensor:
    """Encode the first ``num_states`` test images of ``eval_data`` (:class:`hamjepa.data.EvalData`).

    Images are ``uint8 [b, 3, h, w]``, normalised as ``(x / 255 - mean) / std``. Returns ``[N, D]`` float32 (CPU).
    """
    mean = torch.tensor(eval_data.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std = torch.tensor(eval_data.std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    chunks: list[Tensor] = []
    count = 0
    for images, _ in eval_data.test():
        x = (images.to(device).contiguous().float() / 255.0 - mean) / std  # NCHW on the device
        chunks.append(encoder(x).float().cpu())
        count += x.shape[0]
        if count >= num_states:
            break
    if not chunks:
        raise ValueError("the run's test split yielded no images to encode")
    return torch.cat(chunks)[:num_states]


def run_dir_diagnostics(
    run_dir: str | Path,
    *,
    out_dir: str | Path | None = None,
    num_states: int = 256,
    rollout_steps: int = 1000,
    device: str = "cpu",
    **kwargs: Any,
) -> dict[str, Any]:
    """Diagnose the predictor of a trained run; writes the report to ``out_dir`` (default ``RUN_DIR/diagnostics``).

    Args:
        run_dir: a run directory or checkpoint file accepted by ``load_run``.
        num_states: test images to encode.
        rollout_steps: length of the long rollout.
        device: where the encoder and the checks run.
        **kwargs: forwarded to :func:`diagnose_predictor` (``probes``, ``dense_samples``, ...).

    Returns:
        The :func:`diagnose_predictor` result plus ``checkpoint`` and ``files``.
    """
    if num_states < 1:
        raise ValueError(f"num_states must be >= 1, got {num_states}")
    dev = torch.device(device)
    run = load_run(run_dir, map_location=dev)
    objective = run.objective
    if not objective.predictors():
        raise ValueError(
            f"the objective of {run.checkpoint_path} ({type(objective).__name__}) has no predictor; "
            "`hamjepa diagnose RUN_DIR` needs a run whose objective predicts (use `hamjepa diagnose toy` otherwise)"
        )
    encoder = run.encoder.to(dev).eval()
    states = encode_test_states(encoder, build_eval_data_from_config(run.config), num_states, dev).to(dev)
    predictor = ObjectivePredictor(objective.to(dev))
    kwargs.setdefault("symplectic", bool(encoder.split_qp) and states.shape[1] % 2 == 0)
    kwargs.setdefault("reversible", predictor.reversible(states[:1]))
    result = diagnose_predictor(predictor, states, rollout_steps=rollout_steps, **kwargs)
    found = objective.predictors()
    only = next(iter(found.values())) if len(found) == 1 else None
    result["predictor"] = (
        type(only).__name__ if only is not None else f"{type(objective).__name__} ({', '.join(found)})"
    )
    result["checkpoint"] = str(run.checkpoint_path)
    target = Path(out_dir) if out_dir is not None else Path(run_dir) / "diagnostics"
    if Path(run_dir).is_file() and out_dir is None:
        target = Path(run_dir).parent.parent / "diagnostics"  # RUN_DIR/checkpoints/last.pt -> RUN_DIR
    result["files"] = write_predictor_report(result, target)
    return result
