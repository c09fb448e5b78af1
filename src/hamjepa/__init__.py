"""hamjepa: joint-embedding predictive learning with Hamiltonian latent dynamics.

Subpackages:

- :mod:`hamjepa.models` -- the ResNet-18 token encoder and the phase-space split ``z = [q; p]``.
- :mod:`hamjepa.dynamics` -- Hamiltonians, symplectic integrators and predictors.
- :mod:`hamjepa.objectives` -- HamJEPA, LeJEPA + SIGReg, MLP-HJEPA, BiJEPA and the regularisers.
- :mod:`hamjepa.data` -- data sources, GPU multi-view augmentation, device-resident loading.
- :mod:`hamjepa.engine` -- trainer, schedules, checkpoints, distributed helpers.
- :mod:`hamjepa.evaluation` -- frozen-feature kNN, linear probe, geometry, plots and reports.
- :mod:`hamjepa.diagnostics` -- symplecticity, reversibility, volume and energy checks.
- :mod:`hamjepa.theory` -- numerical checks of the paper's Section 3 / Appendix A results.
- :mod:`hamjepa.sequences` -- the BiJEPA dynamics benchmark (sine, Lorenz, image halves).
"""

__version__ = "0.1.0"
