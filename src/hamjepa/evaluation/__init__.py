"""Frozen-feature evaluation (spec H): features, cosine kNN, linear probe, geometry, plots and reports.

Two protocols: the paper's token protocol (spec H, on the encoder output) and the field's standard
protocol (:mod:`hamjepa.evaluation.standard`, on the pooled backbone feature), never mixed in one column.

Entry point: :func:`evaluate` (features -> kNN -> probe -> geometry -> ``metrics.json`` / plots /
``report.md``); the metrics.json schema is documented in :mod:`hamjepa.evaluation.report` and
docs/EVALUATION.md. Matplotlib is imported only when figures are written.
"""

from .callbacks import EvalAtEndCallback, KNNMonitorCallback, callbacks_from_config
from .compare import compare_runs
from .features import EvalDataLike, encode_with_pooled, extract_features, extract_features_with_pooled, readouts
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
from .pipeline import PROTOCOLS, EvalOptions, evaluate
from .standard import (
    STANDARD_K_VALUES,
    STANDARD_KNN_TEMPERATURE,
    STANDARD_READOUT,
    SGDProbeConfig,
    SGDProbeResult,
    train_sgd_linear_probe,
)

__all__ = [
    "DEFAULT_K_VALUES",
    "PROTOCOLS",
    "STANDARD_KNN_TEMPERATURE",
    "STANDARD_K_VALUES",
    "STANDARD_READOUT",
    "EvalAtEndCallback",
    "EvalDataLike",
    "EvalOptions",
    "Geometry",
    "KNNMonitorCallback",
    "KNNResult",
    "OnlineKNNMonitor",
    "ProbeConfig",
    "ProbeResult",
    "SGDProbeConfig",
    "SGDProbeResult",
    "Spectrum",
    "Summary",
    "callbacks_from_config",
    "compare_runs",
    "cosine_lr",
    "covariance_spectrum",
    "effective_rank",
    "encode_with_pooled",
    "evaluate",
    "extract_features",
    "extract_features_with_pooled",
    "feature_geometry",
    "knn_classify",
    "knn_neighbours",
    "participation_ratio",
    "random_pair_cosines",
    "readouts",
    "train_linear_probes",
    "train_sgd_linear_probe",
]
