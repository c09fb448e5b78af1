"""Structural checks of a learned latent predictor at its real dimension (``hamjepa diagnose RUN_DIR``).

:func:`diagnose_predictor` works for any module ``predictor(z [B, D], direction=+1|-1) -> [B, D]``
(:class:`~hamjepa.dynamics.HamiltonianPredictor`, :class:`~hamjepa.dynamics.MLPPredictor`). Everything runs
on a float64 deep copy of the predictor, so a symplectic map shows round-off-level defects.

Checks (``Omega = [[0, I], [-I, 0]]``, ``J`` = Jacobian of the forward map at a state):

* **symplecticity defect by probes**: for Gaussian probes ``u, v``,
  ``u^T (J^T Omega J - Omega) v = (Ju)^T Omega (Jv) - u^T Omega v``; since ``E[(u^T A v)^2] = ||A||_F^2`` for
  independent standard-normal probes, the root-mean-square over probes estimates ``||J^T Omega J - Omega||_F``
  per state. It is reported raw and relative to ``||Omega||_F = sqrt(D)``. JVPs use the double-backward
  trick (``torch.autograd.functional.jvp``, plain eager reverse mode; ``torch.func.jvp`` cannot trace the
  predictors' internal ``torch.autograd.grad`` force computation).
* **forward-backward reconstruction**: ``|Psi_{-h}(Psi_h(z)) - z|`` (absolute and relative to ``|z|``).

The symplecticity entries need a phase space ``z = [q; p]`` and the reconstruction a backward map: with
``symplectic=False`` / ``reversible=False`` (a BiJEPA run: no phase split; no backward predictor when
``alpha = 1``) they are None with a note, and the remaining checks (volume change, rollout) still run.
* **dense Jacobian on a few states** (``dense_samples``, only when ``D <= dense_max_dim``): the exact
  defect ``||J^T Omega J - Omega||_F``, the log-volume change ``log|det J|`` by ``slogdet``, and the
  reciprocal pairing of singular values (Lemma A.7: sorted ``s_i * s_{D+1-i} = 1`` for symplectic ``J``),
  reported as ``max_i |log(s_i s_{D+1-i})|``. The dense Jacobian costs one batched JVP of ``D`` tangents
  per state; with ``D = 2048`` that is cheap, so no stochastic log-det estimator is used. Above
  ``dense_max_dim`` these entries are ``None`` with a note.
* **long-rollout energy drift** of the learned ``H`` (only for predictors with an ``energy(z)`` method):
  ``|H(z_t) - H(z_0)| / (|H(z_0)| + 1e-12)`` over ``rollout_steps`` applications of the predictor; the norm
  growth ``|z_t| / |z_0|`` is reported for every predictor.
* **sliced projections of the rollout** (App. D.4, :mod:`hamjepa.diagnostics.sliced`): the rollout ensemble is
  projected on ``sliced_directions`` random unit directions after every application; reported are the drift of
  those 1-D distributions from ``t = 0`` (sliced Wasserstein-1 in units of the initial projected spread) and
  the log ratios of projected variances (median and spread over directions).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hamjepa.diagnostics.sliced import random_unit_directions, sliced_drift

__all__ = ["apply_omega", "dense_jacobian", "diagnose_predictor", "jvp"]


def apply_omega(x: Tensor) -> Tensor:
    """``Omega x`` for ``x [..., 2d]``: ``[q; p] -> [p; -q]``."""
    d = x.shape[-1] // 2
    return torch.cat([x[..., d:], -x[..., :d]], dim=-1)


def jvp(predictor: nn.Module, z: Tensor, tangent: Tensor, direction: int = 1) -> Tensor:
    """Jacobian-vector products ``J(z_b) tangent_b`` of ``predictor(., direction)``, in plain eager autograd.

    ``z, tangent: [B, D] -> [B, D]`` (detached). Computed by ``torch.autograd.functional.jvp`` (the
    double-backward trick: reverse mode twice), which differentiates through the predictors' internal
    ``torch.autograd.grad`` force computation. Forward-mode AD would give the same numbers but loads
    TorchScript-compiled decompositions (``torch.jit.script``, deprecated) on first use.
    """
    if z.shape != tangent.shape:
        raise ValueError(f"jvp: z {tuple(z.shape)} and tangent {tuple(tangent.shape)} must have the same shape")
    _, result = torch.autograd.functional.jvp(lambda x: predictor(x, direction), z.detach(), tangent.detach())
    return result.detach()


def _chunked_jvp(predictor: nn.Module, z: Tensor, tangent: Tensor, chunk: int) -> Tensor:
    return torch.cat([jvp(predictor, z[i : i + chunk], tangent[i : i + chunk]) for i in range(0, z.shape[0], chunk)])


def dense_jacobian(predictor: nn.Module, z: Tensor, *, chunk: int = 4096) -> Tensor:
    """Dense forward-map Jacobians ``[n, D, D]`` at states ``z [n, D]`` (``J[k, i, j] = d out_i / d z_j``).

    Each state is replicated ``D`` times with the identity as tangents (one batched JVP, chunked).
    """
    n, dim = z.shape
    eye = torch.eye(dim, dtype=z.dtype, device=z.device)
    jacs = []
    for k in range(n):
        cols = _chunked_jvp(predictor, z[k].expand(dim, dim).contiguous(), eye, chunk)  # row j = J e_j
        jacs.append(cols.T)
    return torch.stack(jacs)


def _stats(values: Tensor | np.ndarray) -> dict[str, float | None]:
    arr = np.asarray(values.detach().cpu().numpy() if isinstance(values, Tensor) else values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return {"median": None, "mean": None, "max": None}
    return {"median": float(np.median(arr)), "mean": float(arr.mean()), "max": float(arr.max())}


def _probe_defects(predictor: nn.Module, z: Tensor, probes: int, gen: torch.Generator, chunk: int) -> Tensor:
    n = z.shape[0]
    rep = z.repeat_interleave(probes, dim=0)
    u = torch.randn(rep.shape, generator=gen, dtype=z.dtype).to(z.device)
    v = torch.randn(rep.shape, generator=gen, dtype=z.dtype).to(z.device)
    ju, jv = _chunked_jvp(predictor, rep, u, chunk), _chunked_jvp(predictor, rep, v, chunk)
    bilinear = (ju * apply_omega(jv)).sum(-1) - (u * apply_omega(v)).sum(-1)
    return bilinear.reshape(n, probes).pow(2).mean(-1).sqrt()


def _dense_checks(predictor: nn.Module, z: Tensor, chunk: int, *, symplectic: bool) -> dict[str, Any]:
    jac = dense_jacobian(predictor, z, chunk=chunk)
    sign, logabsdet = torch.linalg.slogdet(jac)
    sv = torch.linalg.svdvals(jac)  # descending
    result: dict[str, Any] = {
        "samples": int(z.shape[0]),
        "defect_frobenius": None,
        "log_abs_det": logabsdet.cpu().tolist(),
        "det_sign": sign.cpu().tolist(),
        "singular_value_pairing_max_abs_log": None,
        "singular_values_first_sample": sv[0].cpu().tolist(),
    }
    if symplectic:
        dim = z.shape[1]
        omega = apply_omega(torch.eye(dim, dtype=z.dtype, device=z.device)).T  # columns Omega e_j
        defect = torch.linalg.matrix_norm(jac.transpose(1, 2) @ omega @ jac - omega)
        pairing = (torch.log(sv) + torch.log(sv.flip(-1))).abs()
        result["defect_frobenius"] = defect.cpu().tolist()
        result["singular_value_pairing_max_abs_log"] = pairing.max(-1).values.cpu().tolist()
    return result


@torch.no_grad()
def _rollout(predictor: nn.Module, z: Tensor, steps: int, directions: Tensor) -> dict[str, Any]:
    energy_fn = getattr(predictor, "energy", None)
    e0 = energy_fn(z) if callable(energy_fn) else None
    norm0 = z.norm(dim=-1)
    energy_drift, norm_ratio = [], []
    x = z
    frames = [z @ directions.T]  # the projections are all the sliced view needs: [n, M] per step
    for _ in range(steps):
        x = predictor(x, 1)
        frames.append(x @ directions.T)
        norm_ratio.append(x.norm(dim=-1) / norm0)
        if e0 is not None:
            energy_drift.append((energy_fn(x) - e0).abs() / (e0.abs() + 1e-12))
    norm_curve = torch.stack(norm_ratio)  # [steps, n]
    result: dict[str, Any] = {
        "steps": steps,
        "norm_ratio_final": _stats(norm_curve[-1]),
        "norm_ratio_median_curve": norm_curve.median(dim=1).values.cpu().tolist(),
        "has_energy": e0 is not None,
        "sliced": None,
    }
    if z.shape[0] >= 2:
        eye = torch.eye(directions.shape[0], dtype=z.dtype, device=z.device)
        drift = sliced_drift(torch.stack(frames), eye)  # already projected: identity "directions"
        result["sliced"] = {**drift.summary(), "curves": drift.curves()}
    if e0 is not None:
        drift = torch.stack(energy_drift)
        result["energy_relative_drift_final"] = _stats(drift[-1])
        result["energy_relative_drift_max_over_time"] = _stats(drift.max(dim=0).values)
        result["energy_relative_drift_median_curve"] = drift.median(dim=1).values.cpu().tolist()
    return result


def diagnose_predictor(
    predictor: nn.Module,
    states: Tensor,
    *,
    probes: int = 8,
    dense_samples: int = 4,
    dense_max_dim: int = 4096,
    rollout_steps: int = 1000,
    rollout_samples: int = 64,
    sliced_directions: int = 64,
    seed: int = 0,
    chunk: int = 4096,
    symplectic: bool = True,
    reversible: bool = True,
) -> dict[str, Any]:
    """Run the structural checks on ``predictor`` at ``states [N, D]`` (see the module docstring).

    Args:
        predictor: ``forward(z [B, D], direction) -> [B, D]``; not modified (a float64 copy is used).
        states: representative inputs, e.g. encoded test images ``[N, D]`` (``D`` even).
        probes: probe pairs per state for the symplecticity estimate.
        dense_samples: states (the first ones) for the dense-Jacobian checks; 0 disables them.
        dense_max_dim: largest ``D`` for which dense Jacobians are formed.
        rollout_steps: applications of the predictor in the long rollout; 0 disables it.
        rollout_samples: states (the first ones) used in the rollout (and its sliced view; needs >= 2).
        sliced_directions: random unit directions of the sliced-projection view of the rollout.
        seed: seed of the probe vectors and of the sliced directions.
        chunk: batch size of the JVP calls (memory knob).
        symplectic: run the checks that need a phase space ``z = [q; p]`` (the probe symplecticity defect, the
            dense defect and singular-value pairing); False (e.g. a BiJEPA run, whose ``z`` is not split) sets
            them to None with a note and lets ``D`` be odd. The dense volume change ``log|det J|`` is kept.
        reversible: run the forward-backward reconstruction (the predictor maps ``direction=-1``); False sets
            ``reconstruction`` to None with a note.

    Returns:
        A JSON-serialisable dict with ``dim``, ``num_states``, ``predictor`` (class name),
        ``symplecticity`` (per-state probe estimates + stats), ``reconstruction``, ``dense`` (or ``None``)
        and ``rollout`` (or ``None``).
    """
    if states.ndim != 2 or states.shape[0] < 1 or (symplectic and states.shape[1] % 2):
        need = "even D" if symplectic else "D >= 1"
        raise ValueError(f"states must be [N, D] with N >= 1 and {need}, got shape {tuple(states.shape)}")
    for name, value in (("probes", probes), ("chunk", chunk)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    for name, value in (("dense_samples", dense_samples), ("rollout_steps", rollout_steps)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if rollout_steps and rollout_samples < 1:
        raise ValueError(f"rollout_samples must be >= 1 when rollout_steps > 0, got {rollout_samples}")
    model = copy.deepcopy(predictor).to(torch.float64).eval()
    for param in model.parameters():
        param.requires_grad_(False)
    z = states.detach().to(torch.float64)
    n, dim = z.shape
    gen = torch.Generator().manual_seed(seed)

    result: dict[str, Any] = {
        "predictor": type(predictor).__name__,
        "dim": dim,
        "num_states": n,
        "symplecticity": None,
        "reconstruction": None,
        "dense": None,
        "rollout": None,
    }
    if symplectic:
        defect = _probe_defects(model, z, probes, gen, chunk)
        result["symplecticity"] = {
            "method": f"JVP probes ({probes} Gaussian pairs per state, double-backward), float64",
            "defect_frobenius_estimate": defect.cpu().tolist(),
            "defect": _stats(defect),
            "relative_defect": _stats(defect / math.sqrt(dim)),
        }
    else:
        result["symplecticity_note"] = "skipped: the states are not a phase space z = [q; p]"
    if reversible:
        with torch.no_grad():
            back = model(model(z, 1), -1)
        recon = (back - z).norm(dim=-1)
        result["reconstruction"] = {
            "abs_error": _stats(recon),
            "relative_error": _stats(recon / z.norm(dim=-1).clamp_min(1e-300)),
            "per_state_abs_error": recon.cpu().tolist(),
        }
    else:
        result["reconstruction_note"] = "skipped: the predictor has no backward direction"
    if dense_samples and dim <= dense_max_dim:
        result["dense"] = _dense_checks(model, z[:dense_samples], chunk, symplectic=symplectic)
    elif dense_samples:
        result["dense_note"] = f"skipped: D={dim} > dense_max_dim={dense_max_dim}"
    if rollout_steps:
        directions = random_unit_directions(dim, sliced_directions, seed).to(z.device)
        result["rollout"] = _rollout(model, z[:rollout_samples], rollout_steps, directions)
    return result
