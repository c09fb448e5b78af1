"""Frozen-feature evaluation (docs/spec.md §H): features, cosine kNN, linear probe, geometry, plots and reports.

Entry point: :func:`evaluate` (features -> kNN -> probe -> geometry -> ``metrics.json`` / plots /
``report.md``); the metrics.json schema is documented in :mod:`hamjepa.evaluation.report` and
docs/EVALUATION.md. Matplotlib is imported only when figures are written.
"""

from __future__ import annotations

from hamjepa.lazy_exports import lazy_exports

# Imported on first use (hamjepa.lazy_exports): importing the package, e.g. for `--help`, loads no torch.
__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".callbacks": (
            "EvalAtEndCallback",
            "KNNMonitorCallback",
            "callbacks_from_config",
        ),
        ".compare": ("compare_runs",),
        ".features": (
            "EvalDataLike",
            "extract_features",
        ),
        "hamjepa.models.phase_space": ("readouts",),
        ".geometry": (
            "Geometry",
            "Spectrum",
            "Summary",
            "covariance_spectrum",
            "effective_rank",
            "feature_geometry",
            "participation_ratio",
            "random_pair_cosines",
        ),
        ".knn": (
            "DEFAULT_K_VALUES",
            "KNNResult",
            "knn_classify",
            "knn_neighbours",
        ),
        ".linear_probe": (
            "ProbeConfig",
            "ProbeResult",
            "cosine_lr",
            "train_linear_probes",
        ),
        ".monitor": ("OnlineKNNMonitor",),
        ".pipeline": (
            "EvalOptions",
            "evaluate",
        ),
    },
)
