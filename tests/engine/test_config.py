"""Typed configuration: shipped configs load, mistakes fail loudly with the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from hamjepa.config import ConfigError, apply_overrides, config_from_dict, load_config, load_yaml

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_all_shipped_configs_load_with_paper_values() -> None:
    names = {p.stem for p in CONFIGS}
    assert {
        "cifar100_hamjepa",
        "cifar100_sigreg",
        "cifar100_mlp_hjepa",
        "imagenet100_hamjepa",
        "imagenet100_sigreg",
    } <= names
    cfgs = {p.stem: load_config(p) for p in CONFIGS}
    h = cfgs["cifar100_hamjepa"]
    assert (h.data.batch_size, h.predictor.dt, h.predictor.steps, h.optim.lr) == (512, 0.05, 2, 5e-4)
    assert h.objective["match"] == "q" and h.objective["p_weight"] == 0.2 and h.objective["backward_direction"] == -1
    i = cfgs["imagenet100_hamjepa"]
    assert i.objective["match"] == "qp" and i.optim.predictor_lr == 5e-5 and i.model.kwargs["token_hw"] == 8
    sigreg = cfgs["cifar100_sigreg"]
    assert sigreg.model.kwargs["split_qp"] is False and sigreg.predictor.kind == "none"
    assert cfgs["cifar100_mlp_hjepa"].predictor.kind == "mlp"


def test_dotted_overrides_and_types() -> None:
    path = CONFIGS[0]
    cfg = load_config(path, ["train.epochs=80", "seed=1", "optim.lr=1e-3", "model.token_hw=null"])
    assert cfg.train.epochs == 80 and cfg.seed == 1 and cfg.optim.lr == 1e-3 and cfg.model.kwargs["token_hw"] is None
    assert isinstance(cfg.optim.lr, float)


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("train.epoch=3", "Did you mean 'epochs'"),
        ("trian.epochs=3", "Did you mean 'train'"),
        ("train.epochs=ten", "must be an integer"),
        ("model.stem=cifra", "Did you mean 'cifar'"),
        ("objective.p_wieght=0.1", "Did you mean 'p_weight'"),
        ("objective.name=hamjepaa", "Did you mean 'hamjepa'"),
        ("model.token_dim=31", "odd"),
        ("model.projector=mlp", "requires projector='identity'"),
        ("model.name=resnet18_token", "Did you mean 'resnet18_tokens'"),
        ("model.kwargs={}", "unknown key 'model.kwargs'"),
        ("predictor.learn_dt=true", "learn_dt"),
        ("predictor.kind=none", "needs a predictor"),
        ("model.split_qp=false", "phase split"),
        ("train.epochs", "key.subkey=value"),
    ],
)
def test_mistakes_name_key_and_fix(override: str, needle: str) -> None:
    hamjepa = next(p for p in CONFIGS if p.stem == "cifar100_hamjepa")
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        load_config(hamjepa, [override])


def test_sigreg_refuses_a_predictor_and_yaml_errors_name_the_file(tmp_path: Path) -> None:
    sigreg = next(p for p in CONFIGS if p.stem == "cifar100_sigreg")
    with pytest.raises(ConfigError, match=r"predictor\.kind=none"):
        load_config(sigreg, ["predictor.kind=hamiltonian"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_round_trip_through_plain_dict() -> None:
    cfg = load_config(CONFIGS[0])
    again = config_from_dict(cfg.to_dict())
    assert again == cfg
    values = apply_overrides(load_yaml(CONFIGS[0]), ["data.batch_size=64"])
    assert values["data"]["batch_size"] == 64
