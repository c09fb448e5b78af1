"""A BiJEPA run's predictors are first-class: ``HamjepaModel.predict``, ``optim.predictor_lr`` and
``hamjepa diagnose RUN`` reach them through ``Objective.predictors()`` / ``Objective.predict``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.inference.helpers import make_run

import hamjepa
from hamjepa.components import config_from_dict
from hamjepa.config import OptimConfig
from hamjepa.diagnostics.learned_report import run_dir_diagnostics
from hamjepa.engine.build import build_model
from hamjepa.engine.optim import build_optimizer
from hamjepa.objectives.bijepa import BiJEPAObjective


@pytest.fixture(scope="module")
def bijepa_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("bijepa"), "cifar100_bijepa", **{"data.eval_subset": 8})


def test_load_predict_uses_the_forward_and_backward_predictors(bijepa_run: Path) -> None:
    model = hamjepa.load(bijepa_run, device="cpu")
    objective = model.objective
    assert isinstance(objective, BiJEPAObjective)
    assert set(model.predictors) == {"predictor_fwd", "predictor_bwd"} and model.predictor is None
    z = torch.randn(3, objective.embed_dim)
    torch.testing.assert_close(model.predict(z), objective.predict(z, 1))
    torch.testing.assert_close(model.predict(z, direction=-1), objective.predictor_bwd(objective.embed(z)))
    assert not torch.allclose(model.predict(z), model.predict(z, direction=-1))


def test_predictor_lr_applies_to_both_bijepa_predictors(bijepa_run: Path) -> None:
    cfg = hamjepa.load(bijepa_run, device="cpu").config
    encoder, objective = build_model(config_from_dict(cfg))
    module = torch.nn.ModuleDict({"encoder": encoder, "objective": objective})
    optimizer, clip = build_optimizer(
        OptimConfig(predictor_lr=1e-2, clip_predictor=False), module, objective, torch.device("cpu")
    )
    groups = {g["name"]: g for g in optimizer.param_groups}
    wanted = {id(p) for m in objective.predictors().values() for p in m.parameters()}
    assert {id(p) for p in groups["predictor"]["params"]} == wanted and groups["predictor"]["lr"] == 1e-2
    assert not wanted & {id(p) for p in groups["main"]["params"]}
    assert not wanted & {id(p) for p in clip}


def test_diagnose_checks_what_applies_to_bijepa_predictors(bijepa_run: Path, tmp_path: Path) -> None:
    result = run_dir_diagnostics(bijepa_run, out_dir=tmp_path, num_states=5, rollout_steps=3, probes=2, dense_samples=1)
    assert result["predictor"] == "BiJEPAObjective (predictor_fwd, predictor_bwd)"
    assert result["symplecticity"] is None and "not a phase space" in result["symplecticity_note"]
    assert result["reconstruction"]["abs_error"]["max"] > 0  # two MLPs: not an exact inverse
    assert result["dense"]["defect_frobenius"] is None and len(result["dense"]["log_abs_det"]) == 1
    assert result["rollout"]["has_energy"] is False
    saved = json.loads((tmp_path / "predictor_diagnostics.json").read_text())
    assert saved["symplecticity"] is None
    assert (tmp_path / "rollout.png").is_file() and (tmp_path / "symplecticity_defect.png").is_file()
