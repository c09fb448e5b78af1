"""Structural checks of learned predictors: symplectic HamiltonianPredictor vs MLPPredictor."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from hamjepa.diagnostics.learned_predictor import dense_jacobian, diagnose_predictor, jvp
from hamjepa.diagnostics.learned_report import run_dir_diagnostics, write_predictor_report
from hamjepa.dynamics import HamiltonianPredictor, MLPPredictor
from hamjepa.objectives import HamJEPAObjective, LeJEPAObjective

DIM = 16


def _hamiltonian() -> HamiltonianPredictor:
    torch.manual_seed(0)
    return HamiltonianPredictor(DIM, dt=0.1, steps=2, residual_scale=0.5, hidden_dim=32, depth=2)


def _mlp() -> MLPPredictor:
    torch.manual_seed(0)
    return MLPPredictor(DIM, dt=0.1, steps=2, hidden_dim=32, depth=2)


def _states(n: int = 12) -> torch.Tensor:
    return torch.randn(n, DIM, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def ham_result() -> dict:
    return diagnose_predictor(
        _hamiltonian(), _states(), probes=4, dense_samples=2, rollout_steps=100, rollout_samples=4
    )


@pytest.fixture(scope="module")
def mlp_result() -> dict:
    return diagnose_predictor(_mlp(), _states(), probes=4, dense_samples=2, rollout_steps=100, rollout_samples=4)


def test_residual_mlp_is_active() -> None:
    pred = _hamiltonian().double()
    z = _states(4).double()
    pred.residual_scale = 0.0
    base = pred(z, 1)
    pred.residual_scale = 0.5
    assert (pred(z, 1) - base).abs().max() > 1e-4  # the learned potential changes the map


def test_hamiltonian_predictor_is_symplectic_and_invertible(ham_result: dict) -> None:
    assert ham_result["predictor"] == "HamiltonianPredictor" and ham_result["dim"] == DIM
    assert ham_result["symplecticity"]["defect"]["max"] < 1e-10
    assert ham_result["reconstruction"]["abs_error"]["max"] < 1e-12
    dense = ham_result["dense"]
    assert max(dense["defect_frobenius"]) < 1e-10
    assert max(abs(v) for v in dense["log_abs_det"]) < 1e-10
    assert max(dense["singular_value_pairing_max_abs_log"]) < 1e-10
    roll = ham_result["rollout"]
    assert roll["has_energy"]
    assert roll["energy_relative_drift_max_over_time"]["max"] < 1e-2  # bounded O(h^2) shadow-energy error


def test_mlp_predictor_is_not(mlp_result: dict) -> None:
    assert mlp_result["symplecticity"]["defect"]["median"] > 1e-3
    assert mlp_result["reconstruction"]["abs_error"]["median"] > 1e-6
    dense = mlp_result["dense"]
    assert min(abs(v) for v in dense["log_abs_det"]) > 1e-6
    assert max(dense["singular_value_pairing_max_abs_log"]) > 1e-4
    assert not mlp_result["rollout"]["has_energy"]


def test_jvp_and_dense_jacobian_match_autograd() -> None:
    pred = _hamiltonian().double()
    z = _states(2).double()
    reference = torch.autograd.functional.jacobian(lambda x: pred(x.unsqueeze(0), 1).squeeze(0), z[0])
    torch.testing.assert_close(dense_jacobian(pred, z[:1])[0], reference, atol=1e-12, rtol=0)
    u = torch.randn_like(z)
    torch.testing.assert_close(jvp(pred, z[:1], u[:1])[0], reference @ u[0], atol=1e-12, rtol=0)


class _Linear(nn.Module):
    def __init__(self, mat: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mat", mat)

    def forward(self, z: torch.Tensor, direction: int = 1) -> torch.Tensor:
        return z @ (self.mat if direction == 1 else torch.linalg.inv(self.mat)).T


def test_probe_estimate_is_frobenius_norm() -> None:
    gen = torch.Generator().manual_seed(3)
    mat = torch.eye(DIM, dtype=torch.float64) + 0.3 * torch.randn(DIM, DIM, generator=gen, dtype=torch.float64)
    omega = torch.zeros(DIM, DIM, dtype=torch.float64)
    omega[: DIM // 2, DIM // 2 :] = torch.eye(DIM // 2)
    omega[DIM // 2 :, : DIM // 2] = -torch.eye(DIM // 2)
    exact = float(torch.linalg.matrix_norm(mat.T @ omega @ mat - omega))
    res = diagnose_predictor(_Linear(mat), torch.zeros(1, DIM), probes=3000, dense_samples=1, rollout_steps=0)
    # E[(u^T A v)^2] = ||A||_F^2; with 3000 probes the estimate's relative s.e. is below ~3 %.
    assert res["symplecticity"]["defect"]["median"] == pytest.approx(exact, rel=0.1)
    assert res["dense"]["defect_frobenius"][0] == pytest.approx(exact, rel=1e-10)
    assert res["dense"]["log_abs_det"][0] == pytest.approx(float(torch.linalg.slogdet(mat)[1]), abs=1e-10)
    assert res["rollout"] is None and res["reconstruction"]["abs_error"]["max"] < 1e-12


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="states"):
        diagnose_predictor(_mlp(), torch.zeros(3, DIM + 1))
    with pytest.raises(ValueError, match="probes"):
        diagnose_predictor(_mlp(), torch.zeros(3, DIM), probes=0)


def test_report_and_run_dir_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hamjepa.diagnostics.learned_report as learned_report

    encoder = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, DIM))
    encoder.split_qp = True  # z = [q; p]: the symplecticity checks apply
    run = SimpleNamespace(
        config={"name": "fake"},
        encoder=encoder,
        objective=HamJEPAObjective(predictor=_hamiltonian()),
        checkpoint_path=tmp_path / "checkpoints" / "last.pt",
    )
    images = torch.randint(0, 256, (5, 3, 4, 4), dtype=torch.uint8)
    eval_data = SimpleNamespace(
        test=lambda: iter([(images, torch.zeros(5)), (images, torch.zeros(5))]),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
    )
    monkeypatch.setattr(learned_report, "load_run", lambda path, map_location="cpu": run)
    monkeypatch.setattr(learned_report, "build_eval_data_from_config", lambda config: eval_data)
    result = run_dir_diagnostics(tmp_path, num_states=7, rollout_steps=5, probes=2, dense_samples=1)
    assert result["num_states"] == 7 and result["symplecticity"]["defect"]["max"] < 1e-10
    out = tmp_path / "diagnostics"
    for name in ("predictor_diagnostics.json", "symplecticity_defect.png", "singular_value_pairing.png", "rollout.png"):
        assert (out / name).is_file(), name
    assert json.loads((out / "predictor_diagnostics.json").read_text())["dim"] == DIM

    run.objective = LeJEPAObjective()  # no predictor
    with pytest.raises(ValueError, match="has no predictor"):
        run_dir_diagnostics(tmp_path, num_states=2)
    assert math.isfinite(result["rollout"]["norm_ratio_final"]["median"])
    written = write_predictor_report({**result, "dense": None, "rollout": None}, tmp_path / "bare")
    assert set(written) == {"symplecticity_defect", "json"}


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny tensors: intra-op threads only add synchronisation cost on the shared 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _forward_mode_jvp(pred: nn.Module, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The former implementation (forward-mode AD), kept here as the reference."""
    import warnings

    import torch.autograd.forward_ad as fwAD

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch's own jit.script use inside forward-mode AD
        with torch.enable_grad(), fwAD.dual_level():
            out = pred(fwAD.make_dual(z.detach().requires_grad_(True), u), 1)
            return fwAD.unpack_dual(out).tangent.detach()


@pytest.mark.parametrize("make", [_hamiltonian, _mlp])
def test_double_backward_jvp_equals_forward_mode_in_float64(make) -> None:
    pred = make().double()
    z = _states(3).double()
    u = torch.randn_like(z)
    torch.testing.assert_close(jvp(pred, z, u), _forward_mode_jvp(pred, z, u), atol=1e-12, rtol=0)


def test_jvp_emits_no_deprecation_warning_in_a_fresh_process() -> None:
    """Forward-mode AD loaded TorchScript decompositions (``torch.jit.script`` is deprecated) on first use."""
    import os
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from hamjepa.dynamics import HamiltonianPredictor\n"
        "from hamjepa.diagnostics.learned_predictor import jvp\n"
        "p = HamiltonianPredictor(4, dt=0.1, steps=1, residual_scale=0.5, hidden_dim=8, depth=1).double()\n"
        "z = torch.randn(2, 4, dtype=torch.float64)\n"
        "jvp(p, z, torch.ones_like(z))\n"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src}
    proc = subprocess.run(
        [sys.executable, "-W", "error::FutureWarning", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
