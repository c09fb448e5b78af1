"""The seams hold: an encoder and an objective registered in this test file alone (no file under src/ edited)
train two steps, evaluate, export and load the export, exactly like built-in ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from tests.engine.helpers import REPO, tiny_overrides, write_tiny_cifar
from torch import Tensor, nn

import hamjepa
from hamjepa.components import config_from_dict
from hamjepa.config import apply_overrides
from hamjepa.engine.trainer import Trainer
from hamjepa.evaluation import EvalOptions
from hamjepa.evaluation.cli import evaluate_run
from hamjepa.inference.export import export_run
from hamjepa.models import Encoder, TokenLayout, flatten_tokens
from hamjepa.models.registry import ENCODERS
from hamjepa.objectives.base import BuildContext, Objective, ObjectiveOutput, StepContext
from hamjepa.objectives.registry import OBJECTIVES

pytestmark = pytest.mark.slow  # two training steps, an evaluation and an export (a few seconds)

NAME = "test_strided_conv_tokens"


class StridedConvTokens(Encoder):
    """Two stride-2 convs -> token head, laid out as ``[q; p]`` tokens (a stand-in for a user's encoder)."""

    def __init__(self, *, width: int = 16, token_dim: int = 8, split_qp: bool = True) -> None:
        super().__init__()
        if split_qp and token_dim % 2:
            raise ValueError(f"token_dim={token_dim} is odd but split_qp=True")
        self.token_dim, self.split_qp = token_dim, split_qp
        self.trunk = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, stride=2, padding=1)
        )
        self.head = nn.Sequential(nn.Conv2d(width, token_dim, 1, bias=False), nn.BatchNorm2d(token_dim))

    def token_layout(self, image_size: int) -> TokenLayout:
        side = (image_size + 3) // 4
        return TokenLayout(grid=(side, side), channels=self.token_dim, split_qp=self.split_qp)

    def output_dim(self, image_size: int) -> int:
        return self.token_layout(image_size).dim

    def pooled_features(self, images: Tensor) -> Tensor:
        return self.trunk(images).mean(dim=(2, 3))

    def forward(self, images: Tensor) -> Tensor:
        return flatten_tokens(self.head(self.trunk(images)), split_qp=self.split_qp)

    def describe(self) -> str:
        return "two strided convs (test encoder)"


OBJECTIVE = "test_projected_view_mse"


class ProjectedViewMSE(Objective):
    """Predict view 1 from view 0 with a linear map, compared on this step's random projection of ``z`` (a
    stand-in for a user's objective: it declares its needs, is built from the context, draws per step and exposes
    its predictor)."""

    description = "projected view MSE (test objective)"

    def __init__(self, *, dim: int, proj_dim: int = 4, seed: int = 0) -> None:
        super().__init__()
        self.dim, self.proj_dim, self.seed = dim, proj_dim, seed
        self.predictor = nn.Linear(dim, dim)

    @classmethod
    def from_context(cls, ctx: BuildContext, **kwargs: object) -> ProjectedViewMSE:
        return cls(**{"dim": ctx.dim, "seed": ctx.seed, **kwargs})  # type: ignore[arg-type]

    def draw(self, step: int, z_shape: tuple[int, int, int], device: torch.device) -> StepContext:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        projection = torch.randn(z_shape[-1], self.proj_dim, generator=gen)
        return StepContext(step, {"projection": projection.to(device)})

    def forward(self, z: Tensor, ctx: StepContext, z_target: Tensor | None = None) -> ObjectiveOutput:
        self.check_views(z)
        self.check_no_target(z_target, type(self).__name__)
        r = ctx.draw("projection", type(self).__name__).to(z.dtype)
        pred = ((self.predictor(z[0]) - z[1].detach()) @ r).pow(2).mean()
        scale = (z.pow(2).mean() - 1.0).pow(2)
        loss = pred + scale
        return ObjectiveOutput(loss, {"pred": pred.detach(), "scale": scale.detach()})

    def predictors(self) -> dict[str, nn.Module]:
        return {"predictor": self.predictor}

    def predict(self, z: Tensor, direction: int = 1) -> Tensor:
        if direction != 1:
            raise ValueError("ProjectedViewMSE predicts forward only (direction=+1)")
        return self.predictor(z)


@pytest.fixture(scope="module")
def registered() -> Iterator[None]:
    with ENCODERS.temporarily(NAME, StridedConvTokens), OBJECTIVES.temporarily(OBJECTIVE, ProjectedViewMSE):
        yield


@pytest.mark.parametrize("config", ["cifar100_hamjepa", "cifar100_sigreg"])
def test_an_encoder_from_a_test_file_trains_evaluates_exports_and_loads(
    config: str, registered: None, tmp_path: Path
) -> None:
    data = write_tiny_cifar(tmp_path / "tiny.npz", n_train=16, n_test=16)
    values = yaml.safe_load((REPO / "configs" / f"{config}.yaml").read_text())
    split = values["model"]["split_qp"]
    values["model"] = {"name": NAME, "width": 8, "split_qp": split}
    overrides = tiny_overrides(data, **{"train.max_steps": 2, "train.epochs": 1, "data.eval_subset": 16})
    cfg = config_from_dict(apply_overrides(values, overrides))
    assert cfg.model.kwargs == {"width": 8, "token_dim": 8, "split_qp": split}
    run = tmp_path / "run"
    Trainer(cfg, run_dir=run).fit()
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 2 and state["config"]["model"]["name"] == NAME
    assert any(k.startswith("trunk.") for k in state["encoder"])

    options = EvalOptions(k_values=(1, 5), probe_epochs=1, cosine_pairs=100, plots=False, progress=False)
    evaluate_run(run, device="cpu", options=options)
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert set(metrics["readouts"]) == ({"q", "p", "qp"} if split else {"z"})

    out = export_run(run, tmp_path / "export")
    manifest = json.loads((out / "hamjepa_export.json").read_text())
    assert manifest["backbones"] == [] and manifest["encoder"] == "two strided convs (test encoder)"
    card = (out / "README.md").read_text()
    assert "two strided convs (test encoder)" in card and "ResNet" not in card
    from_run, from_export = hamjepa.load(run, device="cpu"), hamjepa.load(out, device="cpu")
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    z = from_export.embed(images)
    assert z.shape == (3, 8 * 8 * 8) and torch.equal(z, from_run.embed(images))


def test_an_encoder_and_an_objective_from_a_test_file_train_evaluate_export_and_load(
    registered: None, tmp_path: Path
) -> None:
    data = write_tiny_cifar(tmp_path / "tiny.npz", n_train=16, n_test=16)
    values = yaml.safe_load((REPO / "configs" / "cifar100_sigreg.yaml").read_text())
    values["model"] = {"name": NAME, "width": 8, "split_qp": False}
    values["objective"] = {"name": OBJECTIVE, "proj_dim": 3}
    values["predictor"] = {"kind": "none"}
    overrides = tiny_overrides(data, **{"train.max_steps": 2, "train.epochs": 1, "data.eval_subset": 16})
    cfg = config_from_dict(apply_overrides(values, overrides))
    run = tmp_path / "run"
    Trainer(cfg, run_dir=run).fit()
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 2 and state["config"]["objective"] == {"name": OBJECTIVE, "proj_dim": 3}
    assert any(k.startswith("predictor.") for k in state["objective"])
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("pred" in r and "scale" in r for r in lines if r.get("kind") == "train")

    evaluate_run(run, device="cpu", options=EvalOptions(k_values=(1, 5), probe_epochs=1, plots=False, progress=False))
    assert set(json.loads((run / "eval" / "metrics.json").read_text())["readouts"]) == {"z"}
    out = export_run(run, tmp_path / "export")
    assert "projected view MSE (test objective)" in (out / "README.md").read_text()
    from_run, from_export = hamjepa.load(run, device="cpu"), hamjepa.load(out, device="cpu")
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    z = from_export.embed(images)
    assert torch.equal(z, from_run.embed(images))
    assert torch.equal(from_run.predict(z), from_export.predict(z))


def _train_a_docs_example_as_a_user_module(
    tmp_path: Path, *, marker: str, module: str, config: str, section: dict[str, object], check: str
) -> dict[str, object]:
    """extending.md's python block containing ``marker``, saved as the user module ``module``, import-sorted by
    ``ruff --fix`` and imported in a fresh interpreter (no registration order or import cycle to get right),
    trains one step of ``configs/<config>.yaml`` updated with ``section``; ``check`` runs on the loaded ``cfg``.
    Returns the checkpoint."""
    import os
    import re
    import subprocess
    import sys

    page = (REPO / "docs" / "extending.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", page, re.S) if marker in b)
    (tmp_path / f"{module}.py").write_text(code)
    fix = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "I", "--fix", "--isolated", f"{module}.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    if fix.returncode != 0 and "No module named ruff" in fix.stderr:
        pytest.skip("ruff is not installed")
    assert fix.returncode == 0, fix.stdout + fix.stderr
    data = write_tiny_cifar(tmp_path / "tiny.npz", n_train=8, n_test=8)
    values = yaml.safe_load((REPO / "configs" / f"{config}.yaml").read_text())
    values.update(section)
    overrides = tiny_overrides(data, **{"train.max_steps": 1, "train.epochs": 1})
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(apply_overrides(values, overrides)))
    script = (
        f"import {module}\n"
        "from hamjepa.components import load_config\n"
        "from hamjepa.engine.trainer import Trainer\n"
        "cfg = load_config('run.yaml')\n"
        f"{check}\n"
        "Trainer(cfg, run_dir='run').fit()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO / "src")])}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)


def test_the_docs_encoder_example_followed_literally_works(tmp_path: Path) -> None:
    """extending.md's encoder as a user module is selected by the page's YAML and trains one step."""
    import re

    page = (REPO / "docs" / "extending.md").read_text()
    model = next(b for b in re.findall(r"```yaml\n(.*?)```", page, re.S) if "patch_tokens" in b)
    state = _train_a_docs_example_as_a_user_module(
        tmp_path,
        marker="register_encoder(",
        module="my_encoders",
        config="cifar100_hamjepa",
        section=yaml.safe_load(model),
        check="assert cfg.model.name == 'patch_tokens', cfg.model",
    )
    assert state["step"] == 1


def test_the_docs_objective_example_followed_literally_works(tmp_path: Path) -> None:
    """extending.md's objective as a user module is selected by the page's ``objective:`` and trains one step."""
    state = _train_a_docs_example_as_a_user_module(
        tmp_path,
        marker="register_objective(",
        module="my_objectives",
        config="cifar100_sigreg",
        section={"objective": {"name": "view_mse", "budget_weight": 0.2}},
        check="assert cfg.objective['name'] == 'view_mse', cfg.objective",
    )
    assert state["step"] == 1 and state["config"]["objective"]["name"] == "view_mse"
