"""J.9 symplectic facts: leapfrog is symplectic, volume-preserving, exactly invertible, with reciprocal
singular values; explicit Euler is not."""

from __future__ import annotations

import torch
from torch import Tensor

from hamjepa.diagnostics.toy_metrics import canonical_omega, step_jacobians
from hamjepa.diagnostics.toy_systems import INTEGRATORS, ToySystem, apply_step
from hamjepa.theory.context import CheckRow, TheoryContext, row


def _random_separable_system(ctx: TheoryContext, d: int) -> ToySystem:
    a = ctx.spd(d)
    w = ctx.randn(d, d)

    def potential(q: Tensor) -> Tensor:
        return 0.5 * torch.einsum("ni,ij,nj->n", q, a, q) + torch.cos(q @ w.T).sum(-1)

    def grad_potential(q: Tensor) -> Tensor:
        return q @ a - torch.sin(q @ w.T) @ w

    return ToySystem("random", "random separable", potential, grad_potential, (-1.0, 1.0), (-1.0, 1.0))


def check_symplectic_facts(ctx: TheoryContext) -> list[CheckRow]:
    """J.9: leapfrog is symplectic, det 1, exactly invertible by -h, with reciprocal singular values."""
    d, h, n_steps = 3, 0.1, 4
    system = _random_separable_system(ctx, d)

    leapfrog, explicit_euler = INTEGRATORS["leapfrog"], INTEGRATORS["explicit_euler"]

    def rollout_step(sys_: ToySystem, q: Tensor, p: Tensor, step: float, steps: int = 1) -> tuple[Tensor, Tensor]:
        return leapfrog(sys_, q, p, step, steps * n_steps)  # one map step = n_steps leapfrog steps

    x = ctx.randn(64, 2 * d)
    jac = step_jacobians(system, rollout_step, h, x)
    omega = canonical_omega(2 * d)
    defect = float(torch.linalg.matrix_norm(jac.transpose(1, 2) @ omega @ jac - omega).max())
    det_err = float((torch.linalg.det(jac) - 1).abs().max())
    back = apply_step(rollout_step, system, apply_step(rollout_step, system, x, h), -h)
    inv_err = float((back - x).abs().max())
    sv = torch.linalg.svdvals(jac)
    pairing = float((torch.log(sv) + torch.log(sv.flip(-1))).abs().max())
    euler_jac = step_jacobians(system, explicit_euler, h, x)
    euler_defect = float(torch.linalg.matrix_norm(euler_jac.transpose(1, 2) @ omega @ euler_jac - omega).min())
    return [
        row("Thm A.4", f"leapfrog ({n_steps} steps, d={d}) max ||JᵀΩJ − Ω||_F", 0.0, defect, "< 1e-12", defect < 1e-12),
        row("Thm A.4", "leapfrog max |det J − 1|", 0.0, det_err, "< 1e-12", det_err < 1e-12),
        row("Cor A.5", "Ψ₋ₕᴺ ∘ Ψₕᴺ = id (max abs error)", 0.0, inv_err, "< 1e-12", inv_err < 1e-12),
        row("Lemma A.7", "sorted singular values: max |log(s_i s_{2d+1−i})|", 0.0, pairing, "< 1e-10", pairing < 1e-10),
        row(
            "J.9",
            "explicit Euler is not symplectic: min defect over states",
            None,
            euler_defect,
            "> 1e-4",
            euler_defect > 1e-4,
        ),
    ]
