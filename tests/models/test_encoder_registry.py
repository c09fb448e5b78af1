"""The encoder seam: registry, the ``model:`` config section, and backward compatibility with older runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from hamjepa.components import config_from_dict, load_config
from hamjepa.config import ConfigError
from hamjepa.engine.build import build_encoder, build_objective, encoder_context
from hamjepa.models import (
    DEFAULT_ENCODER,
    Encoder,
    TokenEncoder,
    TokenLayout,
    available_encoders,
    get_encoder_class,
    register_encoder,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).with_name("fixtures")


def test_builtin_encoders_are_registered_and_unknown_names_suggest_the_closest() -> None:
    assert {"resnet18_tokens", "vit"} <= set(available_encoders())
    assert get_encoder_class(DEFAULT_ENCODER) is TokenEncoder
    with pytest.raises(ValueError, match=r"unknown encoder 'vitt'; available: .*resnet18_tokens.*Did you mean 'vit'"):
        get_encoder_class("vitt")


def test_register_encoder_refuses_non_encoders_and_name_clashes() -> None:
    with pytest.raises(ValueError, match="Encoder subclass"):
        register_encoder("not_an_encoder")(torch.nn.Linear)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="already registered to TokenEncoder"):

        @register_encoder("resnet18_tokens")
        class Other(Encoder):
            pass

    with pytest.raises(ValueError, match="non-empty"):
        register_encoder("")
    assert "Other" not in {get_encoder_class(name).__name__ for name in available_encoders()}


@pytest.mark.parametrize("name", ["cifar100_hamjepa", "imagenet100_hamjepa", "cifar100_sigreg"])
def test_todays_encoder_keeps_its_state_dict_keys_and_shapes(name: str) -> None:
    """Checkpoints and exports written before the registry load strictly: same keys, same shapes."""
    record = json.loads((FIXTURES / "resnet18_tokens_state_v0.json").read_text())["configs"][name]
    cfg = load_config(ROOT / "configs" / f"{name}.yaml")
    assert cfg.model.name == "resnet18_tokens"
    old = {k: v for k, v in record["model"].items() if k not in ("channels_last", "compile", "sync_batchnorm")}
    assert cfg.model.kwargs == old
    encoder = build_encoder(cfg)
    assert {k: list(v.shape) for k, v in encoder.state_dict().items()} == record["state_dict"]
    assert encoder.output_dim(record["image_size"]) == record["output_dim"]


def test_an_old_config_yaml_without_model_name_loads_and_round_trips(tmp_path: Path) -> None:
    values = yaml.safe_load((FIXTURES / "config_v0.yaml").read_text())
    assert "name" not in values["model"]
    cfg = config_from_dict(values)
    assert cfg.model.name == "resnet18_tokens" and cfg.model.channels_last and cfg.model.sync_batchnorm
    assert cfg.model.kwargs["token_layer"] == "layer3" and cfg.model.kwargs["split_qp"] is True
    saved = cfg.to_dict()
    assert saved["model"] == {"name": "resnet18_tokens", **values["model"]}  # flat, name first, engine keys last
    assert config_from_dict(saved) == cfg


def test_model_section_is_validated_from_the_constructor() -> None:
    path = ROOT / "configs" / "cifar100_hamjepa.yaml"
    with pytest.raises(ConfigError, match=r"'model.token_dim' = 'wide' must be an integer"):
        load_config(path, ["model.token_dim=wide"])
    with pytest.raises(ConfigError, match=r"unknown key 'model.patch_size' for encoder 'resnet18_tokens'.*stem"):
        load_config(path, ["model.patch_size=4"])
    with pytest.raises(ConfigError, match=r"'model.channels_last' = 3 must be true or false"):
        load_config(path, ["model.channels_last=3"])
    with pytest.raises(ConfigError, match=r"'model.name': unknown encoder 'resnet'"):
        load_config(path, ["model.name=resnet"])
    vit = ROOT / "configs" / "cifar100_vit_hamjepa.yaml"
    with pytest.raises(ConfigError, match=r"built for 32 px images.*set model.image_size=224"):
        load_config(vit, ["data.dataset=imagenet100", "data.source=folder", "data.image_size=224"])
    with pytest.raises(ConfigError, match=r"needs the phase split"):
        load_config(vit, ["model.split_qp=false"])


def test_config_validation_builds_nothing_and_draws_no_random_numbers() -> None:
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    load_config(ROOT / "configs" / "cifar100_vit_hamjepa.yaml")
    load_config(ROOT / "configs" / "cifar100_hamjepa.yaml")
    assert torch.equal(torch.rand(4), expected)


def test_objectives_get_the_layout_the_encoder_declares(tmp_path: Path) -> None:
    values = yaml.safe_load((ROOT / "configs" / "cifar100_hamsigreg.yaml").read_text())
    values["model"] = {"name": "vit", "depth": 1, "embed_dim": 24, "num_heads": 2, "token_dim": 16, "token_hw": 4}
    values["model"]["split_qp"] = False
    cfg = config_from_dict(values)
    encoder = build_encoder(cfg)
    assert encoder.token_layout(32) == TokenLayout(grid=(4, 4), channels=16, split_qp=False)
    objective = build_objective(cfg, encoder_context(cfg, encoder))
    layout = objective.metric.layout
    assert layout is not None and (layout.side, layout.channels) == (4, 16)


def test_the_resnet_layout_and_pooled_features() -> None:
    torch.manual_seed(0)
    enc = TokenEncoder(token_layer="layer2", token_dim=8).eval()
    assert enc.token_layout(32) == TokenLayout(grid=(16, 16), channels=8, split_qp=True)
    assert enc.token_layout(32).dim == enc.output_dim(32)
    assert TokenEncoder(projector="mlp", split_qp=False).token_layout(32) is None
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(enc.pooled_features(x), enc.backbone_features(x).mean(dim=(2, 3)))
    assert enc.pooled_features(x).shape == (2, 128)
    assert "ResNet-18 `cifar` stem, tokens from `layer2`" in enc.describe()
