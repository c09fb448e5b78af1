"""The field's standard protocol beside the paper's token protocol: weighted kNN, SGD probe, labelled outputs."""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.evaluation._eval_testutils import TinyEncoder, TinyEvalData, TokenOnlyEncoder, batches, make_eval_data
from torch import nn

from hamjepa.evaluation import (
    STANDARD_READOUT,
    EvalOptions,
    SGDProbeConfig,
    compare_runs,
    evaluate,
    knn_classify,
    knn_neighbours,
    train_sgd_linear_probe,
)
from hamjepa.evaluation.cli import add_parser
from hamjepa.evaluation.knn import vote_counts
from hamjepa.evaluation.standard import _linear_head

TINY = EvalOptions(
    k_values=(1, 5), probe_epochs=1, standard_probe_epochs=3, cosine_pairs=200, plots=False, progress=False
)

# A hand-made case. Train rows 0 and 1 are the same vector with different classes (a similarity tie, which
# the lower index wins, and at k = 2 a vote tie, which the smaller class wins); rows 5 and 7 tie for the
# first test row too. Class 0 has a single train row, so every k > 1 is larger than that class.
TRAIN = [
    ([1.0, 0.0, 0.0], 2),
    ([1.0, 0.0, 0.0], 1),
    ([0.8, 0.6, 0.0], 0),
    ([0.0, 1.0, 0.0], 1),
    ([0.0, 0.6, 0.8], 3),
    ([0.6, 0.8, 0.0], 3),
    ([0.0, 0.0, 1.0], 2),
    ([0.6, 0.0, 0.8], 1),
]
TEST = [([1.0, 0.0, 0.0], 1), ([0.7, 0.7, 0.1], 0), ([0.0, 0.3, 1.0], 3), ([0.5, 0.5, -0.7], 2), ([2.0, 0, 0], 2)]
NUM_CLASSES, T = 5, 0.07  # class 4 has no train row: it can never get a vote


def _numpy_weighted_knn(k: int) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """Direct float64 computation: votes ``[t, C]`` summing ``exp(sim / T)`` over the k nearest (ties to the
    lower train index), top-1 predictions (ties to the smaller class) and top-5 among the voted classes."""
    xtr = np.array([v for v, _ in TRAIN])
    ytr = np.array([c for _, c in TRAIN])
    xte = np.array([v for v, _ in TEST])
    xtr /= np.linalg.norm(xtr, axis=1, keepdims=True)
    xte /= np.linalg.norm(xte, axis=1, keepdims=True)
    sims = xte @ xtr.T
    votes = np.zeros((len(TEST), NUM_CLASSES))
    top5 = []
    for row, s in enumerate(sims):
        order = np.lexsort((np.arange(len(TRAIN)), -s))[:k]  # by -sim, then by index
        for j in order:
            votes[row, ytr[j]] += np.exp(s[j] / T)
        ranked = np.argsort(-votes[row], kind="stable")
        top5.append([int(c) for c in ranked if votes[row, c] > 0][:5])
    return votes, votes.argmax(axis=1), top5


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_weighted_knn_on_a_hand_made_case_equals_a_direct_numpy_computation(k: int) -> None:
    xtr = torch.tensor([v for v, _ in TRAIN])
    ytr = torch.tensor([c for _, c in TRAIN])
    xte = torch.tensor([v for v, _ in TEST])
    yte = torch.tensor([c for _, c in TEST])
    votes, pred, top5 = _numpy_weighted_knn(k)
    sims, idx = knn_neighbours(xtr, xte, k)
    ours = vote_counts(ytr[idx], torch.exp(sims / T), NUM_CLASSES)
    np.testing.assert_allclose(ours.double().numpy(), votes, rtol=1e-5)
    if k == 1:
        assert idx[0, 0] == 0  # the similarity tie of rows 0 and 1 goes to the lower index
    if k == 2:
        assert pred[0] == 1 and votes[0, 1] == votes[0, 2]  # the vote tie goes to the smaller class
    res = knn_classify(xtr, ytr, xte, yte, NUM_CLASSES, k_values=(k,), weighted=True, temperature=T)
    y = yte.numpy()
    assert res.top1 == [float(np.mean(pred == y))]
    assert res.top5 == [float(np.mean([c in t for c, t in zip(y, top5, strict=True)]))]
    assert res.weighted and res.temperature == T


def test_sgd_probe_is_the_standard_recipe_step_for_step() -> None:
    """train_sgd_linear_probe equals torch's SGD + MultiStepLR written out directly on the same batches."""
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(70, 6, generator=g), torch.randint(0, 4, (70,), generator=g)
    xt, yt = torch.randn(30, 6, generator=g), torch.randint(0, 4, (30,), generator=g)
    cfg = SGDProbeConfig(epochs=10, batch_size=16, lr=0.3, seed=5)
    assert cfg.milestone_epochs() == [6, 8] and SGDProbeConfig().milestone_epochs() == [60, 80]
    res = train_sgd_linear_probe(x, y, xt, yt, 4, cfg)

    head = _linear_head(6, 4, seed=5)
    opt = torch.optim.SGD(head.parameters(), lr=0.3, momentum=0.9, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[6, 8], gamma=0.1)
    perm_gen = torch.Generator().manual_seed(5)
    lrs, last_epoch_loss = [], 0.0
    for epoch in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        perm = torch.randperm(70, generator=perm_gen)
        for b0 in range(0, 70, 16):
            idx = perm[b0 : b0 + 16]
            loss = nn.functional.cross_entropy(head(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if epoch == 9:
                last_epoch_loss += float(loss.detach()) * idx.shape[0]
        sched.step()
    assert res.lr_per_epoch == pytest.approx(lrs, rel=1e-12)
    assert res.final_train_loss == pytest.approx(last_epoch_loss / 70, rel=1e-5)
    with torch.no_grad():
        logits = head(xt)
    assert res.top1 == int((logits.argmax(1) == yt).sum()) / 30
    assert res.top5 == 1.0  # 4 classes: the top-5 holds them all


@pytest.fixture(scope="module")
def both_protocols(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("both")
    torch.manual_seed(0)
    evaluate(
        TinyEncoder(), make_eval_data(), split_qp=True, out_dir=run / "eval", device="cpu", options=TINY,
        config={"objective": {"name": "hamjepa"}}, verbose=False,
    )  # fmt: skip
    return run


def test_metrics_json_labels_both_protocols(both_protocols: Path) -> None:
    m = json.loads((both_protocols / "eval" / "metrics.json").read_text())
    assert m["schema_version"] == 2 and set(m["protocols"]) == {"token", "standard"}
    assert all(b["protocol"] == "token" for b in m["readouts"].values()) and list(m["readouts"]) == ["q", "p", "qp"]
    assert list(m["standard_readouts"]) == [STANDARD_READOUT]
    std = m["standard_readouts"][STANDARD_READOUT]
    assert std["protocol"] == "standard" and std["feature_dim"] == 4  # TinyEncoder's pooled conv channels
    assert std["knn"]["weighted"] and std["knn"]["temperature"] == 0.07
    assert std["knn"]["k_values"] == [10, 20] and std["knn"]["nn20"] == std["knn"]["top1"][1]
    assert m["protocols"]["standard"]["knn"] == {
        "vote": "weighted", "temperature": 0.07, "k": 20, "k_values": [10, 20], "k_dropped": [100, 200],
    }  # fmt: skip
    probe = std["linear_probe"]
    assert (probe["recipe"], probe["lr"], probe["momentum"], probe["weight_decay"]) == ("linear_sgd_step", 0.3, 0.9, 0)
    assert (probe["epochs"], probe["batch_size"], probe["milestone_epochs"]) == (3, 256, [2, 2])
    assert m["protocols"]["token"]["knn"]["vote"] == "majority"
    assert m["protocols"]["token"]["linear_probe"]["recipe"] == "layernorm_linear_adamw_cosine"
    assert all(0.0 <= a <= 1.0 for a in [*std["knn"]["top1"], probe["top1"], probe["top5"]])
    report = (both_protocols / "eval" / "report.md").read_text()
    token_part, standard_part = report.split("## Standard protocol (the field's)")
    assert "## Token protocol (the paper's)" in token_part and "`pooled`" not in token_part
    assert "kNN@20 top-1 (%), weighted, T=0.07" in standard_part and "`qp`" not in standard_part
    assert "standard kNN sweep without k = [100, 200]" in report


def _tables(text: str) -> dict[str, list[list[str]]]:
    """compare.md -> {heading + setting line: rows (header first) as cell lists}."""
    out: dict[str, list[list[str]]] = {}
    for section in text.split("## ")[1:]:
        lines = section.strip().splitlines()
        rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith("| ")]
        out[f"{lines[0]} / {lines[2]}"] = rows
    return out


def test_compare_never_mixes_protocols_in_a_column(both_protocols: Path, tmp_path: Path) -> None:
    m = json.loads((both_protocols / "eval" / "metrics.json").read_text())
    old = tmp_path / "old_v1"  # a schema-1 file, written before the standard protocol existed
    v1 = {k: v for k, v in m.items() if k not in ("protocols", "standard_readouts")}
    v1["schema_version"] = 1
    for block in v1["readouts"].values():
        del block["protocol"], block["linear_probe"]["recipe"]
    (old / "eval").mkdir(parents=True)
    (old / "eval" / "metrics.json").write_text(json.dumps(v1))
    weighted = tmp_path / "weighted"  # the token protocol with a weighted vote is another setting
    shutil.copytree(both_protocols, weighted)
    mw = json.loads((weighted / "eval" / "metrics.json").read_text())
    for block in mw["readouts"].values():
        block["knn"]["weighted"], block["knn"]["temperature"] = True, 0.07
    (weighted / "eval" / "metrics.json").write_text(json.dumps(mw))

    tables = _tables(compare_runs([both_protocols, old, weighted], tmp_path / "cmp", figure=False))
    assert len(tables) == 3  # token (majority), token (weighted), standard
    for title, (header, *rows) in tables.items():
        protocol = "standard" if title.startswith("Standard") else "token"
        assert f"{protocol} protocol;" in title
        assert [c for c in header if "kNN" in c or "linear" in c] == [
            f"{protocol} kNN@20", f"{protocol} best kNN (k)", f"{protocol} linear",
        ]  # fmt: skip
        readouts = {row[header.index("readout")] for row in rows}
        assert readouts == ({STANDARD_READOUT} if protocol == "standard" else {"q", "p", "qp"})
    (majority,) = [rows for t, rows in tables.items() if "vote majority" in t]
    assert {row[1] for row in majority[1:]} == {both_protocols.name, "old_v1"}  # v1 reads as the same protocol
    (weighted_rows,) = [rows for t, rows in tables.items() if t.startswith("Token") and "vote weighted" in t]
    assert {row[1] for row in weighted_rows[1:]} == {"weighted"}
    (standard_rows,) = [rows for t, rows in tables.items() if t.startswith("Standard")]
    assert {row[1] for row in standard_rows[1:]} == {both_protocols.name, "weighted"}


def test_an_encoder_without_pooled_features_needs_the_token_protocol_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no pooled_features\(images\) method.*--protocol token"):
        evaluate(TokenOnlyEncoder(), make_eval_data(), split_qp=False, out_dir=tmp_path, device="cpu",
                 options=TINY, verbose=False)  # fmt: skip
    opts = EvalOptions(k_values=(1, 5), probe_epochs=1, cosine_pairs=100, plots=False, progress=False,
                       protocols=("token",))  # fmt: skip
    m = evaluate(TokenOnlyEncoder(), make_eval_data(), split_qp=False, out_dir=tmp_path, device="cpu", options=opts,
                 verbose=False)  # fmt: skip
    assert list(m["protocols"]) == ["token"] and m["standard_readouts"] == {} and list(m["readouts"]) == ["z"]
    only_standard = EvalOptions(cosine_pairs=100, plots=False, progress=False, protocols=("standard",))
    m = evaluate(TinyEncoder(), make_eval_data(), split_qp=False, out_dir=tmp_path, device="cpu",
                 options=only_standard, verbose=False)  # fmt: skip
    assert list(m["protocols"]) == ["standard"] and m["readouts"] == {} and list(m["standard_readouts"]) == ["pooled"]
    assert "token" not in (tmp_path / "report.md").read_text().lower().split("## ", 1)[1]
    with pytest.raises(ValueError, match=r"EvalOptions.protocols must be distinct names from \('token', 'standard'\)"):
        EvalOptions(protocols=("tokens",))


def test_eval_parser_protocol_flags() -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    a = parser.parse_args(["eval", "runs/x"])
    assert a.protocol == ["token", "standard"] and a.standard_probe_epochs == 100
    b = parser.parse_args(["eval", "runs/x", "--protocol", "standard", "--standard-probe-epochs", "7"])
    assert b.protocol == ["standard"] and b.standard_probe_epochs == 7
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "runs/x", "--protocol", "pooled"])


@pytest.mark.slow
@pytest.mark.realdata
def test_real_cifar100_subset_with_the_paper_encoder_reports_both_protocols(cifar100_npz: Path, tmp_path: Path) -> None:
    from hamjepa.models import TokenEncoder

    with np.load(cifar100_npz) as z:  # strided slices: the packed arrays are sorted by class
        xtr = torch.from_numpy(z["x_train"][::195][:256]).permute(0, 3, 1, 2).contiguous()
        ytr = torch.from_numpy(z["y_train"][::195][:256]).long()
        xte = torch.from_numpy(z["x_test"][::78][:128]).permute(0, 3, 1, 2).contiguous()
        yte = torch.from_numpy(z["y_test"][::78][:128]).long()
    assert len(set(ytr.tolist())) > 90  # nearly every class is represented
    data = TinyEvalData(
        batches(xtr, ytr, 128), batches(xte, yte, 128), 100, (0.507, 0.487, 0.441), (0.267, 0.256, 0.276)
    )
    torch.manual_seed(0)
    opts = EvalOptions(probe_epochs=2, standard_probe_epochs=5, cosine_pairs=500, progress=False)
    m = evaluate(TokenEncoder(), data, split_qp=True, out_dir=tmp_path / "eval", device="cpu", options=opts,
                 dataset="cifar100", verbose=False)  # fmt: skip
    assert [m["readouts"][r]["feature_dim"] for r in ("q", "p", "qp")] == [1024, 1024, 2048]
    std = m["standard_readouts"]["pooled"]
    assert std["feature_dim"] == 256  # layer3's channels: the token encoder never builds layer4
    assert std["knn"]["k_values"] == [10, 20, 100, 200] and std["knn"]["weighted"]
    assert all(0.0 <= a <= 1.0 for a in [*std["knn"]["top1"], std["linear_probe"]["top1"]])
    assert std["geometry"]["spectrum"]["q_used"] == 255  # min(256, D = 256, n - 1 = 255)
    report = (tmp_path / "eval" / "report.md").read_text()
    assert re.search(r"### standard protocol: readout `pooled`\n\n\| metric \| value \|", report)
    assert (tmp_path / "eval" / "plots" / "summary_pooled.png").is_file()
