"""Export per encoder: the files each encoder asks for, and the card's plain-library recipes reproduce ``embed``.

The ResNet recipe needs only torch, torchvision and safetensors; the ViT recipe only torch, timm and
safetensors. Each is executed from the exported model card and must give exactly ``hamjepa.load(...).embed``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tests.inference.helpers import make_run

import hamjepa
from hamjepa.inference.export import export_run

TINY_VIT = {"model.depth": 2, "model.embed_dim": 48, "model.num_heads": 3}


def _images(n: int = 3, size: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def _run_card_recipe(export: Path, needle: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    blocks = re.findall(r"```python\n(.*?)```", (export / "README.md").read_text(), re.S)
    recipe = next(b for b in blocks if needle in b)
    monkeypatch.chdir(export)
    namespace: dict = {"__name__": "card_recipe"}
    exec(compile(recipe, "README.md", "exec"), namespace)
    return namespace


@pytest.mark.parametrize(
    ("config", "overrides"),
    [
        ("cifar100_hamjepa", {}),
        ("cifar100_sigreg", {}),  # no q/p split
        ("cifar100_hamjepa", {"model.stem": "imagenet", "model.token_hw": 1}),  # pooled grid
    ],
)
def test_plain_torchvision_recipe_gives_the_embedding(
    config: str, overrides: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(tmp_path, config, **overrides)
    export = export_run(run, tmp_path / "export")
    manifest = json.loads((export / "hamjepa_export.json").read_text())
    assert [b["file"] for b in manifest["backbones"]] == ["resnet18_backbone.safetensors"]
    assert manifest["encoder"].startswith("ResNet-18")
    card = (export / "README.md").read_text()
    assert f"| encoder | {manifest['encoder']} (`model.name: resnet18_tokens`) |" in card
    namespace = _run_card_recipe(export, "torchvision.models.resnet18()", monkeypatch)
    model = hamjepa.load(export, device="cpu")
    images = _images()
    assert torch.equal(namespace["embed"](model.preprocess(images)), model.embed(images))


def test_vit_export_loads_in_timm_and_its_recipe_gives_the_embedding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    timm = pytest.importorskip("timm", reason="the ViT encoder needs timm (pip install hamjepa[vit])")
    run = make_run(tmp_path, "cifar100_vit_hamjepa", **TINY_VIT)
    export = export_run(run, tmp_path / "export")
    files = sorted(p.name for p in export.iterdir())
    assert "vit_backbone.safetensors" in files and "resnet18_backbone.safetensors" not in files
    manifest = json.loads((export / "hamjepa_export.json").read_text())
    (backbone,) = manifest["backbones"]
    assert backbone["architecture"] == "timm" and backbone["arch"] == "vit_tiny_patch16_224"
    card = (export / "README.md").read_text()
    assert "ResNet" not in card and "`model.name: vit`" in card and "ViT (timm `vit_tiny_patch16_224`" in card

    model = hamjepa.load(export, device="cpu")
    loaded = timm.create_model(
        backbone["arch"],
        pretrained=True,
        pretrained_cfg_overlay=dict(file=str(export / backbone["file"]), num_classes=0),
        **backbone["create_kwargs"],
    ).eval()
    x = model.preprocess(_images())
    with torch.no_grad():
        assert torch.equal(loaded.forward_features(x), model.encoder.backbone_features(x))
    state = load_file(str(export / backbone["file"]))
    assert set(state) == set(loaded.state_dict())

    namespace = _run_card_recipe(export, "timm.create_model(", monkeypatch)
    images = _images()
    assert torch.equal(namespace["embed"](model.preprocess(images)), model.embed(images))
    assert model.readouts == ("q", "p", "qp")


def test_the_recipe_in_using_a_model_is_the_card_recipe_of_a_cifar_run() -> None:
    from hamjepa.models.resnet_export import torchvision_recipe

    page = (Path(__file__).resolve().parents[2] / "docs" / "USING_A_MODEL.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "token_proj.weight" in b)
    recipe = torchvision_recipe(
        stem="cifar", kept_stages=["layer1", "layer2", "layer3"], image_size=32, token_hw=None, split_qp=True
    )
    assert block == recipe + "\n"
