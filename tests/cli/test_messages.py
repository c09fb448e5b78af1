"""Messages and hints that point somewhere real, default outputs under runs/ (issue 22, item 3)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from tests.evaluation._eval_testutils import TinyEncoder, make_eval_data

from hamjepa.cli import main
from hamjepa.evaluation import EvalOptions, evaluate

TINY = EvalOptions(k_values=(1, 5), probe_epochs=1, probe_batch_size=32, cosine_pairs=100, progress=False)


def _one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err, err
    return err


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder with eval/metrics.json and a transfer evaluation in eval_cifar10/."""
    run = tmp_path_factory.mktemp("runs") / "runA"
    torch.manual_seed(0)
    for folder, dataset in (("eval", "cifar100"), ("eval_cifar10", "cifar10")):
        evaluate(
            TinyEncoder(), make_eval_data(), split_qp=False, out_dir=run / folder, device="cpu", options=TINY,
            config={"objective": {"name": "hamjepa"}}, dataset=dataset, verbose=False,
        )  # fmt: skip
    return run


def test_compare_of_a_missing_or_unevaluated_run_is_one_error_line(
    evaluated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _one_error_line(capsys, ["compare", str(evaluated), str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert "does not exist" in err
    (tmp_path / "fresh").mkdir()
    err = _one_error_line(capsys, ["compare", str(tmp_path / "fresh"), "--out", str(tmp_path / "o")])
    assert "no eval/metrics.json" in err and "hamjepa eval" in err


def test_compare_defaults_under_runs_and_shows_the_data_set(
    evaluated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(evaluated), str(evaluated / "eval_cifar10")]) == 0
    assert not (tmp_path / "compare").exists()
    table = (tmp_path / "runs" / "compare" / "compare.md").read_text()
    assert "| hamjepa | runA | cifar100 | z |" in table
    assert "| hamjepa | runA | cifar10 | z |" in table  # the transfer run is named after its run folder


def test_compare_has_a_description() -> None:
    from hamjepa.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert "data set" in sub["compare"].description and "eval_<data set>" in sub["compare"].description


def test_diagnose_errors_have_the_error_prefix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _one_error_line(capsys, ["diagnose", str(tmp_path / "nope")])
    assert "neither 'toy' nor an existing run" in err
    (tmp_path / "empty_run").mkdir()
    _one_error_line(capsys, ["diagnose", str(tmp_path / "empty_run")])


def test_diagnose_toy_writes_under_runs_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def fake(out: Path, **kwargs: object) -> dict:
        seen["out"] = out
        return {"systems": {}}

    monkeypatch.setattr("hamjepa.diagnostics.toy_report.run_toy_diagnostics", fake)
    monkeypatch.chdir(tmp_path)
    assert main(["diagnose", "toy"]) == 0
    assert seen["out"] == Path("runs") / "diagnostics_toy"


@pytest.mark.parametrize(
    ("argv", "target", "hint"),
    [
        (["embed", "RUN", "--images", "x", "--out", "e.npz"], "hamjepa.inference.cli.run_embed", "OUT.partial/"),
        (["export", "RUN", "--out", "x"], "hamjepa.inference.cli.run_export", "delete it"),
        (["eval", "RUN"], "hamjepa.evaluation.cli.run_eval", "same `hamjepa eval` command"),
        (["train", "c.yaml"], "hamjepa.engine.cli._run_train", "hamjepa train --resume RUN_DIR"),
    ],
)
def test_ctrl_c_says_each_commands_own_way_to_continue(
    argv: list[str], target: str, hint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(target, interrupted)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted; ") and hint in err
    if argv[0] != "train":
        assert "--resume" not in err


def test_hints_name_real_options(tmp_path: Path) -> None:
    from hamjepa.components import load_config
    from hamjepa.config import ConfigError
    from hamjepa.data.imagefolder import ImageFolderSource
    from hamjepa.data.sources import DataError, load_packed

    with pytest.raises(DataError) as packed:
        load_packed(tmp_path / "missing.npz")
    with pytest.raises(DataError) as folder:
        ImageFolderSource(tmp_path / "missing", "train")
    (tmp_path / "tree").mkdir()
    with pytest.raises(DataError) as split:
        ImageFolderSource(tmp_path / "tree", "val")
    with pytest.raises(ConfigError) as config:
        load_config(tmp_path / "missing.yaml")
    texts = [str(e.value) for e in (packed, folder, split, config)]
    for text in texts:
        assert "--data-root" not in text and "right --data" not in text and "one of the YAML files" not in text
    assert "data.path" in texts[0] and "data.path" in texts[1] and "hamjepa config" in texts[3]


def test_eval_of_an_export_without_data_says_to_pass_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "hamjepa_export.json").write_text("{}")
    err = _one_error_line(capsys, ["eval", str(export)])
    assert "export folder" in err and "--data" in err


def test_explicit_k_is_checked_before_feature_extraction(tmp_path: Path) -> None:
    from hamjepa.errors import HamjepaError

    class Exploding(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise AssertionError("features were extracted before k was checked")

    data = make_eval_data(n_train=12)
    data.n_train = 12
    options = EvalOptions(k_values=(5, 1000), progress=False)
    with pytest.raises(HamjepaError, match=r"k = 1000 exceeds the 12 train images; pass --k values up to 12"):
        evaluate(Exploding(), data, split_qp=False, out_dir=tmp_path, device="cpu", options=options)


def test_eval_data_knows_its_train_size() -> None:
    import numpy as np

    from hamjepa.data.eval_data import eval_data_from_arrays
    from hamjepa.data.sources import ArraySplits

    x = np.zeros((10, 4, 4, 3), dtype=np.uint8)
    y = np.arange(10) % 2
    splits = ArraySplits(x_train=x, y_train=y, x_test=x, y_test=y, class_names=["a", "b"])
    assert eval_data_from_arrays(splits, batch_size=4, mean=(0, 0, 0), std=(1, 1, 1)).n_train == 10
    assert eval_data_from_arrays(splits, batch_size=4, mean=(0, 0, 0), std=(1, 1, 1), subset=4).n_train == 4


def test_eval_data_and_embed_use_the_same_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setattr(
        "hamjepa.inference.transfer.evaluate_transfer", lambda *a, **kw: seen.setdefault("eval", kw["num_workers"])
    )
    monkeypatch.setattr("hamjepa.inference.embed.list_images", lambda spec: None)
    monkeypatch.setattr("hamjepa.inference.model.load", lambda run, device: None)

    def fake_embed(model: object, images: object, out: Path, **kw: object) -> SimpleNamespace:
        seen["embed"] = kw["num_workers"]
        return SimpleNamespace(out=out, n_embedded=0, corrupt=[], chunks_reused=0, chunks_total=1)

    monkeypatch.setattr("hamjepa.inference.embed.embed_images", fake_embed)
    assert main(["eval", "RUN", "--data", "d.npz"]) == 0
    assert main(["embed", "RUN", "--images", "x", "--out", "e.npz"]) == 0
    assert seen == {"eval": 2, "embed": 2}


def test_truncated_checkpoint_message_cuts_at_a_word(tmp_path: Path) -> None:
    from hamjepa.engine.checkpoint import clip_words, load_checkpoint
    from hamjepa.errors import CheckpointError

    assert clip_words("alpha beta gamma", 100) == "alpha beta gamma"
    assert clip_words("alpha  beta\ngamma delta", 16) == "alpha beta..."
    assert len(clip_words("x" * 50, 20)) == 20
    good = tmp_path / "full.pt"
    torch.save({"encoder": {"w": torch.zeros(1000)}, "config": {}}, good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(cut)
    detail = str(err.value).split("(", 1)[1].rsplit(")", 1)[0]
    if detail.endswith("..."):
        words = detail[:-3].split()
        assert words and all(w.isprintable() for w in words)
        assert detail[-4] != " "


def test_train_progress_false_silences_the_evaluation_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    from hamjepa.config import Config
    from hamjepa.evaluation.callbacks import EvalAtEndCallback

    seen = {}
    monkeypatch.setattr(
        "hamjepa.evaluation.callbacks.evaluate_run", lambda run, options=None: seen.setdefault("o", options)
    )
    cfg = Config()
    cfg.train.progress = False
    EvalAtEndCallback().on_train_end(SimpleNamespace(is_main=True, cfg=cfg), SimpleNamespace(run_dir=Path("r")))
    assert seen["o"].progress is False


def test_embed_says_why_a_tree_with_a_stray_image_gets_no_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hamjepa.inference.embed import list_images

    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.png").write_bytes(b"")
    images = list_images(tmp_path)
    assert images.labels == [0, 1] and capsys.readouterr().err == ""
    (tmp_path / "stray.jpg").write_bytes(b"")
    images = list_images(tmp_path)
    assert images.labels is None and len(images.files) == 3
    err = capsys.readouterr().err
    assert "WITHOUT labels" in err and "stray.jpg" in err
