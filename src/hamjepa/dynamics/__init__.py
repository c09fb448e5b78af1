"""Hamiltonians, integrators and latent predictors (spec sections C and F)."""

from hamjepa.dynamics.hamiltonians import (
    FORCES,
    Hamiltonian,
    LearnableHamiltonian,
    QuadraticHamiltonian,
    SeparableHamiltonian,
    autograd_partials,
)
from hamjepa.dynamics.integrators import (
    INTEGRATORS,
    explicit_euler,
    get_integrator,
    integrator_for,
    leapfrog,
    separable_leapfrog,
    symplectic_euler,
    vector_field,
)
from hamjepa.dynamics.mlp import ACTIVATIONS, analytic_force, build_mlp
from hamjepa.dynamics.predictors import HAMILTONIANS, HamiltonianPredictor, MLPPredictor

__all__ = [
    "ACTIVATIONS",
    "FORCES",
    "HAMILTONIANS",
    "INTEGRATORS",
    "Hamiltonian",
    "HamiltonianPredictor",
    "LearnableHamiltonian",
    "MLPPredictor",
    "QuadraticHamiltonian",
    "SeparableHamiltonian",
    "analytic_force",
    "autograd_partials",
    "build_mlp",
    "explicit_euler",
    "get_integrator",
    "integrator_for",
    "leapfrog",
    "separable_leapfrog",
    "symplectic_euler",
    "vector_field",
]
