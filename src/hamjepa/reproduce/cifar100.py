"""``hamjepa reproduce cifar100|imagenet100``: train each method, evaluate, and tabulate beside the paper.

For each method and seed it trains with the shipped config (``configs/<dataset>_<method>.yaml`` values,
``train.epochs`` from ``--epochs``), evaluates the frozen encoder, and finally writes ``table.md`` and
``table.json`` in the layout of docs/spec.md §K.1/§K.2 (CIFAR-100: HamJEPA, SIGReg, MLP-HJEPA) or K.3 (ImageNet-100:
HamJEPA and SIGReg, q/p/qp readouts): one row per method/readout with the mean ± std over seeds and the
paper's numbers beside ours. Any other method with a shipped config (e.g. ``vicreg``, ``visreg``) gets its rows
too, with no paper number beside them (the paper has none). Runs that already finished are reused, so an
interrupted reproduction continues where it stopped.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hamjepa.components import load_config
from hamjepa.config import Config
from hamjepa.engine.train_state import checkpoint_path
from hamjepa.engine.trainer import Trainer
from hamjepa.evaluation.callbacks import callbacks_from_config
from hamjepa.evaluation.cli import evaluate_run
from hamjepa.evaluation.pipeline import EvalOptions
from hamjepa.provenance import provenance, write_result
from hamjepa.reproduce.methods import method_config_path
from hamjepa.reproduce.paper_numbers import paper_methods, paper_reference

DATASET_TITLES = {"cifar100": "CIFAR-100", "imagenet100": "ImageNet-100"}


@dataclass
class ReproduceOptions:
    """What to run."""

    data_path: str
    source: str = "packed"
    epochs: int = 30
    seeds: tuple[int, ...] = (0,)
    methods: tuple[str, ...] = paper_methods("cifar100")
    """Any ``<method>`` of a shipped ``configs/<dataset>_<method>.yaml`` (default: the paper's CIFAR-100 rows)."""
    out_dir: str = "runs/reproduce_cifar100"
    overrides: tuple[str, ...] = ()
    probe_epochs: int | None = None
    dataset: str = "cifar100"
    k_values: tuple[int, ...] | None = None
    """kNN sweep (default: docs/spec.md §H.2's 1..200); must contain 20 (the table's NN@20)."""


def method_config(method: str, opts: ReproduceOptions, seed: int) -> Config:
    """The config of one run: the shipped YAML plus epochs, seed, data and the user's overrides."""
    path = method_config_path(opts.dataset, method)
    overrides = [
        f"train.epochs={opts.epochs}",
        f"seed={seed}",
        f"data.path={opts.data_path}",
        f"data.source={opts.source}",
        f"train.run_name={method}-e{opts.epochs}-seed{seed}",
        f"train.out_dir={opts.out_dir}",
        "train.eval_at_end=false",
        *opts.overrides,
    ]
    if opts.source == "torchvision":
        overrides.append("data.download=true")
    return load_config(path, overrides)


def run_reproduction(opts: ReproduceOptions) -> dict[str, Any]:
    """Train and evaluate every (method, seed) and write the comparison table; returns the table dict."""
    if opts.k_values is not None and 20 not in opts.k_values:
        raise ValueError(f"reproduce: --k {list(opts.k_values)} must include 20 (the table's NN@20)")
    out = Path(opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    timings: dict[str, float] = {}
    for method in opts.methods:
        for seed in opts.seeds:
            cfg = method_config(method, opts, seed)
            run_dir = out / cfg.train.run_name
            metrics_file = run_dir / "eval" / "metrics.json"
            key = f"{method}/seed{seed}"
            if not metrics_file.is_file():
                t0 = time.perf_counter()
                done = checkpoint_path(run_dir).is_file()
                trainer = Trainer(cfg, run_dir=run_dir, resume=done, callbacks=callbacks_from_config(cfg))
                if trainer.epoch < cfg.train.epochs or not done:
                    trainer.fit()
                timings[f"{key}/train_s"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                overrides: dict[str, Any] = {}
                if opts.probe_epochs is not None:
                    overrides["probe_epochs"] = opts.probe_epochs
                if opts.k_values is not None:
                    overrides["k_values"] = tuple(opts.k_values)
                options = EvalOptions(**overrides)
                evaluate_run(run_dir, options=options)
                timings[f"{key}/eval_s"] = time.perf_counter() - t0
            results[key] = json.loads(metrics_file.read_text())
    table = summarise(results, opts)
    table["kind"] = f"reproduce_{opts.dataset}"
    table["provenance"] = provenance()
    table["timings_s"] = timings
    table["table_md"] = render_markdown(table)
    write_result(out / "table.json", table)
    (out / "table.md").write_text(table["table_md"])
    print(table["table_md"])
    return table


def summarise(results: dict[str, dict[str, Any]], opts: ReproduceOptions) -> dict[str, Any]:
    """Mean ± std over seeds per (method, readout), with the paper's numbers beside ours (percent)."""
    rows = []
    for method in opts.methods:
        per_seed = [results[f"{method}/seed{s}"] for s in opts.seeds if f"{method}/seed{s}" in results]
        if not per_seed:
            continue
        for readout in per_seed[0]["readouts"]:
            nn20 = [100 * m["readouts"][readout]["knn"]["nn20"] for m in per_seed]
            best = [100 * m["readouts"][readout]["knn"]["best_top1"] for m in per_seed]
            lin = [100 * m["readouts"][readout]["linear_probe"]["top1"] for m in per_seed]
            ref = paper_reference(method, readout, opts.epochs, opts.dataset)
            rows.append(
                {
                    "method": method,
                    "readout": readout,
                    "seeds": list(opts.seeds)[: len(per_seed)],
                    "nn20_mean": statistics.fmean(nn20),
                    "nn20_std": statistics.pstdev(nn20) if len(nn20) > 1 else 0.0,
                    "nn_best_mean": statistics.fmean(best),
                    "linear_mean": statistics.fmean(lin),
                    "linear_std": statistics.pstdev(lin) if len(lin) > 1 else 0.0,
                    "paper_nn20": None if ref is None else ref[0],
                    "paper_linear": None if ref is None else ref[1],
                }
            )
    return {"dataset": opts.dataset, "epochs": opts.epochs, "seeds": list(opts.seeds), "rows": rows}


def render_markdown(table: dict[str, Any]) -> str:
    """The table of docs/spec.md §K.1/§K.2 (or K.3) with our numbers (mean ± std over seeds) beside the paper's."""
    title = DATASET_TITLES[table.get("dataset", "cifar100")]
    lines = [
        f"{title}, {table['epochs']} epochs, seeds {table['seeds']} (percent; ours = mean ± std over seeds)",
        "",
        "| method / readout | NN@20 (ours) | NN@20 (paper) | best NN (ours) | linear (ours) | linear (paper) |",
        "|---|---|---|---|---|---|",
    ]
    fmt = lambda v: "—" if v is None else f"{v:.2f}"  # noqa: E731
    for r in table["rows"]:
        lines.append(
            f"| {r['method']}-{r['readout']} | {r['nn20_mean']:.2f} ± {r['nn20_std']:.2f} | {fmt(r['paper_nn20'])} "
            f"| {r['nn_best_mean']:.2f} | {r['linear_mean']:.2f} ± {r['linear_std']:.2f} | {fmt(r['paper_linear'])} |"
        )
    return "\n".join(lines) + "\n"
