"""hamjepa.load on runs and exports: bit-identical embeddings, inputs of every kind, no pickle, torchvision."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from tests.inference.helpers import make_run

import hamjepa
from hamjepa.evaluation import EvalOptions
from hamjepa.evaluation.cli import evaluate_run
from hamjepa.evaluation.features import extract_features
from hamjepa.inference import EvalPreprocess, InferenceError
from hamjepa.inference.export import export_run

TINY = EvalOptions(k_values=(1, 5), probe_epochs=1, cosine_pairs=200, plots=False, progress=False)


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = make_run(tmp_path_factory.mktemp("api"), **{"data.eval_subset": 8})
    torch.manual_seed(0)
    evaluate_run(run, device="cpu", options=TINY)
    return run


@pytest.fixture(scope="module")
def exported(evaluated_run: Path) -> Path:
    return export_run(evaluated_run, evaluated_run.parent / "export")


def _images(n: int = 6, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_export_gives_bit_identical_embeddings_and_predictions(evaluated_run: Path, exported: Path) -> None:
    from_run, from_export = hamjepa.load(evaluated_run, device="cpu"), hamjepa.load(exported, device="cpu")
    x = _images(3)
    z = from_run.embed(x)
    assert z.shape == (3, 2048) and z.dtype == torch.float32
    assert torch.equal(from_export.embed(x, readout="qp"), z)
    assert torch.equal(from_export.embed(x, readout="q"), z[:, :1024])
    assert torch.equal(from_run.embed(x, readout="p"), z[:, 1024:])
    for direction in (1, -1):
        assert torch.equal(from_run.predict(z, direction), from_export.predict(z, direction))
    ahead = from_run.predict(z, 1)
    assert not torch.equal(ahead, z)
    torch.testing.assert_close(from_run.predict(ahead, -1), z, rtol=0, atol=1e-5)  # leapfrog: exact inverse
    assert from_export.metrics == from_run.metrics and from_run.metrics["dataset"] == "cifar100"
    assert (from_export.epoch, from_export.step) == (2, 8)


def test_embed_equals_the_evaluation_features(evaluated_run: Path) -> None:
    """uint8 images through embed() give exactly the features `hamjepa eval` computes."""
    model = hamjepa.load(evaluated_run, device="cpu")
    x = _images(3)
    feats, _ = extract_features(
        model.encoder, lambda: iter([(x, torch.zeros(3))]), model.preprocess.mean, model.preprocess.std, "cpu"
    )
    assert torch.equal(model.embed(x), feats)


def test_embed_accepts_paths_pil_floats_and_mixed_sizes(evaluated_run: Path, tmp_path: Path) -> None:
    from PIL import Image
    from torchvision.io import write_png

    model = hamjepa.load(evaluated_run, device="cpu")
    x = _images(2)
    paths = [tmp_path / f"img{i}.png" for i in range(2)]
    for img, path in zip(x, paths, strict=True):
        write_png(img, str(path))
    want = model.embed(x, readout="q")
    assert torch.equal(model.embed(paths, readout="q"), want)
    assert torch.equal(model.embed([str(p) for p in paths], readout="q"), want)
    pil = [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in x]
    assert torch.equal(model.embed(pil, readout="q"), want)
    assert torch.equal(model.embed(x.float() / 255, readout="q"), want)
    one = model.embed(x[1], readout="q")  # a single image is a batch of one (conv results depend on the batch)
    assert one.shape == (1, 1024) and torch.equal(model.embed(pil[1], readout="q"), one)
    assert torch.equal(model.embed(paths[1], readout="q"), one)
    assert torch.equal(model.embed([x[0].float() / 255, paths[1]], readout="q"), want)
    # other sizes get the run's evaluation preprocessing (shorter side -> 32, centre crop 32)
    big = torch.nn.functional.interpolate(x[:1].float(), size=(40, 64), mode="nearest").to(torch.uint8)
    assert model.embed([big[0], x[1]]).shape == (2, 2048)


def test_errors_name_the_fix(evaluated_run: Path, tmp_path: Path) -> None:
    model = hamjepa.load(evaluated_run, device="cpu")
    with pytest.raises(InferenceError, match=r"unknown readout 'z'.*valid: q, p, qp"):
        model.embed(_images(1), readout="z")
    with pytest.raises(InferenceError, match="no images given"):
        model.embed([])
    with pytest.raises(InferenceError, match=r"\[N, 3, H, W\]"):
        model.embed(torch.zeros(2, 1, 8, 8))
    with pytest.raises(InferenceError, match="full embeddings"):
        model.predict(torch.zeros(3))
    sigreg = hamjepa.load(make_run(tmp_path, "cifar100_sigreg"), device="cpu")
    assert sigreg.predictor is None and sigreg.readouts == ("z",)  # no phase split: one readout
    assert sigreg.embed(_images(1)).shape == (1, 2048)
    with pytest.raises(InferenceError, match="valid: z"):
        sigreg.embed(_images(1), readout="q")
    with pytest.raises(InferenceError, match="has no predictor"):
        sigreg.predict(torch.zeros(2, 2048))


def test_preprocess_from_config() -> None:
    p = EvalPreprocess.from_config({"data": {"dataset": "imagefolder", "image_size": 224}})
    assert (p.resize, p.crop, p.mean) == (256, 224, (0.485, 0.456, 0.406))
    assert p.geometry(torch.zeros(3, 300, 500, dtype=torch.uint8)).shape == (3, 224, 224)
    c = EvalPreprocess.from_config({"data": {"dataset": "cifar100", "image_size": 32}})
    img = _images(1)[0]
    assert (c.resize, c.crop) == (32, 32) and c.geometry(img) is img  # CIFAR images pass unchanged


def _is_pickle_or_torch_zip(data: bytes) -> bool:
    return data[:1] == b"\x80" or data[:2] == b"PK"  # pickle PROTO opcode / torch.save zip archive


def _check_safetensors_layout(data: bytes) -> None:
    """8-byte header length, a JSON header, then exactly the tensor bytes it describes: no room for a pickle."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
    assert len(data) == 8 + n + max(ends, default=0)


def test_export_holds_no_pickle_and_every_file_loads_safely(exported: Path) -> None:
    names = sorted(p.name for p in exported.iterdir())
    assert names == [
        "README.md",
        "config.yaml",
        "encoder.safetensors",
        "hamjepa_export.json",
        "metrics.json",
        "objective.safetensors",
        "resnet18_backbone.safetensors",
    ]
    for path in exported.iterdir():
        data = path.read_bytes()
        if path.suffix == ".safetensors":
            _check_safetensors_layout(data)
            assert load_file(str(path))
            continue
        assert not _is_pickle_or_torch_zip(data), path.name
        if path.suffix == ".json":
            json.loads(data)
        elif path.suffix == ".yaml":
            assert yaml.safe_load(data)["objective"]["name"] == "hamjepa"
        else:
            assert path.suffix == ".md"
    objective = load_file(str(exported / "objective.safetensors"))
    assert any(k.startswith("predictor.") for k in objective)


def test_model_card_names_the_run_and_its_accuracies(exported: Path) -> None:
    card = (exported / "README.md").read_text()
    metrics = json.loads((exported / "metrics.json").read_text())
    for needle in ("HamJEPA", "cifar100", "2 epochs", "seed 42", "| seed | 42 |", "hamjepa.load("):
        assert needle in card, needle
    commit = json.loads((exported.parent / "run" / "provenance.jsonl").read_text().splitlines()[0])["commit"]
    assert commit and f"| training commit | {commit} |" in card
    assert "Token protocol (the paper's)" in card and "Standard protocol (the field's)" in card
    for name, block in {**metrics["readouts"], **metrics["standard_readouts"]}.items():
        row = next(line for line in card.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"| {100 * block['linear_probe']['top1']:.2f} |" in row
        assert f"| {100 * block['knn']['best_top1']:.2f} ({block['knn']['best_k']}) |" in row
        assert f"| {block['feature_dim']} |" in row


def _card_snippet(export: Path) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (export / "README.md").read_text(), re.S)
    return next(b for b in blocks if "torchvision.models.resnet18()" in b)


@pytest.mark.parametrize("stem", ["cifar", "imagenet"])
def test_torchvision_resnet18_loads_the_backbone(
    stem: str, evaluated_run: Path, exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision

    if stem == "cifar":
        run, export = evaluated_run, exported
    else:
        run = make_run(tmp_path, **{"model.stem": "imagenet"})
        export = export_run(run, tmp_path / "export")
    state = load_file(str(export / "resnet18_backbone.safetensors"))
    net = torchvision.models.resnet18()
    if stem == "cifar":  # the usual CIFAR stem change
        net.conv1 = torch.nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = torch.nn.Identity()
    result = net.load_state_dict(state, strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys and all(k.startswith(("layer4.", "fc.")) for k in result.missing_keys)
    assert {k.split(".")[0] for k in result.missing_keys} == {"layer4", "fc"}
    if stem == "imagenet":
        assert "net.conv1 =" not in _card_snippet(export)
    else:  # without the stem change the CIFAR conv1 does not fit
        with pytest.raises(RuntimeError, match=r"conv1\.weight"):
            torchvision.models.resnet18().load_state_dict(state, strict=False)
    # the model card's own snippet runs and its trunk reproduces the encoder's feature map bit for bit
    monkeypatch.chdir(export)
    namespace: dict = {}
    exec(compile(_card_snippet(export), "README.md", "exec"), namespace)
    model = hamjepa.load(run, device="cpu")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(namespace["trunk"](x), model.encoder.backbone_features(x))
    assert namespace["features"].shape[1] == 256


def test_export_refuses_to_clobber_and_load_checks_integrity(evaluated_run: Path, tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InferenceError, match="not empty"):
        export_run(evaluated_run, tmp_path / "busy")
    out = export_run(evaluated_run, tmp_path / "exp")
    with pytest.raises(InferenceError, match="--force"):
        export_run(evaluated_run, out)
    assert export_run(evaluated_run, out, force=True) == out
    data = bytearray((out / "encoder.safetensors").read_bytes())
    data[-1] ^= 1
    (out / "encoder.safetensors").write_bytes(bytes(data))
    with pytest.raises(InferenceError, match="sha256"):
        hamjepa.load(out)


def test_import_hamjepa_stays_light() -> None:
    import subprocess
    import sys

    code = "import sys, hamjepa; assert callable(hamjepa.load); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_readme_use_a_trained_model_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Use a trained model", 1)[1]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    run = make_run(tmp_path)
    (tmp_path / "runs").mkdir()
    run.rename(tmp_path / "runs" / "cifar100_hamjepa-seed42")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["q"].shape == (4, 1024) and namespace["z_next"].shape == (4, 2048)
    assert np.isfinite(namespace["z_next"].numpy()).all()
