"""Figures of the evaluation suite (Matplotlib, Agg backend; imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .geometry import Geometry
from .knn import KNNResult


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def summary_figure(readout: str, knn: KNNResult, geometry: Geometry, path: Path, *, title: str = "") -> Path:
    """2x2 summary of one readout: kNN top-1 vs k, log-y top-q eigenvalues, cosine and norm histograms."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    head = f"{title} - readout {readout}" if title else f"readout {readout}"
    fig.suptitle(head)

    ax = axes[0, 0]
    best = f"top-1 (best k={knn.best_k}: {100 * knn.best_top1:.2f}%)"
    ax.plot(knn.k_values, [100 * a for a in knn.top1], "o-", label=best)
    ax.plot(knn.k_values, [100 * a for a in knn.top5], "s--", label="top-5")
    ax.set_xscale("log")
    ax.set_xticks(knn.k_values, [str(k) for k in knn.k_values])
    ax.minorticks_off()
    ax.set_xlabel("k (neighbours)")
    ax.set_ylabel("accuracy (%)")
    vote = f"weighted T={knn.temperature}" if knn.weighted else "majority vote"
    ax.set_title(f"kNN accuracy vs k ({vote})")
    ax.legend()
    ax.grid(True, alpha=0.3)

    ax = axes[0, 1]
    spec = geometry.spectrum
    label = f"top-{spec.q_used}: erank {spec.effective_rank:.1f}, PR {spec.participation_ratio:.1f}"
    ax.semilogy(range(1, spec.q_used + 1), spec.eigenvalues, "-", label=label)
    ax.set_xlabel("index i")
    ax.set_ylabel("eigenvalue (log scale)")
    ax.set_title(f"centred covariance spectrum (n={spec.n_used})")
    ax.legend()
    ax.grid(True, alpha=0.3)

    ax = axes[1, 0]
    ax.hist(geometry.cosines.numpy(), bins=80, color="tab:green", alpha=0.8, label="random pairs")
    ax.axvline(geometry.cosine.mean, color="k", linestyle="--", label=f"mean {geometry.cosine.mean:.3f}")
    ax.set_xlabel("cosine similarity (uncentred)")
    ax.set_ylabel("count")
    ax.set_title(f"random-pair cosines (n={geometry.cosines.numel()})")
    ax.legend()

    ax = axes[1, 1]
    ax.hist(geometry.norm_values.numpy(), bins=80, color="tab:purple", alpha=0.8, label="test features")
    ax.axvline(geometry.norms.mean, color="k", linestyle="--", label=f"mean {geometry.norms.mean:.3g}")
    ax.set_xlabel("L2 norm")
    ax.set_ylabel("count")
    ax.set_title("feature norms")
    ax.legend()

    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.07, top=0.9, hspace=0.32, wspace=0.2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def compare_figure(curves: Sequence[dict[str, Any]], path: Path) -> Path:
    """Overlay of kNN sweeps and spectra; each curve: {label, k_values, top1, eigenvalues[, protocol]}.

    Standard-protocol curves are dashed, token-protocol curves solid; every label names its protocol.
    """
    plt = _pyplot()
    fig, (ax_knn, ax_spec) = plt.subplots(1, 2, figsize=(13, 5))
    for c in curves:
        dashed = c.get("protocol") == "standard"
        ax_knn.plot(c["k_values"], [100 * a for a in c["top1"]], "s--" if dashed else "o-", label=c["label"])
        ax_spec.semilogy(
            range(1, len(c["eigenvalues"]) + 1), c["eigenvalues"], "--" if dashed else "-", label=c["label"]
        )
    ax_knn.set_xscale("log")
    ks = sorted({k for c in curves for k in c["k_values"]})
    ax_knn.set_xticks(ks, [str(k) for k in ks])
    ax_knn.minorticks_off()
    ax_knn.set_xlabel("k (neighbours)")
    ax_knn.set_ylabel("kNN top-1 (%)")
    ax_knn.set_title("kNN sweep (token protocol solid, standard protocol dashed)")
    ax_knn.grid(True, alpha=0.3)
    ax_knn.legend(fontsize="small")
    ax_spec.set_xlabel("index i")
    ax_spec.set_ylabel("eigenvalue (log scale)")
    ax_spec.set_title("centred covariance spectrum (top-q)")
    ax_spec.grid(True, alpha=0.3)
    ax_spec.legend(fontsize="small")
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.1, top=0.92, wspace=0.2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
