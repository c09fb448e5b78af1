"""The model card (``README.md``) of an export: what was trained, how well it does, how to load it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hamjepa.evaluation.report import PROTOCOL_TITLES, protocol_blocks, protocol_setting
from hamjepa.inference.model import HamjepaModel

__all__ = ["render_model_card", "torchvision_snippet"]

_METHODS = {
    "hamjepa": "HamJEPA: phase-space embedding z = [q; p], symplectic (leapfrog) Hamiltonian predictor, "
    "non-isotropic anti-collapse floors",
    "lejepa": "LeJEPA + SIGReg (isotropic Gaussian regulariser, no predictor)",
    "mlp_hjepa": "MLP-HJEPA: the HamJEPA objective with a non-symplectic MLP predictor (ablation)",
    "bijepa": "BiJEPA: EMA target encoder, forward and backward predictors",
}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def torchvision_snippet(stem: str, kept_stages: list[str], image_size: int) -> str:
    """Python that loads ``resnet18_backbone.safetensors`` into plain torchvision (run inside the export)."""
    lines = [
        "import torch",
        "import torchvision",
        "from safetensors.torch import load_file",
        "",
        "net = torchvision.models.resnet18()",
    ]
    if stem == "cifar":
        lines += [
            "net.conv1 = torch.nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)  # CIFAR stem",
            "net.maxpool = torch.nn.Identity()",
        ]
    missing = [s for s in ("layer1", "layer2", "layer3", "layer4") if s not in kept_stages] + ["fc"]
    lines += [
        'result = net.load_state_dict(load_file("resnet18_backbone.safetensors"), strict=False)',
        "assert not result.unexpected_keys",
        f"# result.missing_keys: only {', '.join(m + '.*' for m in missing)} (parts this encoder does not use)",
        "trunk = torch.nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, "
        + ", ".join(f"net.{s}" for s in kept_stages)
        + ").eval()",
        f"features = trunk(torch.randn(1, 3, {image_size}, {image_size}))  # the {kept_stages[-1]} feature map",
    ]
    return "\n".join(lines)


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


def render_model_card(model: HamjepaModel, manifest: dict[str, Any]) -> str:
    """The card's Markdown text."""
    cfg = model.config
    data, mdl, train = cfg.get("data", {}), cfg.get("model", {}), cfg.get("train", {})
    name = manifest["objective"]
    stem = manifest["resnet18"]["stem"]
    missing = manifest["resnet18"]["missing_in_torchvision"]
    kept = [s for s in ("layer1", "layer2", "layer3", "layer4") if s not in missing]
    pre = manifest["preprocess"]
    readouts = ", ".join(f"`{r}`" for r in manifest["readouts"])
    data_path = Path(str(data.get("path", ""))).name or "-"
    sliced = f" ({data['subset']} training images)" if data.get("subset") else ""
    lines = [
        f"# {name} ResNet-18 encoder — {data.get('dataset')}{sliced}, {model.epoch} epochs, seed {cfg.get('seed')}",
        "",
        "Exported with `hamjepa export` (safetensors and JSON/YAML only: nothing here is a pickle).",
        "",
        "| | |",
        "|---|---|",
        f"| method | {_METHODS.get(name, name)} (`objective.name: {name}`) |",
        f"| data | `{data.get('dataset')}` (`{data_path}`), {data.get('image_size')} px, "
        f"batch {data.get('batch_size')}, {data.get('global_views')} global + {data.get('local_views')} local views |",
        f"| training images | {training_images_text(data)} |",
        f"| encoder | ResNet-18 `{stem}` stem, `{mdl.get('mode')}` mode, tokens from `{mdl.get('token_layer')}`, "
        f"token_dim {mdl.get('token_dim')}, split_qp {mdl.get('split_qp')} |",
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
        "## Load the backbone into plain torchvision",
        "",
        "`resnet18_backbone.safetensors` holds the ResNet-18 trunk under torchvision's names. The token head "
        "(1x1 conv + BatchNorm) that forms the embedding is in `encoder.safetensors`; use `hamjepa.load` for "
        "the exact embeddings.",
        "",
        "```python",
        torchvision_snippet(stem, kept, int(pre["crop"])),
        "```",
        "",
        "## Files",
        "",
        "| file | sha256 |",
        "|---|---|",
        *[f"| `{f}` | `{digest}` |" for f, digest in manifest["files"].items()],
        "",
    ]
    return "\n".join(lines)
