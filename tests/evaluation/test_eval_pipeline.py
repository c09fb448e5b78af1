"""End-to-end ``evaluate``, ``compare``, the CLI parser, the online monitor and a real-data slice."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.evaluation._eval_testutils import TinyEncoder, TinyEvalData, batches, make_eval_data

from hamjepa.evaluation import EvalOptions, OnlineKNNMonitor, compare_runs, evaluate, knn_classify
from hamjepa.evaluation.cli import add_parser
from hamjepa.evaluation.features import extract_features

TINY = EvalOptions(k_values=(1, 5, 20), probe_epochs=2, probe_batch_size=32, cosine_pairs=500, progress=False)


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One split_qp evaluation written to RUN/eval (shared by the output checks and compare)."""
    run = tmp_path_factory.mktemp("runA")
    torch.manual_seed(0)
    evaluate(
        TinyEncoder(), make_eval_data(), split_qp=True, out_dir=run / "eval", device="cpu", options=TINY,
        checkpoint="runA/checkpoints/last.pt", config={"objective": {"name": "hamjepa"}}, dataset="tiny",
        verbose=False,
    )  # fmt: skip
    return run


def test_evaluate_writes_schema_plots_and_report(evaluated_run: Path) -> None:
    ev = evaluated_run / "eval"
    m = json.loads((ev / "metrics.json").read_text())
    assert {"checkpoint", "config", "dataset", "num_classes", "split_qp", "readouts", "timing"} <= set(m)
    assert m["num_classes"] == 4 and m["split_qp"] is True and m["dataset"] == "tiny"
    assert list(m["readouts"]) == ["q", "p", "qp"]
    assert [m["readouts"][r]["feature_dim"] for r in ("q", "p", "qp")] == [8, 8, 16]
    for block in m["readouts"].values():
        knn, probe, geo = block["knn"], block["linear_probe"], block["geometry"]
        assert set(knn) >= {"k_values", "top1", "top5", "nn20", "best_k", "best_top1"}
        assert knn["k_values"] == [1, 5, 20]
        accs = [*knn["top1"], *knn["top5"], knn["nn20"], knn["best_top1"], probe["top1"], probe["top5"]]
        assert all(0.0 <= a <= 1.0 for a in accs)
        assert all(t1 <= t5 for t1, t5 in zip(knn["top1"], knn["top5"], strict=True))
        assert {"epochs", "batch_size", "lr", "weight_decay", "top1", "top5"} <= set(probe)
        assert probe["epochs"] == 2
        spec = geo["spectrum"]
        assert set(spec) == {"n_used", "q_used", "eigenvalues", "effective_rank", "participation_ratio"}
        assert len(spec["eigenvalues"]) == spec["q_used"] == block["feature_dim"]
        assert 1.0 <= spec["effective_rank"] <= spec["q_used"]
        for key in ("cosine", "norms"):
            assert set(geo[key]) == {"mean", "std", "p10", "p50", "p90", "min", "max"}
            assert geo[key]["min"] <= geo[key]["p10"] <= geo[key]["p50"] <= geo[key]["p90"] <= geo[key]["max"]
    assert set(m["timing"]) == {"features", "knn", "linear_probe", "geometry", "outputs", "total"}
    for r in ("q", "p", "qp"):
        png = ev / "plots" / f"summary_{r}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    report = (ev / "report.md").read_text()
    assert report.count("| metric | value |") == 3 and "## Readout `qp`" in report


def test_readout_norms_balance(evaluated_run: Path) -> None:
    g = json.loads((evaluated_run / "eval" / "metrics.json").read_text())["readouts"]
    # per sample ||qp||^2 = ||q||^2 + ||p||^2, so the mean squared norms add up (std^2 + mean^2)
    sq = {r: g[r]["geometry"]["norms"]["std"] ** 2 + g[r]["geometry"]["norms"]["mean"] ** 2 for r in g}
    assert sq["qp"] == pytest.approx(sq["q"] + sq["p"], rel=1e-5)


def test_compare_two_runs(evaluated_run: Path, tmp_path: Path) -> None:
    run_b = tmp_path / "runB"
    shutil.copytree(evaluated_run, run_b)
    m = json.loads((run_b / "eval" / "metrics.json").read_text())
    m["config"] = {"objective": {"name": "sigreg"}}
    m["readouts"]["qp"]["knn"]["nn20"] = 0.125
    (run_b / "eval" / "metrics.json").write_text(json.dumps(m))
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["compare", str(evaluated_run), str(run_b), "--out", str(tmp_path / "cmp")])
    assert args.func(args) == 0
    table = (tmp_path / "cmp" / "compare.md").read_text()
    lines = table.strip().splitlines()
    assert lines[0].startswith("| method | run | data set | readout | NN@20 | best NN (k) | linear |")
    assert len(lines) == 2 + 6
    assert sum(line.startswith("| hamjepa |") for line in lines) == 3
    assert "| sigreg | runB | tiny | qp | 12.50 |" in table
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 10_000
    assert compare_runs([run_b / "eval" / "metrics.json"], tmp_path / "cmp2", figure=False).count("sigreg") == 3


def test_eval_parser_registers_the_documented_flags() -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    a = parser.parse_args(["eval", "runs/x", "--device", "cpu", "--probe-epochs", "3", "--k", "1", "20"])
    assert (a.path, a.device, a.probe_epochs, a.k, a.weighted_knn, a.bf16, a.out) == (
        "runs/x", "cpu", 3, [1, 20], False, False, None,
    )  # fmt: skip
    b = parser.parse_args(["eval", "ck.pt", "--weighted-knn", "--bf16", "--out", "o"])
    assert b.weighted_knn and b.bf16 and b.out == Path("o") and callable(b.func)
    assert b.k is None  # the default sweep, capped at the train set size by evaluate()


def test_evaluate_without_split_and_error_cases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    opts = EvalOptions(k_values=(1, 5), probe_epochs=1, cosine_pairs=100, plots=False, progress=False)
    m = evaluate(TinyEncoder(), make_eval_data(48, 24), split_qp=False, out_dir=tmp_path, device="cpu",
                 options=opts)  # fmt: skip
    assert list(m["readouts"]) == ["z"] and (tmp_path / "metrics.json").is_file()
    printed = capsys.readouterr().out
    assert all(f"[eval] {stage}:" in printed for stage in ("features", "knn", "linear_probe", "geometry"))
    data = make_eval_data(48, 24)
    bad = TinyEvalData(data.train, data.test, 3, data.mean, data.std)  # labels go up to 3
    with pytest.raises(ValueError, match="class-count mismatch"):
        evaluate(TinyEncoder(), bad, split_qp=False, out_dir=tmp_path, device="cpu", options=opts, verbose=False)
    missing = TinyEvalData(data.train, None, 4, data.mean, data.std)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="missing the 'test' split"):
        evaluate(TinyEncoder(), missing, split_qp=False, out_dir=tmp_path, device="cpu", options=opts, verbose=False)
    empty = TinyEvalData(lambda: iter(()), data.test, 4, data.mean, data.std)
    with pytest.raises(ValueError, match="empty feature set"):
        evaluate(TinyEncoder(), empty, split_qp=False, out_dir=tmp_path, device="cpu", options=opts, verbose=False)


def test_default_sweep_leaves_out_k_above_the_train_set_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A small data set (here 48 train images) evaluates without --k instead of failing at k = 50."""
    torch.manual_seed(0)
    opts = EvalOptions(probe_epochs=1, cosine_pairs=100, plots=False, progress=False)  # k_values: default sweep
    m = evaluate(TinyEncoder(), make_eval_data(48, 24), split_qp=False, out_dir=tmp_path, device="cpu",
                 options=opts)  # fmt: skip
    assert m["readouts"]["z"]["knn"]["k_values"] == [1, 5, 10, 20]
    assert m["options"]["k_values"] == [1, 5, 10, 20] and m["knn_k_dropped"] == [50, 100, 200]
    assert json.loads((tmp_path / "metrics.json").read_text())["knn_k_dropped"] == [50, 100, 200]
    assert (
        "kNN sweep without k = [50, 100, 200] (larger than the 48 train images)" in (tmp_path / "report.md").read_text()
    )
    assert "kNN sweep without k = [50, 100, 200]" in capsys.readouterr().out
    # Asked for explicitly, a k above the train set is refused, not quietly dropped.
    explicit = EvalOptions(k_values=(1, 50), probe_epochs=1, cosine_pairs=100, plots=False, progress=False)
    with pytest.raises(ValueError, match="k_max=50 must be in"):
        evaluate(TinyEncoder(), make_eval_data(48, 24), split_qp=False, out_dir=tmp_path, device="cpu",
                 options=explicit, verbose=False)  # fmt: skip
    # A large enough train set runs the paper's whole sweep and drops nothing.
    full = evaluate(TinyEncoder(), make_eval_data(200, 24), split_qp=False, out_dir=tmp_path / "full",
                    device="cpu", options=opts, verbose=False)  # fmt: skip
    assert full["options"]["k_values"] == [1, 5, 10, 20, 50, 100, 200] and full["knn_k_dropped"] == []


def test_online_monitor_runs_on_schedule_and_matches_offline_knn() -> None:
    data = make_eval_data(40, 20)
    xtr, ytr = map(torch.cat, zip(*data.train(), strict=True))
    xte, yte = map(torch.cat, zip(*data.test(), strict=True))
    mon = OnlineKNNMonitor(xtr, ytr, xte, yte, mean=data.mean, std=data.std, k=5, every_n_epochs=2, batch_size=16)
    torch.manual_seed(0)
    enc = TinyEncoder().train()
    assert mon.maybe_run(enc, 1) is None
    out = mon.maybe_run(enc, 2)
    assert out is not None and set(out) == {"knn_top1"} and 0.0 <= out["knn_top1"] <= 1.0
    assert enc.training  # mode restored
    ftr, _ = extract_features(enc, data.train, data.mean, data.std, "cpu")
    fte, _ = extract_features(enc, data.test, data.mean, data.std, "cpu")
    assert out["knn_top1"] == knn_classify(ftr, ytr, fte, yte, 4, k_values=(5,)).top1[0]


@pytest.mark.realdata
def test_real_cifar100_slice_end_to_end(cifar100_npz: Path, tmp_path: Path) -> None:
    with np.load(cifar100_npz) as z:
        xtr = torch.from_numpy(z["x_train"][:500]).permute(0, 3, 1, 2).contiguous()
        ytr = torch.from_numpy(z["y_train"][:500]).long()
        xte = torch.from_numpy(z["x_test"][:200]).permute(0, 3, 1, 2).contiguous()
        yte = torch.from_numpy(z["y_test"][:200]).long()
    data = TinyEvalData(
        batches(xtr, ytr, 128), batches(xte, yte, 128), 100, (0.507, 0.487, 0.441), (0.267, 0.256, 0.276)
    )
    torch.manual_seed(0)
    opts = EvalOptions(probe_epochs=2, cosine_pairs=2000, progress=False)
    m = evaluate(TinyEncoder(8), data, split_qp=False, out_dir=tmp_path / "eval", device="cpu", options=opts,
                 dataset="cifar100", verbose=False)  # fmt: skip
    block = m["readouts"]["z"]
    assert block["knn"]["k_values"] == [1, 5, 10, 20, 50, 100, 200]
    assert all(0.0 <= a <= 1.0 for a in [*block["knn"]["top1"], block["linear_probe"]["top1"]])
    assert block["knn"]["best_top1"] > 0.02  # above the 1 % chance level of 100 classes, even for a random net
    assert block["geometry"]["spectrum"]["n_used"] == 500 and block["geometry"]["spectrum"]["q_used"] == 32
    assert (tmp_path / "eval" / "plots" / "summary_z.png").is_file()
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["num_classes"] == 100


def test_evaluation_turns_tf32_off_and_restores_it() -> None:
    from hamjepa.numerics import full_fp32_matmuls

    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    try:
        with full_fp32_matmuls():
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
