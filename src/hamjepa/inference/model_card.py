"""The model card (``README.md``) of an export: what was trained, how well it does, how to load it."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from hamjepa.evaluation.report import PROTOCOL_TITLES, protocol_blocks, protocol_setting
from hamjepa.inference.model import HamjepaModel
from hamjepa.models.registry import DEFAULT_ENCODER

__all__ = ["objective_description", "render_model_card"]


def objective_description(objective: object) -> str:
    """The card's line for the trained objective: its class's ``description``, or, when that is empty, the
    class name and the first line of the class's own docstring."""
    cls = type(objective)
    text = str(getattr(cls, "description", "") or "")
    if text:
        return text
    doc = inspect.cleandoc(cls.__doc__ or "").splitlines()
    return f"{cls.__name__}: {doc[0]}" if doc and doc[0] else cls.__name__


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def training_images_text(data: dict[str, Any]) -> str:
    """What the card says about the training set's size: ``data.subset`` images, or the whole train split."""
    subset = data.get("subset")
    if subset:
        return f"{subset} (`data.subset: {subset}`: a slice of the training split, not all of it)"
    return "the whole training split (`data.subset: null`)"


def _readout_table(metrics: dict[str, Any] | None) -> list[str]:
    if metrics is None:
        return [
            "Not evaluated: the run had no `eval/metrics.json` when it was exported. Run "
            "`hamjepa eval RUN_DIR`, then export again.",
        ]
    lines = [
        f"Frozen-feature evaluation on **{metrics.get('dataset')}** ({metrics.get('num_classes')} classes, "
        f"{metrics.get('n_train')} train / {metrics.get('n_test')} test images; `metrics.json` has everything).",
    ]
    blocks = protocol_blocks(metrics) if "readouts" in metrics else []
    for protocol in dict.fromkeys(p for p, _, _ in blocks):  # one table per protocol: never mixed in a column
        mine = [(name, block) for p, name, block in blocks if p == protocol]
        lines += [
            "",
            f"{PROTOCOL_TITLES.get(protocol, protocol)} ({protocol_setting(protocol, mine[0][1])}):",
            "",
            f"| readout | dim | {protocol} kNN@20 top-1 (%) | {protocol} best kNN top-1 (%) (k) | "
            f"{protocol} linear probe top-1 (%) | effective rank |",
            "|---|---|---|---|---|---|",
        ]
        for name, block in mine:
            knn, probe = block["knn"], block["linear_probe"]
            erank = block["geometry"]["spectrum"]["effective_rank"]
            lines.append(
                f"| `{name}` | {block['feature_dim']} | {_pct(knn['nn20'])} | {_pct(knn['best_top1'])} "
                f"({knn['best_k']}) | {_pct(probe['top1'])} | {erank:.1f} |"
            )
    return lines


def render_model_card(model: HamjepaModel, manifest: dict[str, Any], backbone_sections: list[str]) -> str:
    """The card's Markdown text.

    Args:
        model: the loaded model being exported.
        manifest: the export's manifest (``encoder`` is the encoder's one-line description).
        backbone_sections: the Markdown sections of the encoder's export files (how to load each one).
    """
    cfg = model.config
    data, mdl, train = cfg.get("data", {}), cfg.get("model", {}), cfg.get("train", {})
    name = manifest["objective"]
    encoder_name = mdl.get("name", DEFAULT_ENCODER)
    pre = manifest["preprocess"]
    readouts = ", ".join(f"`{r}`" for r in manifest["readouts"])
    data_path = Path(str(data.get("path", ""))).name or "-"
    sliced = f" ({data['subset']} training images)" if data.get("subset") else ""
    lines = [
        f"# {name} {encoder_name} encoder — {data.get('dataset')}{sliced}, {model.epoch} epochs, "
        f"seed {cfg.get('seed')}",
        "",
        "Exported with `hamjepa export` (safetensors and JSON/YAML only: nothing here is a pickle).",
        "",
        "| | |",
        "|---|---|",
        f"| method | {objective_description(model.objective)} (`objective.name: {name}`) |",
        f"| data | `{data.get('dataset')}` (`{data_path}`), {data.get('image_size')} px, "
        f"batch {data.get('batch_size')}, {data.get('global_views')} global + {data.get('local_views')} local views |",
        f"| training images | {training_images_text(data)} |",
        f"| encoder | {manifest['encoder']} (`model.name: {encoder_name}`) |",
        f"| epochs | {model.epoch} of {train.get('epochs')} configured ({model.step} optimiser steps) |",
        f"| seed | {cfg.get('seed')} |",
        f"| training commit | {manifest.get('training_commit') or 'not recorded by the run'} |",
        f"| exported with | hamjepa {manifest['hamjepa_version']}, commit {manifest['export_commit']} |",
        f"| readouts | {readouts} |",
        "",
        "## Readouts and accuracies",
        "",
        *_readout_table(model.metrics),
        "",
        "## Load it with hamjepa",
        "",
        "```python",
        "import hamjepa",
        "",
        'model = hamjepa.load("path/to/this/folder")  # checks the sha256 of every file',
        f'z = model.embed(["image.jpg"], readout="{manifest["readouts"][0]}")  # float32 [1, d] on the CPU',
        "```",
        "",
        f"Preprocessing (done by `embed`): resize the shorter side to {pre['resize']} px, centre-crop "
        f"{pre['crop']} px, scale to [0, 1], normalise with mean {tuple(pre['mean'])} and std {tuple(pre['std'])}.",
        "",
        *[line for section in backbone_sections for line in (section, "")],
        "## Files",
        "",
        "| file | sha256 |",
        "|---|---|",
        *[f"| `{f}` | `{digest}` |" for f, digest in manifest["files"].items()],
        "",
    ]
    return "\n".join(lines)
