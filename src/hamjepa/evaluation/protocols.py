"""The two evaluation protocols run by :func:`hamjepa.evaluation.evaluate` on precomputed features.

* ``token`` (the paper's, docs/spec.md §H): every token readout (``q`` / ``p`` / ``qp`` or ``z``, plus an objective's
  extra readouts) -> kNN (majority vote unless ``knn_weighted``) -> ``LayerNorm -> Linear`` AdamW probe.
* ``standard`` (the field's, :mod:`hamjepa.evaluation.standard`): the pooled backbone feature -> weighted
  kNN (``exp(sim / 0.07)``) -> ``Linear`` SGD probe.

Both also record the feature geometry. Each returns the metrics.json blocks of its readouts, every block
labelled with its ``protocol``; :func:`protocol_summaries` describes the settings of each protocol run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from .geometry import Geometry, feature_geometry
from .knn import KNNResult, knn_classify
from .linear_probe import train_linear_probes
from .standard import STANDARD_READOUT, train_sgd_linear_probe

if TYPE_CHECKING:
    from .pipeline import EvalOptions

TOKEN_PROBE_RECIPE = "layernorm_linear_adamw_cosine"
"""The token protocol's probe: ``LayerNorm -> Linear``, AdamW, per-step cosine decay (docs/spec.md §H.3)."""
STANDARD_PROBE_RECIPE = "linear_sgd_step"
"""The standard protocol's probe: ``Linear`` on the raw feature, SGD with momentum, step decay."""


@dataclass
class ProtocolRun:
    """What both protocols share: the options, the timings, where to run, and the figures to draw."""

    opts: EvalOptions
    device: torch.device
    verbose: bool
    timing: dict[str, float] = field(default_factory=dict)
    figures: list[tuple[str, str, KNNResult, Geometry]] = field(default_factory=list)
    """(file stem, title, kNN result, geometry) of every evaluated readout."""

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage into ``timing[name]`` (synchronising CUDA) and print it when verbose."""
        t0 = time.perf_counter()
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.timing[name] = time.perf_counter() - t0
        if self.verbose:
            print(f"[eval] {name}: {self.timing[name]:.2f} s", flush=True)

    def geometry(self, train: Tensor, test: Tensor) -> Geometry:
        o = self.opts
        return feature_geometry(
            train, test, max_samples=o.spectrum_max_samples, top_q=o.spectrum_top_q, num_pairs=o.cosine_pairs,
            seed=o.seed,
        )  # fmt: skip


Labels = tuple[Tensor, Tensor, int]
"""(train labels, test labels, number of classes)."""


def run_token_protocol(
    run: ProtocolRun, r_train: dict[str, Tensor], r_test: dict[str, Tensor], labels: Labels, k_values: tuple[int, ...]
) -> dict[str, Any]:
    """The paper's protocol on every token readout; returns metrics.json's ``readouts`` blocks."""
    y_train, y_test, num_classes = labels
    o = run.opts
    with run.stage("knn"):
        knn = {
            name: knn_classify(
                r_train[name],
                y_train,
                r_test[name],
                y_test,
                num_classes,
                k_values=k_values,
                weighted=o.knn_weighted,
                temperature=o.knn_temperature,
                test_chunk=o.knn_test_chunk,
                train_chunk=o.knn_train_chunk,
            )
            for name in r_train
        }
    with run.stage("linear_probe"):
        pcfg = o.probe_config()
        probe = train_linear_probes(r_train, y_train, r_test, y_test, num_classes, pcfg, progress=o.progress)
    with run.stage("geometry"):
        geo = {name: run.geometry(r_train[name], r_test[name]) for name in r_train}
    run.figures += [(name, f"token protocol - readout {name}", knn[name], geo[name]) for name in r_train]
    return {
        name: {
            "protocol": "token",
            "feature_dim": int(r_train[name].shape[1]),
            "knn": knn[name].to_dict(),
            "linear_probe": {
                "recipe": TOKEN_PROBE_RECIPE,
                "epochs": pcfg.epochs,
                "batch_size": pcfg.batch_size,
                "lr": pcfg.lr,
                "weight_decay": pcfg.weight_decay,
                "seed": pcfg.seed,
                "top1": probe.top1[name],
                "top5": probe.top5[name],
                "final_train_loss": probe.final_train_loss[name],
            },
            "geometry": geo[name].to_dict(),
        }
        for name in r_train
    }


def run_standard_protocol(
    run: ProtocolRun, pooled_train: Tensor, pooled_test: Tensor, labels: Labels, k_values: tuple[int, ...]
) -> dict[str, Any]:
    """The field's protocol on the pooled backbone feature; returns metrics.json's ``standard_readouts``."""
    y_train, y_test, num_classes = labels
    o = run.opts
    with run.stage("standard_knn"):
        knn = knn_classify(
            pooled_train, y_train, pooled_test, y_test, num_classes, k_values=k_values, weighted=True,
            temperature=o.standard_knn_temperature, test_chunk=o.knn_test_chunk, train_chunk=o.knn_train_chunk,
        )  # fmt: skip
    with run.stage("standard_linear_probe"):
        pcfg = o.standard_probe_config()
        probe = train_sgd_linear_probe(
            pooled_train, y_train, pooled_test, y_test, num_classes, pcfg, progress=o.progress
        )
    with run.stage("standard_geometry"):
        geo = run.geometry(pooled_train, pooled_test)
    run.figures.append((STANDARD_READOUT, f"standard protocol - readout {STANDARD_READOUT}", knn, geo))
    block = {
        "protocol": "standard",
        "feature_dim": int(pooled_train.shape[1]),
        "knn": knn.to_dict(),
        "linear_probe": {
            "recipe": STANDARD_PROBE_RECIPE,
            "epochs": pcfg.epochs,
            "batch_size": pcfg.batch_size,
            "lr": pcfg.lr,
            "momentum": pcfg.momentum,
            "weight_decay": pcfg.weight_decay,
            "milestone_epochs": pcfg.milestone_epochs(),
            "gamma": pcfg.gamma,
            "seed": pcfg.seed,
            "top1": probe.top1,
            "top5": probe.top5,
            "final_train_loss": probe.final_train_loss,
        },
        "geometry": geo.to_dict(),
    }
    return {STANDARD_READOUT: block}


def protocol_summaries(
    opts: EvalOptions, token: dict[str, Any], standard: dict[str, Any], standard_k_dropped: list[int]
) -> dict[str, Any]:
    """metrics.json's ``protocols``: for each protocol run, its feature, readouts, kNN vote and probe recipe."""
    out: dict[str, Any] = {}
    if "token" in opts.protocols:
        k_values = next(iter(token.values()))["knn"]["k_values"] if token else []
        out["token"] = {
            "feature": "the encoder's output z (the paper's flattened headless tokens) and its slices",
            "readouts": list(token),
            "knn": {
                "vote": "weighted" if opts.knn_weighted else "majority",
                "temperature": opts.knn_temperature if opts.knn_weighted else None,
                "k_values": k_values,
            },
            "linear_probe": {"recipe": TOKEN_PROBE_RECIPE, **_settings(next(iter(token.values()), None))},
        }
    if "standard" in opts.protocols:
        block = standard[STANDARD_READOUT]
        out["standard"] = {
            "feature": "the pooled backbone feature (global average of the backbone's last feature map)",
            "readouts": list(standard),
            "knn": {
                "vote": "weighted",
                "temperature": opts.standard_knn_temperature,
                "k": 20,
                "k_values": block["knn"]["k_values"],
                "k_dropped": standard_k_dropped,
            },
            "linear_probe": {"recipe": STANDARD_PROBE_RECIPE, **_settings(block)},
        }
    return out


def _settings(block: dict[str, Any] | None) -> dict[str, Any]:
    """The probe's settings from a readout block (its results left out)."""
    if block is None:
        return {}
    results = ("recipe", "top1", "top5", "final_train_loss")
    return {k: v for k, v in block["linear_probe"].items() if k not in results}


def print_summary(metrics: dict[str, Any]) -> None:
    """One line per evaluated readout, naming its protocol, kNN vote and probe recipe."""
    for key in ("readouts", "standard_readouts"):
        for name, b in metrics[key].items():
            nn20, vote = b["knn"]["nn20"], "weighted" if b["knn"]["weighted"] else "majority"
            print(
                f"[eval] {b['protocol']} protocol, {name}: kNN@20 ({vote}) "
                f"{'-' if nn20 is None else f'{100 * nn20:.2f}'}% | "
                f"best {100 * b['knn']['best_top1']:.2f}% @k={b['knn']['best_k']} | "
                f"linear ({b['linear_probe']['recipe']}) {100 * b['linear_probe']['top1']:.2f}% | "
                f"erank {b['geometry']['spectrum']['effective_rank']:.1f}",
                flush=True,
            )
