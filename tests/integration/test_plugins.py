"""Components outside the package are first-class: a run whose objective lives in the user's own module is
trained, evaluated, embedded, exported and resumed from the CLI (``hamjepa --import MODULE`` or a
``hamjepa.plugins`` entry point), and without the module every command names it."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tests.engine.helpers import tiny_overrides, write_tiny_cifar

import hamjepa
from hamjepa import plugins
from hamjepa.cli import main
from hamjepa.objectives.registry import OBJECTIVES

PLUGIN = "my_hamjepa_plugin_objectives"
NAME = "plugin_view_mse"

# The objective a user writes in their own module (the current objective interface).
PLUGIN_SOURCE = f'''
import torch
from torch import Tensor

from hamjepa.distributed import all_reduce_sum
from hamjepa.objectives import Objective, ObjectiveOutput, StepContext, register_objective


@register_objective("{NAME}")
class PluginViewMSE(Objective):
    """Mean squared distance between the two views plus a second-moment budget (a plugin's objective)."""

    def __init__(self, *, budget_weight: float = 0.1) -> None:
        super().__init__()
        self.budget_weight = budget_weight

    def forward(self, z: Tensor, ctx: StepContext, z_target: Tensor | None = None) -> ObjectiveOutput:
        self.check_views(z)
        z = z.float()
        stats = all_reduce_sum(torch.stack([(z[0] - z[1]).pow(2).sum(), z.pow(2).sum(), z.new_tensor(z[0].numel())]))
        pred = stats[0] / stats[2]
        budget = (stats[1] / (z.shape[0] * stats[2]) - 1.0) ** 2
        loss = pred + self.budget_weight * budget
        return ObjectiveOutput(loss, {{"pred": pred.detach(), "budget": budget.detach(), "total": loss.detach()}})
'''

CONFIG = f"""
seed: 0
data: {{dataset: cifar100, source: packed, path: unset.npz, batch_size: 8, image_size: 32}}
model: {{stem: cifar, token_layer: layer2, token_hw: 2, token_dim: 8, split_qp: false, projector: identity}}
predictor: {{kind: none}}
objective: {{name: {NAME}, budget_weight: 0.2}}
train: {{epochs: 2}}
"""


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's module in a folder on ``sys.path``; the registry and the plugin record restored afterwards."""
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / f"{PLUGIN}.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(plugins, "_LOADED", [])
    with OBJECTIVES.restoring():
        yield folder
    sys.modules.pop(PLUGIN, None)


def _forget_plugin() -> None:
    """A fresh process: the user's module not imported, its objective unknown."""
    sys.modules.pop(PLUGIN, None)
    if NAME in OBJECTIVES:
        OBJECTIVES.unregister(NAME)
    plugins._LOADED.clear()


def _fails_naming_the_plugin(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    _forget_plugin()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert f"hamjepa --import {PLUGIN} " in err and NAME in err, err


def _write_images(folder: Path, count: int = 3) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


@pytest.mark.slow
def test_a_plugin_objective_trains_evaluates_embeds_exports_and_resumes_from_the_cli(
    tmp_path: Path, plugin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "plugin.yaml"
    config.write_text(CONFIG)
    data = write_tiny_cifar(tmp_path / "tiny.npz", n_train=16, n_test=8)
    run = tmp_path / "run"
    overrides = tiny_overrides(data, **{"train.keep_epoch_checkpoints": "true"})
    plug = ["--import", PLUGIN]

    assert main([*plug, "train", str(config), *overrides, "--run-dir", str(run)]) == 0
    records = [json.loads(line) for line in (run / "provenance.jsonl").read_text().splitlines()]
    assert records[-1]["plugins"] == [PLUGIN]
    finished = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert (finished["epoch"], finished["step"]) == (2, 4)

    # Resume: the run as if killed after epoch 1.
    shutil.copyfile(run / "checkpoints" / "epoch_0001.pt", run / "checkpoints" / "last.pt")
    _fails_naming_the_plugin(["train", "--resume", str(run)], capsys)
    assert main([*plug, "train", "--resume", str(run)]) == 0
    resumed = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert (resumed["epoch"], resumed["step"]) == (2, 4)
    for name, value in finished["encoder"].items():
        assert torch.equal(resumed["encoder"][name], value), name  # resume is exact

    evaluation = ["eval", str(run), "--device", "cpu", "--probe-epochs", "1", "--k", "1", "--no-progress"]
    _fails_naming_the_plugin(evaluation, capsys)
    assert main([*plug, *evaluation]) == 0
    assert json.loads((run / "eval" / "metrics.json").read_text())["readouts"]

    images = _write_images(tmp_path / "images")
    embedding = ["embed", str(run), "--images", str(images), "--out", str(tmp_path / "e.npz"), "--workers", "0"]
    _fails_naming_the_plugin(embedding, capsys)
    assert main([*plug, *embedding, "--no-progress"]) == 0
    assert np.load(tmp_path / "e.npz")["embeddings"].shape[0] == 3

    export = tmp_path / "export"
    _fails_naming_the_plugin(["export", str(run), "--out", str(export)], capsys)
    assert main([*plug, "export", str(run), "--out", str(export)]) == 0
    assert json.loads((export / "hamjepa_export.json").read_text())["plugins"] == [PLUGIN]
    _forget_plugin()
    with pytest.raises(hamjepa.inference.InferenceError, match=f"--import {PLUGIN} "):
        hamjepa.load(export, device="cpu")
    plugins.import_plugins([PLUGIN])
    pixels = torch.rand(2, 3, 32, 32)
    from_export = hamjepa.load(export, device="cpu").embed(pixels)
    assert torch.equal(from_export, hamjepa.load(run, device="cpu").embed(pixels))


def test_an_unimportable_module_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--import", "no_such_module_for_hamjepa", "data", "check", "nothing.npz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --import no_such_module_for_hamjepa: cannot import it (ModuleNotFoundError")
    assert "PYTHONPATH" in err


def test_entry_points_of_the_plugin_group_are_imported_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = "hamjepa_entry_point_probe"
    (tmp_path / f"{module}.py").write_text("IMPORTED = True\n")
    dist = tmp_path / "hamjepa_probe-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hamjepa-probe\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{plugins.ENTRY_POINT_GROUP}]\nprobe = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins, "_LOADED", [])
    monkeypatch.delitem(sys.modules, module, raising=False)
    main(["data", "check", str(tmp_path / "nothing.npz")])  # any command: plugins load before it runs
    capsys.readouterr()
    assert module in sys.modules and plugins.loaded_plugins() == [module]
    assert plugins.missing_plugins_hint([module]) == ""
    assert "--import other_module " in plugins.missing_plugins_hint([module, "other_module"])
    sys.modules.pop(module)
