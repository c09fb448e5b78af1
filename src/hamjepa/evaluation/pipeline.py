"""The whole frozen-feature evaluation: features -> kNN -> linear probe -> geometry -> outputs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hamjepa.errors import HamjepaError
from hamjepa.models.phase_space import readouts
from hamjepa.numerics import full_fp32_matmuls

from .features import EvalDataLike, FeatureDtype, check_labels, extract_features
from .geometry import feature_geometry
from .knn import DEFAULT_K_VALUES, knn_classify
from .linear_probe import ProbeConfig, train_linear_probes
from .plots import summary_figure
from .report import SCHEMA_VERSION, write_metrics, write_report


@dataclass
class EvalOptions:
    """Evaluation settings; the defaults are the protocol of docs/spec.md §H.1 to §H.4."""

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


@contextmanager
def _stage(timing: dict[str, float], name: str, device: torch.device, verbose: bool) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    timing[name] = time.perf_counter() - t0
    if verbose:
        print(f"[eval] {name}: {timing[name]:.2f} s", flush=True)


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
    timing: dict[str, float] = {}
    t_start = time.perf_counter()
    encoder = encoder.to(device)
    num_classes = int(eval_data.num_classes)

    with _stage(timing, "features", device, verbose):
        feats = {}
        for split, fn in (("train", eval_data.train), ("test", eval_data.test)):
            feats[split] = extract_features(
                encoder,
                fn,
                eval_data.mean,
                eval_data.std,
                device,
                opts.feature_dtype,
                progress=opts.progress,
                desc=f"{split} features",
            )
            check_labels(feats[split][1], num_classes, split)
    (f_train, y_train), (f_test, y_test) = feats["train"], feats["test"]
    if f_train.shape[1] != f_test.shape[1]:
        raise ValueError(f"train/test feature dims differ: {f_train.shape[1]} vs {f_test.shape[1]}")
    k_values, k_dropped = resolve_k_values(opts.k_values, int(f_train.shape[0]))
    if k_dropped and verbose:
        print(f"[eval] kNN sweep without k = {k_dropped}: only {f_train.shape[0]} train images", flush=True)
    r_train, r_test = readouts(f_train, split_qp), readouts(f_test, split_qp)
    for name, transform in (extra_readouts or {}).items():
        if name in r_train:
            raise ValueError(f"extra readout {name!r} clashes with a built-in readout ({', '.join(r_train)})")
        with torch.no_grad():
            r_train[name], r_test[name] = transform(f_train).float(), transform(f_test).float()

    with _stage(timing, "knn", device, verbose):
        knn = {
            name: knn_classify(
                r_train[name],
                y_train,
                r_test[name],
                y_test,
                num_classes,
                k_values=k_values,
                weighted=opts.knn_weighted,
                temperature=opts.knn_temperature,
                test_chunk=opts.knn_test_chunk,
                train_chunk=opts.knn_train_chunk,
            )
            for name in r_train
        }
    with _stage(timing, "linear_probe", device, verbose):
        pcfg = opts.probe_config()
        probe = train_linear_probes(r_train, y_train, r_test, y_test, num_classes, pcfg, progress=opts.progress)
    with _stage(timing, "geometry", device, verbose):
        geo = {
            name: feature_geometry(
                r_train[name],
                r_test[name],
                max_samples=opts.spectrum_max_samples,
                top_q=opts.spectrum_top_q,
                num_pairs=opts.cosine_pairs,
                seed=opts.seed,
            )
            for name in r_train
        }

    blocks = {
        name: {
            "feature_dim": int(r_train[name].shape[1]),
            "knn": knn[name].to_dict(),
            "linear_probe": {
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
    metrics: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "checkpoint": checkpoint,
        "config": config,
        "dataset": dataset,
        "num_classes": num_classes,
        "split_qp": split_qp,
        "n_train": int(f_train.shape[0]),
        "n_test": int(f_test.shape[0]),
        "options": {**asdict(opts), "k_values": list(k_values)},
        "knn_k_dropped": k_dropped,
        "readouts": blocks,
        "timing": timing,
    }
    with _stage(timing, "outputs", device, verbose):
        if opts.plots:
            title = dataset or ""
            for name in blocks:
                summary_figure(name, knn[name], geo[name], out / "plots" / f"summary_{name}.png", title=title)
    timing["total"] = time.perf_counter() - t_start
    write_metrics(metrics, out / "metrics.json")
    write_report(metrics, out / "report.md")
    if verbose:
        for name, b in blocks.items():
            nn20 = b["knn"]["nn20"]
            print(
                f"[eval] {name}: NN@20 {'-' if nn20 is None else f'{100 * nn20:.2f}'}% | "
                f"best {100 * b['knn']['best_top1']:.2f}% @k={b['knn']['best_k']} | "
                f"linear {100 * b['linear_probe']['top1']:.2f}% | "
                f"erank {b['geometry']['spectrum']['effective_rank']:.1f}",
                flush=True,
            )
        print(f"[eval] total: {timing['total']:.2f} s; wrote {out / 'metrics.json'}", flush=True)
    return metrics


def evaluate(encoder: nn.Module, eval_data: EvalDataLike, **kwargs: Any) -> dict[str, Any]:
    """Evaluate a frozen encoder in true fp32 (see :func:`_evaluate` for the arguments and outputs)."""
    with full_fp32_matmuls():
        return _evaluate(encoder, eval_data, **kwargs)


evaluate.__doc__ = _evaluate.__doc__
