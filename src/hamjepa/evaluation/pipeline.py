"""The whole frozen-feature evaluation: features -> kNN -> linear probe -> geometry -> outputs.

Two protocols from one pass over the images: the paper's **token** protocol on the encoder's output (readouts
``q`` / ``p`` / ``qp`` or ``z``) and the field's **standard** protocol on the pooled backbone feature (readout
``pooled``; :mod:`hamjepa.evaluation.standard`). metrics.json keeps them apart (``readouts`` and
``standard_readouts``) and names the protocol of every block.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hamjepa.errors import HamjepaError
from hamjepa.models.phase_space import readouts
from hamjepa.numerics import full_fp32_matmuls

from .features import EvalDataLike, FeatureDtype, check_labels, extract_features, extract_features_with_pooled
from .knn import DEFAULT_K_VALUES
from .linear_probe import ProbeConfig
from .plots import summary_figure
from .protocols import ProtocolRun, print_summary, protocol_summaries, run_standard_protocol, run_token_protocol
from .report import SCHEMA_VERSION, write_metrics, write_report
from .standard import STANDARD_K_VALUES, STANDARD_KNN_TEMPERATURE, STANDARD_READOUT, SGDProbeConfig, standard_k_values

PROTOCOLS = ("token", "standard")
"""The evaluation protocols: the paper's (``token``) and the field's (``standard``)."""


@dataclass
class EvalOptions:
    """Evaluation settings; the defaults are the spec's protocol (H.1-H.4)."""

    k_values: tuple[int, ...] | None = None
    """The kNN sweep. ``None``: the paper's sweep (``DEFAULT_K_VALUES``, 1 to 200) without the ``k`` larger
    than the train set, which are listed as ``knn_k_dropped`` in metrics.json and in the report. Values given
    explicitly are used as given (a ``k`` above the train set size is an error)."""
    knn_weighted: bool = False
    knn_temperature: float = 0.07
    knn_test_chunk: int = 1024
    knn_train_chunk: int = 32768
    probe_epochs: int = 50
    probe_batch_size: int = 256
    probe_lr: float = 1e-3
    probe_weight_decay: float = 1e-6
    spectrum_max_samples: int = 5000
    spectrum_top_q: int = 256
    cosine_pairs: int = 20000
    seed: int = 0
    feature_dtype: FeatureDtype = "fp32"
    plots: bool = True
    progress: bool = True
    protocols: tuple[str, ...] = PROTOCOLS
    """Which protocols to run: ``"token"`` (the paper's, on the encoder output) and/or ``"standard"`` (the
    field's, on the encoder's ``pooled_features``)."""
    standard_k_values: tuple[int, ...] = STANDARD_K_VALUES
    """The standard kNN sweep (weighted vote, ``standard_knn_temperature``); ``k`` above the train set are
    left out and listed as ``protocols.standard.knn.k_dropped``."""
    standard_knn_temperature: float = STANDARD_KNN_TEMPERATURE
    standard_probe_epochs: int = 100
    standard_probe_batch_size: int = 256
    standard_probe_lr: float = 0.3
    standard_probe_momentum: float = 0.9
    standard_probe_weight_decay: float = 0.0

    def __post_init__(self) -> None:
        protocols = tuple(self.protocols)
        if not protocols or len(set(protocols)) != len(protocols) or not set(protocols) <= set(PROTOCOLS):
            raise ValueError(
                f"EvalOptions.protocols must be distinct names from {PROTOCOLS}, got {self.protocols!r}; "
                "e.g. protocols=('token', 'standard') (hamjepa eval --protocol token standard)"
            )
        self.protocols = protocols

    def standard_probe_config(self) -> SGDProbeConfig:
        return SGDProbeConfig(
            epochs=self.standard_probe_epochs,
            batch_size=self.standard_probe_batch_size,
            lr=self.standard_probe_lr,
            momentum=self.standard_probe_momentum,
            weight_decay=self.standard_probe_weight_decay,
            seed=self.seed,
        )

    def probe_config(self) -> ProbeConfig:
        return ProbeConfig(
            epochs=self.probe_epochs,
            batch_size=self.probe_batch_size,
            lr=self.probe_lr,
            weight_decay=self.probe_weight_decay,
            seed=self.seed,
        )


def objective_readouts(
    objective: nn.Module | None, device: torch.device | str
) -> dict[str, Callable[[Tensor], Tensor]]:
    """The extra readouts a trained objective defines (:meth:`~hamjepa.objectives.Objective.feature_readouts`,
    e.g. HamSIGReg's ``"ham"``), with the objective moved to ``device``; ``{}`` when it defines none."""
    feature_readouts = getattr(objective, "feature_readouts", None)
    extra = feature_readouts() if callable(feature_readouts) else {}
    if extra and objective is not None:
        objective.to(device)
    return extra


def resolve_k_values(k_values: tuple[int, ...] | None, n_train: int) -> tuple[tuple[int, ...], list[int]]:
    """The kNN sweep to run and the default ``k`` left out: ``(k_values, dropped)``.

    ``None`` means the paper's sweep without the ``k`` above ``n_train``; explicit values pass unchanged
    (:func:`~hamjepa.evaluation.knn.knn_classify` rejects a ``k`` above ``n_train`` with a clear message).
    """
    if k_values is not None:
        return tuple(k_values), []
    kept = tuple(k for k in DEFAULT_K_VALUES if k <= n_train)
    if not kept:
        raise ValueError(f"kNN needs at least {min(DEFAULT_K_VALUES)} train image(s), got {n_train}")
    return kept, [k for k in DEFAULT_K_VALUES if k > n_train]


def check_k_values(k_values: tuple[int, ...] | None, n_train: int | None) -> None:
    """Refuse an explicit kNN ``k`` above the train set size before any feature is extracted.

    Raises:
        HamjepaError: a ``k`` in ``k_values`` exceeds ``n_train`` (nothing is checked when either is ``None``).
    """
    if k_values is None or n_train is None:
        return
    too_large = sorted(k for k in k_values if k > n_train)
    if too_large:
        raise HamjepaError(
            f"eval: kNN k = {', '.join(map(str, too_large))} exceeds the {n_train} train images; "
            f"pass --k values up to {n_train} (or leave --k out for the sweep that fits)"
        )


def _evaluate(
    encoder: nn.Module,
    eval_data: EvalDataLike,
    *,
    split_qp: bool,
    out_dir: str | Path,
    device: torch.device | str,
    options: EvalOptions | None = None,
    checkpoint: str | None = None,
    config: dict[str, Any] | None = None,
    dataset: str | None = None,
    verbose: bool = True,
    extra_readouts: Mapping[str, Callable[[Tensor], Tensor]] | None = None,
) -> dict[str, Any]:
    """Evaluate a frozen encoder and write ``out_dir/metrics.json``, ``out_dir/report.md`` and
    ``out_dir/plots/summary_<readout>.png``.

    Args:
        encoder: ``[N, 3, H, W] -> [N, D]`` (moved to ``device``; used in eval mode, restored after).
        eval_data: ``train()`` / ``test()`` uint8 batch iterators, ``num_classes``, ``mean``, ``std``.
        split_qp: evaluate readouts q / p / qp (``True``) or the single readout z (``False``).
        out_dir: the eval folder (usually ``RUN_DIR/eval``).
        checkpoint, config, dataset: recorded verbatim in metrics.json.
        extra_readouts: further readouts computed from the full features ``[N, D]``, e.g. the objective's
            :meth:`~hamjepa.objectives.Objective.feature_readouts` (HamSIGReg: ``"ham"`` = ``H^{1/2} z``).

    Returns:
        The metrics dict written to metrics.json (schema in :mod:`hamjepa.evaluation.report`).
    """
    opts = options or EvalOptions()
    for name in ("train", "test"):
        if not callable(getattr(eval_data, name, None)):
            raise ValueError(f"eval_data is missing the '{name}' split (a callable returning batches)")
    check_k_values(opts.k_values, getattr(eval_data, "n_train", None))
    device = torch.device(device)
    out = Path(out_dir)
    run = ProtocolRun(opts, device, verbose)
    t_start = time.perf_counter()
    encoder = encoder.to(device)
    num_classes = int(eval_data.num_classes)

    run_standard = "standard" in opts.protocols
    extract = extract_features_with_pooled if run_standard else extract_features
    with run.stage("features"):
        feats = {}
        for split, fn in (("train", eval_data.train), ("test", eval_data.test)):
            feats[split] = extract(
                encoder, fn, eval_data.mean, eval_data.std, device, opts.feature_dtype, progress=opts.progress,
                desc=f"{split} features",
            )  # fmt: skip
            check_labels(feats[split][-1], num_classes, split)
    (f_train, *_, y_train), (f_test, *_, y_test) = feats["train"], feats["test"]
    if f_train.shape[1] != f_test.shape[1]:
        raise ValueError(f"train/test feature dims differ: {f_train.shape[1]} vs {f_test.shape[1]}")
    n_train, labels = int(f_train.shape[0]), (y_train, y_test, num_classes)
    k_values, k_dropped, blocks = (), [], {}
    if "token" in opts.protocols:
        k_values, k_dropped = resolve_k_values(opts.k_values, n_train)
        if k_dropped and verbose:
            print(f"[eval] kNN sweep without k = {k_dropped}: only {n_train} train images", flush=True)
        r_train, r_test = readouts(f_train, split_qp), readouts(f_test, split_qp)
        for name, transform in (extra_readouts or {}).items():
            if name in r_train or name == STANDARD_READOUT:
                builtin = ", ".join([*r_train, STANDARD_READOUT])
                raise ValueError(f"extra readout {name!r} clashes with a built-in readout ({builtin})")
            with torch.no_grad():
                r_train[name], r_test[name] = transform(f_train).float(), transform(f_test).float()
        blocks = run_token_protocol(run, r_train, r_test, labels, k_values)
    standard_blocks, standard_dropped = {}, []
    if run_standard:
        standard_ks, standard_dropped = standard_k_values(n_train, opts.standard_k_values)
        standard_blocks = run_standard_protocol(run, feats["train"][1], feats["test"][1], labels, standard_ks)
    metrics: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "checkpoint": checkpoint,
        "config": config,
        "dataset": dataset,
        "num_classes": num_classes,
        "split_qp": split_qp,
        "n_train": n_train,
        "n_test": int(f_test.shape[0]),
        "options": {**asdict(opts), "k_values": list(k_values)},
        "knn_k_dropped": k_dropped,
        "protocols": protocol_summaries(opts, blocks, standard_blocks, standard_dropped),
        "readouts": blocks,
        "standard_readouts": standard_blocks,
        "timing": run.timing,
    }
    with run.stage("outputs"):
        if opts.plots:
            for stem, title, knn, geo in run.figures:
                path = out / "plots" / f"summary_{stem}.png"
                summary_figure(stem, knn, geo, path, title=f"{dataset} - {title}" if dataset else title)
    run.timing["total"] = time.perf_counter() - t_start
    write_metrics(metrics, out / "metrics.json")
    write_report(metrics, out / "report.md")
    if verbose:
        print_summary(metrics)
        print(f"[eval] total: {run.timing['total']:.2f} s; wrote {out / 'metrics.json'}", flush=True)
    return metrics


def evaluate(encoder: nn.Module, eval_data: EvalDataLike, **kwargs: Any) -> dict[str, Any]:
    """Evaluate a frozen encoder in true fp32 (see :func:`_evaluate` for the arguments and outputs)."""
    with full_fp32_matmuls():
        return _evaluate(encoder, eval_data, **kwargs)


evaluate.__doc__ = _evaluate.__doc__
