"""``hamjepa reproduce cpu-demo``: a CPU-sized check that the method learns, against the untrained encoder.

The paper's protocol needs a GPU (30 epochs over 50,000 images through a ResNet-18 with the CIFAR stem, 2.5 GFLOP
per image forward + backward). This demo trains HamJEPA and SIGReg with their shipped CIFAR-100 configs made
CPU-sized (:data:`DEMO_OVERRIDES`): 20,000 training images for 5 epochs, and the same ResNet-18 with torchvision's
ImageNet stem (a stride-4 stem: 0.12 GFLOP per image) with its 4 x 4 grid of layer2 tokens (``z`` of 512 = 16 x
32), so that both runs and the three evaluations take about 8 minutes on 2 cores (measured: docs/RESULTS.md,
"CPU demo"). It then evaluates
both, and the **same encoder at its random initialisation** (the weights both runs start from), under the same
protocols on the same evaluation slice: the paper's token protocol (kNN@10/20/50 and its linear probe on ``z``
or ``q`` / ``p`` / ``qp``) and the standard one (weighted kNN on the pooled backbone feature). Learning shows as
kNN@20 above the untrained encoder's. It is a CPU-scale check, not the paper's protocol: the numbers are far
below the paper's and are not comparable with them.

Outputs under ``--out``: one run folder per method (train + ``eval/``), ``random_init/eval/``, ``table.json``
(kind ``cpu_demo``, with provenance) and ``table.md``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hamjepa.components import load_config
from hamjepa.config import Config
from hamjepa.data import build_eval_data_from_config
from hamjepa.engine.build import build_model
from hamjepa.engine.device import seed_everything
from hamjepa.engine.train_state import checkpoint_path
from hamjepa.engine.trainer import Trainer
from hamjepa.evaluation.cli import evaluate_run
from hamjepa.evaluation.pipeline import EvalOptions, evaluate
from hamjepa.provenance import provenance, write_result
from hamjepa.reproduce.methods import method_config_path

DEMO_OVERRIDES: dict[str, object] = {
    "data.subset": 20000,
    "data.eval_subset": 10000,
    "data.batch_size": 128,
    "train.epochs": 5,
    "model.stem": "imagenet",
    "model.token_layer": "layer2",
    "optim.warmup_epochs": 1,
    "train.device": "cpu",
    "train.eval_at_end": "false",
    "train.tensorboard": "false",
    "train.log_every": 10,
    "model.channels_last": "false",
}
"""What makes the shipped configs CPU-sized: 20,000 training images (200 per class), 5 epochs of batch 128 (one
warm-up epoch), the ResNet-18 with the ImageNet stem and layer2 tokens (21x fewer FLOPs than the CIFAR stem with
layer3 tokens), evaluation on 10,000 train / the 10,000 test images."""

DEMO_K = (10, 20, 50)
"""kNN k values the demo reports (20 is the headline number, as in the paper's tables)."""
DEMO_PROBE_EPOCHS = 10
"""Epochs of the LayerNorm + linear probe (the paper's 50 would cost more than the kNN it sits beside)."""


@dataclass
class DemoOptions:
    """What the demo runs."""

    data_path: str
    """Packed CIFAR-100 .npz (``hamjepa data cifar100``)."""
    out_dir: str = "runs/cpu_demo"
    methods: tuple[str, ...] = ("hamjepa", "sigreg")
    """Methods by shipped config name: ``configs/cifar100_<method>.yaml``."""
    overrides: tuple[str, ...] = ()
    """Extra ``key=value`` overrides applied to every run after :data:`DEMO_OVERRIDES`."""
    progress: bool = True
    seed: int = 42
    k_values: tuple[int, ...] = field(default=DEMO_K)


def demo_config(method: str, opts: DemoOptions) -> Config:
    """The config of one demo run: ``configs/cifar100_<method>.yaml`` made CPU-sized."""
    file = method_config_path("cifar100", method)
    values = {
        **DEMO_OVERRIDES,
        "seed": opts.seed,
        "data.path": opts.data_path,
        "train.out_dir": opts.out_dir,
        "train.run_name": method,
        "train.progress": str(opts.progress).lower(),
    }
    return load_config(file, [f"{k}={v}" for k, v in values.items()] + list(opts.overrides))


def _eval_options(opts: DemoOptions) -> Any:
    return EvalOptions(
        k_values=tuple(opts.k_values), probe_epochs=DEMO_PROBE_EPOCHS, plots=False, progress=opts.progress
    )


def _evaluate_random_init(cfg: Config, out: Path, opts: DemoOptions) -> dict[str, Any]:
    """The untrained encoder of ``cfg`` (the trainer's seeding, so the weights every demo run starts from)."""
    seed_everything(cfg.seed)
    encoder, _ = build_model(cfg)
    config = cfg.to_dict()
    return evaluate(
        encoder,
        build_eval_data_from_config(config),
        split_qp=bool(encoder.split_qp),
        out_dir=out,
        device="cpu",
        options=_eval_options(opts),
        config=config,
        dataset="cifar100",
        verbose=opts.progress,
    )


STANDARD_SUFFIX = " (standard)"
"""Appended to the readouts of the standard protocol (the pooled backbone feature, weighted kNN, SGD probe)."""


def _scores(metrics: dict[str, Any], k_values: tuple[int, ...]) -> dict[str, dict[str, float | None]]:
    """``{readout: {"knn@K": percent, ..., "linear": percent}}`` from an evaluation's metrics: the token protocol's
    readouts, then the standard protocol's (named ``"<readout> (standard)"``; None where its kNN sweep has no K)."""
    out: dict[str, dict[str, float | None]] = {}
    readouts = list(metrics["readouts"].items())
    readouts += [(name + STANDARD_SUFFIX, r) for name, r in metrics.get("standard_readouts", {}).items()]
    for name, r in readouts:
        by_k = dict(zip(r["knn"]["k_values"], r["knn"]["top1"], strict=True))
        row: dict[str, float | None] = {f"knn@{k}": 100.0 * by_k[k] if k in by_k else None for k in k_values}
        row["linear"] = 100.0 * r["linear_probe"]["top1"]
        out[name] = row
    return out


def run_cpu_demo(opts: DemoOptions) -> dict[str, Any]:
    """Train every method, evaluate it and the untrained encoder; write and return the table."""
    out = Path(opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    for method in opts.methods:
        cfg = demo_config(method, opts)
        run_dir = out / method
        metrics_file = run_dir / "eval" / "metrics.json"
        if not metrics_file.is_file():
            t0 = time.perf_counter()
            if not checkpoint_path(run_dir).is_file():
                Trainer(cfg, run_dir=run_dir).fit()
            timings[f"{method}/train_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            evaluate_run(run_dir, device="cpu", options=_eval_options(opts))
            timings[f"{method}/eval_s"] = time.perf_counter() - t0
        metrics = json.loads(metrics_file.read_text())
        rows.append({"run": method, "trained": True, "scores": _scores(metrics, opts.k_values)})
    reference = demo_config(opts.methods[0], opts)
    random_file = out / "random_init" / "eval" / "metrics.json"
    if not random_file.is_file():
        t0 = time.perf_counter()
        _evaluate_random_init(reference, random_file.parent, opts)
        timings["random_init/eval_s"] = time.perf_counter() - t0
    metrics = json.loads(random_file.read_text())
    rows.append({"run": "random_init", "trained": False, "scores": _scores(metrics, opts.k_values)})
    table = {
        "kind": "cpu_demo",
        "settings": {
            "data.subset": reference.data.subset,
            "data.eval_subset": reference.data.eval_subset,
            "data.batch_size": reference.data.batch_size,
            "train.epochs": reference.train.epochs,
            "model.name": reference.model.name,
            "model.stem": reference.model.kwargs.get("stem"),
            "model.token_layer": reference.model.kwargs.get("token_layer"),
            "seed": opts.seed,
            "overrides": list(opts.overrides),
        },
        "k_values": list(opts.k_values),
        "rows": rows,
        "timings_s": timings,
        "provenance": provenance(),
    }
    table["table_md"] = render_markdown(table)
    write_result(out / "table.json", table)
    (out / "table.md").write_text(table["table_md"])
    print(table["table_md"])
    return table


def _encoder_words(settings: dict[str, Any]) -> str:
    """``resnet18_tokens (imagenet stem, layer2 tokens)`` from a table's settings."""
    parts = [f"{settings[k]} {w}" for k, w in (("model.stem", "stem"), ("model.token_layer", "tokens")) if settings[k]]
    return f"{settings['model.name']} ({', '.join(parts)})" if parts else str(settings["model.name"])


def render_markdown(table: dict[str, Any]) -> str:
    """One row per run and readout (the untrained encoder last): kNN@k and the linear probe, in percent."""
    ks = [f"knn@{k}" for k in table["k_values"]]
    st = table["settings"]
    lines = [
        f"CPU-scale check, not the paper's protocol: {st['data.subset']} training images, {st['train.epochs']} "
        f"epochs of batch {st['data.batch_size']}, encoder {_encoder_words(st)}; kNN and a "
        f"linear probe on {st['data.eval_subset']} train / {st['data.eval_subset']} test images (top-1, percent). "
        f"Token protocol: majority-vote kNN, {DEMO_PROBE_EPOCHS}-epoch probe; *(standard)*: weighted kNN "
        "(T = 0.07) and the SGD probe on the pooled backbone feature.",
        "",
        "| run | readout | " + " | ".join(k.replace("knn@", "kNN@") for k in ks) + " | linear |",
        "|---|---|" + "---|" * (len(ks) + 1),
    ]
    for row in table["rows"]:
        name = row["run"] if row["trained"] else "untrained encoder (random init)"
        for readout, scores in row["scores"].items():
            cells = " | ".join("—" if scores[k] is None else f"{scores[k]:.2f}" for k in [*ks, "linear"])
            lines.append(f"| {name} | {readout} | {cells} |")
    return "\n".join(lines) + "\n"
