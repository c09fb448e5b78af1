"""``hamjepa eval RUN --data ...``: transfer evaluation on generated packed data and on imagenette-mini."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.inference.helpers import make_run

from hamjepa.cli import main
from hamjepa.evaluation import EvalOptions
from hamjepa.inference.export import export_run
from hamjepa.inference.transfer import evaluate_transfer


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("transfer"))


def _generated_npz(path: Path, size: int = 24, classes: int = 3) -> Path:
    """A packed .npz at another resolution than the run's 32 px: class-tinted noise, 4 train / 2 test per class."""
    rng = np.random.default_rng(0)
    tint = rng.integers(0, 160, (classes, 1, 1, 3))

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % classes
        return (tint[y] + rng.integers(0, 90, (n, size, size, 3))).astype(np.uint8), y

    (xtr, ytr), (xte, yte) = split(4 * classes), split(2 * classes)
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return path


TINY = EvalOptions(k_values=(1, 3), probe_epochs=1, cosine_pairs=200, plots=False, progress=False)


def test_eval_on_generated_npz_names_the_data_set(run: Path, tmp_path: Path) -> None:
    npz = _generated_npz(tmp_path / "gen24.npz")
    metrics = evaluate_transfer(run, npz, device="cpu", options=TINY)
    out = run / "eval_gen24"
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics, default=str))
    assert metrics["dataset"] == "gen24" and metrics["num_classes"] == 3
    assert (metrics["n_train"], metrics["n_test"]) == (12, 6)
    # 24 px images were resized to the run's 32 px: a 24 px input would give 6x6 tokens (D = 1152), not 8x8
    assert [metrics["readouts"][r]["feature_dim"] for r in ("q", "p", "qp")] == [1024, 1024, 2048]
    # the standard protocol too: the pooled layer3 feature, weighted kNN (k <= 12 train images) and SGD probe
    pooled = metrics["standard_readouts"]["pooled"]
    assert (pooled["protocol"], pooled["feature_dim"], pooled["knn"]["k_values"]) == ("standard", 256, [10])
    assert metrics["protocols"]["standard"]["knn"]["k_dropped"] == [20, 100, 200]
    report = (out / "report.md").read_text()
    assert "- dataset: gen24 (3 classes, 12 train / 6 test)" in report
    assert not (run / "eval").exists()  # the run's own evaluation is left alone


def test_transfer_keeps_the_objectives_extra_readout(tmp_path: Path) -> None:
    """A HamSIGReg run's "ham" readout is evaluated on the other data set too, as in its own evaluation."""
    (tmp_path / "hamsigreg").mkdir()
    run = make_run(tmp_path / "hamsigreg", "cifar100_hamsigreg")
    metrics = evaluate_transfer(run, _generated_npz(tmp_path / "gen24.npz"), device="cpu", options=TINY)
    assert list(metrics["readouts"]) == ["z", "ham"]


def test_eval_cli_routes_data_to_the_transfer_evaluation(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hamjepa.inference import transfer

    calls: list[dict] = []
    monkeypatch.setattr(transfer, "evaluate_transfer", lambda *a, **k: calls.append({"args": a, **k}))
    argv = ["eval", str(run), "--data", "c10.npz", "--data-name", "cifar10", "--subset", "50", "--device", "cpu"]
    assert main([*argv, "--probe-epochs", "3", "--k", "1", "20", "--workers", "0"]) == 0
    (call,) = calls
    assert call["args"] == (str(run), "c10.npz") and call["name"] == "cifar10" and call["subset"] == 50
    assert (call["num_workers"], call["batch_size"], call["device"]) == (0, 256, "cpu")
    assert call["options"].probe_epochs == 3 and call["options"].k_values == (1, 20)
    assert call["options"].protocols == ("token", "standard")


@pytest.mark.realdata
def test_eval_on_an_imagenette_mini_subset_from_an_export(run: Path, tmp_path: Path, shared_data: Path) -> None:
    export = export_run(run, tmp_path / "export")
    options = EvalOptions(k_values=(1, 5), probe_epochs=1, cosine_pairs=200, plots=False, progress=False)
    metrics = evaluate_transfer(
        export, shared_data / "imagenette-mini", subset=20, num_workers=0, device="cpu", options=options
    )
    assert metrics["dataset"] == "imagenette-mini" and metrics["num_classes"] == 10
    assert (metrics["n_train"], metrics["n_test"]) == (20, 20)
    assert metrics["readouts"]["qp"]["feature_dim"] == 2048  # JPEGs resized + cropped to the run's 32 px
    report = (export / "eval_imagenette-mini" / "report.md").read_text()
    assert "- dataset: imagenette-mini (10 classes, 20 train / 20 test)" in report


def test_transfer_flags_without_data_and_bad_data_are_one_line_errors(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv, needle in (
        (["eval", str(run), "--subset", "10"], "--subset only apply with --data"),
        (["eval", str(run), "--data", str(tmp_path / "missing.npz")], "does not exist"),
        (["eval", str(run), "--data", str(tmp_path / "x.csv")], "does not exist"),
    ):
        assert main([*argv, "--device", "cpu", "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and needle in err, err
    (tmp_path / "x.csv").write_text("a,b\n")
    assert main(["eval", str(run), "--data", str(tmp_path / "x.csv"), "--device", "cpu"]) == 2
    assert "not a packed .npz" in capsys.readouterr().err
