"""Typed configuration: shipped configs load, mistakes fail loudly with the key and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import pytest
from torch import nn

from hamjepa import config
from hamjepa.components import CATALOG, config_from_dict, load_config
from hamjepa.config import ComponentCatalog, Config, ConfigError, apply_overrides, load_yaml
from hamjepa.objectives import Objective, available_objectives, get_objective_class
from hamjepa.objectives.registry import DEFAULT_OBJECTIVE, OBJECTIVES

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


class _DeclaredMLPObjective(Objective):
    """A test-local objective that declares an MLP predictor and the phase split (no registration)."""

    predictor_kind: ClassVar[Literal["hamiltonian", "mlp"] | None] = "mlp"
    needs_phase_split: ClassVar[bool] = True
    supports_compiled_step: ClassVar[bool] = False

    def __init__(self, *, predictor: nn.Module, weight: float = 1.0) -> None:
        super().__init__()
        self.predictor, self.weight = predictor, weight


@dataclass(frozen=True)
class _TestCatalog:
    """A :class:`ComponentCatalog` of the test's own: the library's encoders, one objective of this file."""

    default_objective: str = "declared_mlp"
    default_encoder: str = CATALOG.default_encoder

    def objective_class(self, name: str) -> type:
        if name != "declared_mlp":
            raise ValueError(f"unknown objective {name!r}; available: declared_mlp.")
        return _DeclaredMLPObjective

    def encoder_class(self, name: str) -> type:
        return CATALOG.encoder_class(name)

    def objective_names(self) -> list[str]:
        return ["declared_mlp"]


HAMJEPA = next(p for p in CONFIGS if p.stem == "cifar100_hamjepa")


def _with_catalog(*overrides: str) -> Config:
    values = apply_overrides(load_yaml(HAMJEPA), ["objective={name: declared_mlp}", *overrides])
    return config.config_from_dict(values, catalog=_TestCatalog())


def test_validation_uses_what_the_objective_class_declares() -> None:
    assert isinstance(_TestCatalog(), ComponentCatalog) and isinstance(CATALOG, ComponentCatalog)
    cfg = _with_catalog("predictor.kind=mlp", "objective.weight=2")
    assert cfg.objective == {"name": "declared_mlp", "weight": 2.0}
    with pytest.raises(ConfigError, match=r"'declared_mlp' uses a mlp predictor but 'predictor.kind' = hamiltonian; "):
        _with_catalog("predictor.kind=hamiltonian")
    with pytest.raises(ConfigError, match=r"'declared_mlp' needs a predictor .* set predictor.kind=mlp"):
        _with_catalog("predictor.kind=none")
    with pytest.raises(ConfigError, match=r"'declared_mlp' needs the phase split .* set model.split_qp=true"):
        _with_catalog("predictor.kind=mlp", "model.split_qp=false")
    with pytest.raises(ConfigError, match=r"supports_compiled_step = False.*use train.step=eager"):
        _with_catalog("predictor.kind=mlp", "train.step=compiled")
    with pytest.raises(ConfigError, match=r"'objective.name': unknown objective 'hamjepa'; available: declared_mlp"):
        config.config_from_dict(load_yaml(HAMJEPA), catalog=_TestCatalog())
    values = load_yaml(HAMJEPA)
    values.pop("objective")
    values["predictor"]["kind"] = "mlp"  # no objective section: the catalog's default objective
    assert config.config_from_dict(values, catalog=_TestCatalog()).objective == {"name": "declared_mlp"}


def test_the_builtin_objectives_declare_their_needs() -> None:
    declared = {
        name: (cls.predictor_kind, cls.needs_phase_split)
        for name in available_objectives()
        for cls in [get_objective_class(name)]
    }
    assert declared["hamjepa"] == ("hamiltonian", True) and declared["mlp_hjepa"] == ("mlp", True)
    for name in ("lejepa", "bijepa", "hamsigreg", "vicreg", "visreg"):
        assert declared[name] == (None, False), name
    assert all(get_objective_class(name).description for name in available_objectives())


def test_an_old_config_without_objective_section_means_the_default_objective() -> None:
    values = load_yaml(Path(__file__).resolve().parents[1] / "models" / "fixtures" / "config_v0.yaml")
    values.pop("objective")
    cfg = config_from_dict(values)
    assert cfg.objective["name"] == DEFAULT_OBJECTIVE == CATALOG.default_objective
    assert config_from_dict(cfg.to_dict()) == cfg


def test_the_config_layer_needs_a_catalog_handed_in() -> None:
    with pytest.raises(TypeError, match="catalog"):
        config.load_config(CONFIGS[0])  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="catalog"):
        config.config_from_dict({})  # type: ignore[call-arg]


def test_a_component_registered_later_is_visible_through_the_catalog() -> None:
    """What a plugin module does: register after the library is imported; ``CATALOG`` looks up at call time."""
    values = apply_overrides(load_yaml(HAMJEPA), ["objective={name: declared_mlp, weight: 3}", "predictor.kind=mlp"])
    with pytest.raises(ConfigError, match="unknown objective 'declared_mlp'"):
        config_from_dict(values)
    with OBJECTIVES.temporarily("declared_mlp", _DeclaredMLPObjective):
        assert "declared_mlp" in CATALOG.objective_names()
        assert config_from_dict(values).objective == {"name": "declared_mlp", "weight": 3.0}
    assert "declared_mlp" not in CATALOG.objective_names()
