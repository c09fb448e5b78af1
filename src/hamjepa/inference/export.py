"""``hamjepa export``: a trained run as a folder other tools load, with no pickle anywhere.

Layout of ``OUT/``::

    README.md                       model card (method, data, epochs, seed, commit, readouts, how to load)
    hamjepa_export.json             manifest: format, provenance, preprocessing, readouts, sha256 of each file
    config.yaml                     the run's resolved config (YAML)
    metrics.json                    the run's eval/metrics.json, when the run was evaluated
    encoder.safetensors             the encoder's state dict
    objective.safetensors           the objective state dict (the predictor under ``predictor.``)
    <backbone>.safetensors          what the encoder's export hook asks for (``Encoder.export_artifacts``):
                                    the ResNet-18 trunk under torchvision's names (resnet18_backbone), the
                                    ViT under timm's names (vit_backbone); none for an encoder without one

``hamjepa.load(OUT)`` rebuilds the encoder from ``config.yaml`` and the safetensors files, giving embeddings
bit-identical to the run's. The model card describes whatever encoder it is given and carries each backbone
file's loading recipe, which needs only torch, safetensors and the backbone's library (torchvision, timm) and
reproduces the embedding exactly; the manifest records each file under ``backbones``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hamjepa import __version__
from hamjepa.atomic_files import write_safetensors
from hamjepa.components import config_from_dict
from hamjepa.engine.build import build_model
from hamjepa.engine.checkpoint import EXPORT_MANIFEST_NAME, load_state_strict, run_dir_of
from hamjepa.engine.run_logger import PROVENANCE_NAME
from hamjepa.inference.model import HamjepaModel, InferenceError, load
from hamjepa.inference.model_card import render_model_card
from hamjepa.inference.preprocess import EvalPreprocess
from hamjepa.models.protocol import ExportArtifact
from hamjepa.plugins import missing_plugins_hint
from hamjepa.provenance import git_commit

__all__ = ["EXPORT_FORMAT", "MANIFEST_NAME", "export_run", "load_export"]

EXPORT_FORMAT = 1
MANIFEST_NAME = EXPORT_MANIFEST_NAME
ENCODER_FILE = "encoder.safetensors"
OBJECTIVE_FILE = "objective.safetensors"
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
CARD_FILE = "README.md"
_RESERVED = {ENCODER_FILE, OBJECTIVE_FILE, CONFIG_FILE, METRICS_FILE, CARD_FILE, MANIFEST_NAME}


def export_artifacts(encoder: nn.Module, image_size: int) -> list[ExportArtifact]:
    """What the encoder asks export to write besides its state dict (none for an encoder without the hook)."""
    hook = getattr(encoder, "export_artifacts", None)
    artifacts = list(hook(image_size)) if hook is not None else []
    names = [a.file for a in artifacts]
    clash = sorted({n for n in names if n in _RESERVED or names.count(n) > 1 or "/" in n})
    if clash:
        raise InferenceError(f"export: the encoder's export files {clash} clash with the export layout; rename them")
    return artifacts


def _plain_tensors(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Detached, contiguous CPU copies (safetensors refuses views that share storage)."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _training_commit(model: HamjepaModel) -> str | None:
    """The commit the run was trained at: the first line of its ``provenance.jsonl`` (None when absent)."""
    checkpoint = model.info.get("checkpoint")
    if not checkpoint:
        return model.info.get("training_commit")

    log = run_dir_of(checkpoint) / PROVENANCE_NAME
    if not log.is_file():
        return None
    with open(log) as fh:
        for line in fh:
            try:
                commit = json.loads(line).get("commit")
            except (json.JSONDecodeError, AttributeError):
                continue
            if isinstance(commit, str):
                return commit
    return None


def export_run(path: str | Path, out: str | Path, *, force: bool = False) -> Path:
    """Export a run folder / checkpoint (or re-export an export) to ``out``; returns ``out``.

    Args:
        path: what :func:`hamjepa.load` accepts.
        out: the export folder; it must be empty or absent (``force=True`` replaces an earlier export).
        force: overwrite the files of an earlier export in ``out``.
    """
    import yaml

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InferenceError(f"export: {out} is a file; pass a folder path for --out")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MANIFEST_NAME).is_file():
            raise InferenceError(f"export: {out} is not empty and holds no earlier export; pick a new --out folder")
        if not force:
            raise InferenceError(f"export: {out} already holds an export; pass --force to replace it")
    model = load(path, device="cpu")
    out.mkdir(parents=True, exist_ok=True)
    (out / METRICS_FILE).unlink(missing_ok=True)  # an earlier export's metrics must not outlive --force

    objective_name = str(model.config.get("objective", {}).get("name", "?"))
    meta = {"format": "pt", "hamjepa_export": str(EXPORT_FORMAT), "objective": objective_name}
    write_safetensors(out / ENCODER_FILE, _plain_tensors(model.encoder.state_dict()), meta)
    write_safetensors(out / OBJECTIVE_FILE, _plain_tensors(model.objective.state_dict()), meta)
    artifacts = export_artifacts(model.encoder, model.preprocess.crop)
    for artifact in artifacts:
        write_safetensors(out / artifact.file, _plain_tensors(artifact.tensors), {**meta, **artifact.metadata})
    (out / CONFIG_FILE).write_text(yaml.safe_dump(model.config, sort_keys=False))
    files = [ENCODER_FILE, OBJECTIVE_FILE, *(a.file for a in artifacts), CONFIG_FILE]
    if model.metrics is not None:
        (out / METRICS_FILE).write_text(json.dumps(model.metrics, indent=2, default=str) + "\n")
        files.append(METRICS_FILE)
    manifest: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "hamjepa_version": __version__,
        "export_commit": git_commit(),
        "training_commit": _training_commit(model),
        "source": str(model.info.get("checkpoint", model.source)),
        "objective": objective_name,
        "plugins": list(model.info.get("plugins", [])),
        "epoch": model.epoch,
        "step": model.step,
        "readouts": list(model.readouts),
        "preprocess": model.preprocess.to_dict(),
        "encoder": _describe(model.encoder),
        "backbones": [{"file": a.file, **a.manifest} for a in artifacts],
        "files": {name: _sha256(out / name) for name in files},
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    (out / CARD_FILE).write_text(render_model_card(model, manifest, [a.card_markdown for a in artifacts]))
    return out


def _describe(encoder: nn.Module) -> str:
    describe = getattr(encoder, "describe", None)
    return str(describe()) if describe is not None else type(encoder).__name__


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InferenceError(f"load: {folder / MANIFEST_NAME} is unreadable ({err}); re-export the run") from None
    if manifest.get("format") != EXPORT_FORMAT:
        raise InferenceError(
            f"load: {folder} is export format {manifest.get('format')!r}, this version reads {EXPORT_FORMAT}; "
            "re-export the run with this version"
        )
    for name, digest in manifest.get("files", {}).items():
        file = folder / name
        if not file.is_file():
            raise InferenceError(f"load: {file} is missing from the export; re-export the run")
        if _sha256(file) != digest:
            raise InferenceError(f"load: {file} does not match its sha256 in {MANIFEST_NAME}; re-export the run")
    return manifest


def load_export(folder: str | Path, *, device: torch.device) -> HamjepaModel:
    """Rebuild a :class:`HamjepaModel` from an export folder (checksums verified, no pickle)."""
    import yaml
    from safetensors.torch import load_file

    folder = Path(folder)
    manifest = _read_manifest(folder)
    config = yaml.safe_load((folder / CONFIG_FILE).read_text())
    plugins = [m for m in manifest.get("plugins", []) if isinstance(m, str)]
    try:
        cfg = config_from_dict(config)
    except ValueError as err:
        hint = missing_plugins_hint(plugins)
        raise InferenceError(f"load: {folder / CONFIG_FILE} cannot be read by this version: {err}{hint}") from None
    encoder, objective = build_model(cfg)
    load_state_strict(encoder, load_file(str(folder / ENCODER_FILE)), "encoder", folder / ENCODER_FILE)
    load_state_strict(objective, load_file(str(folder / OBJECTIVE_FILE)), "objective", folder / OBJECTIVE_FILE)
    metrics_file = folder / METRICS_FILE
    p = manifest["preprocess"]
    return HamjepaModel(
        encoder=encoder,
        objective=objective,
        config=config,
        preprocess=EvalPreprocess(
            resize=int(p["resize"]), crop=int(p["crop"]), mean=tuple(p["mean"]), std=tuple(p["std"])
        ),
        device=device,
        source=folder,
        metrics=json.loads(metrics_file.read_text()) if metrics_file.is_file() else None,
        epoch=int(manifest.get("epoch", 0)),
        step=int(manifest.get("step", 0)),
        info={"export": str(folder), "training_commit": manifest.get("training_commit"), "plugins": plugins},
    )
