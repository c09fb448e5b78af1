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
- :mod:`hamjepa.inference` -- use a trained model: :func:`load`, ``embed``, ``predict``, export, transfer eval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hamjepa.inference.model import HamjepaModel

__version__ = "0.1.0"


def load(path: Any, *, device: Any = "auto") -> HamjepaModel:
    """Load a trained model for inference (imports torch on first use; ``import hamjepa`` stays light).

    Args:
        path: a run folder, a checkpoint ``.pt`` file, or a folder written by ``hamjepa export``.
        device: ``"auto"`` (CUDA, then MPS, then CPU) or any torch device.

    Returns:
        :class:`hamjepa.inference.HamjepaModel`: ``embed(images, readout=...)``, ``predict(z, direction)``,
        ``encoder``, ``preprocess``, ``metrics``.
    """
    from hamjepa.inference.model import load as _load

    return _load(path, device=device)
