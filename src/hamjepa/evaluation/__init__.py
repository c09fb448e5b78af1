"""Frozen-feature evaluation (docs/spec.md §H): features, cosine kNN, linear probe, geometry, plots and reports.

Entry point: :func:`evaluate` (features -> kNN -> probe -> geometry -> ``metrics.json`` / plots /
``report.md``); the metrics.json schema is documented in :mod:`hamjepa.evaluation.report` and
docs/EVALUATION.md. Matplotlib is imported only when figures are written.
"""

from hamjepa.models.phase_space import readouts

from .callbacks import EvalAtEndCallback, KNNMonitorCallback, callbacks_from_config
from .compare import compare_runs
from .features import EvalDataLike, extract_features
from .geometry import (
    Geometry,
    Spectrum,
    Summary,
    covariance_spectrum,
    effective_rank,
    feature_geometry,
    participation_ratio,
    random_pair_cosines,
)
from .knn import DEFAULT_K_VALUES, KNNResult, knn_classify, knn_neighbours
from .linear_probe import ProbeConfig, ProbeResult, cosine_lr, train_linear_probes
from .monitor import OnlineKNNMonitor
from .pipeline import EvalOptions, evaluate

__all__ = [
    "DEFAULT_K_VALUES",
    "EvalAtEndCallback",
    "EvalDataLike",
    "EvalOptions",
    "Geometry",
    "KNNMonitorCallback",
    "KNNResult",
    "OnlineKNNMonitor",
    "ProbeConfig",
    "ProbeResult",
    "Spectrum",
    "Summary",
    "callbacks_from_config",
    "compare_runs",
    "cosine_lr",
    "covariance_spectrum",
    "effective_rank",
    "evaluate",
    "extract_features",
    "feature_geometry",
    "knn_classify",
    "knn_neighbours",
    "participation_ratio",
    "random_pair_cosines",
    "readouts",
    "train_linear_probes",
]
