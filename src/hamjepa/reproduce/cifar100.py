"""``hamjepa reproduce cifar100``: train HamJEPA, SIGReg and MLP-HJEPA, evaluate, and tabulate.

For each method and seed it trains with the shipped config (``configs/cifar100_<method>.yaml`` values,
``train.epochs`` from ``--epochs``), evaluates the frozen encoder, and finally writes ``table.md`` and
``table.json`` in the layout of spec K.1/K.2: one row per method/readout with the mean ± std over seeds
and the paper's numbers beside ours. Runs that already finished are reused, so an interrupted
reproduction continues where it stopped.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hamjepa.config import Config, load_config
from hamjepa.provenance import provenance
from hamjepa.reproduce.paper_numbers import paper_reference

METHOD_CONFIGS = {
    "hamjepa": "cifar100_hamjepa.yaml",
    "sigreg": "cifar100_sigreg.yaml",
    "mlp_hjepa": "cifar100_mlp_hjepa.yaml",
}
OBJECTIVE_OF = {"hamjepa": "hamjepa", "sigreg": "lejepa", "mlp_hjepa": "mlp_hjepa"}


def configs_dir() -> Path:
    """The repository's ``configs/`` folder (next to ``src/``)."""
    return Path(__file__).resolve().parents[3] / "configs"


@dataclass
class ReproduceOptions:
    """What to run."""

    data_path: str
    source: str = "packed"
    epochs: int = 30
    seeds: tuple[int, ...] = (0,)
    methods: tuple[str, ...] = ("hamjepa", "sigreg", "mlp_hjepa")
    out_dir: str = "runs/reproduce_cifar100"
    overrides: tuple[str, ...] = ()
    probe_epochs: int | None = None


def method_config(method: str, opts: ReproduceOptions, seed: int) -> Config:
    """The config of one run: the shipped YAML plus epochs, seed, data and the user's overrides."""
    if method not in METHOD_CONFIGS:
        raise ValueError(f"reproduce: unknown method {method!r}; choose from {', '.join(METHOD_CONFIGS)}")
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
    return load_config(configs_dir() / METHOD_CONFIGS[method], overrides)


def run_reproduction(opts: ReproduceOptions) -> dict[str, Any]:
    """Train and evaluate every (method, seed) and write the comparison table; returns the table dict."""
    from hamjepa.engine.trainer import Trainer
    from hamjepa.evaluation.callbacks import callbacks_from_config
    from hamjepa.evaluation.cli import evaluate_run
    from hamjepa.evaluation.pipeline import EvalOptions

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
                done = (run_dir / "checkpoints" / "last.pt").is_file()
                trainer = Trainer(cfg, run_dir=run_dir, resume=done, callbacks=callbacks_from_config(cfg))
                if trainer.epoch < cfg.train.epochs or not done:
                    trainer.fit()
                timings[f"{key}/train_s"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                options = EvalOptions() if opts.probe_epochs is None else EvalOptions(probe_epochs=opts.probe_epochs)
                evaluate_run(run_dir, options=options)
                timings[f"{key}/eval_s"] = time.perf_counter() - t0
            results[key] = json.loads(metrics_file.read_text())
    table = summarise(results, opts)
    table["kind"] = "reproduce_cifar100"
    table["provenance"] = provenance()
    table["timings_s"] = timings
    table["table_md"] = render_markdown(table)
    (out / "table.json").write_text(json.dumps(table, indent=2) + "\n")
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
            ref = paper_reference(OBJECTIVE_OF[method], readout, opts.epochs)
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
    return {"epochs": opts.epochs, "seeds": list(opts.seeds), "rows": rows}


def render_markdown(table: dict[str, Any]) -> str:
    """The table of spec K.1/K.2 with our numbers (mean ± std over seeds) beside the paper's."""
    lines = [
        f"CIFAR-100, {table['epochs']} epochs, seeds {table['seeds']} (percent; ours = mean ± std over seeds)",
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
