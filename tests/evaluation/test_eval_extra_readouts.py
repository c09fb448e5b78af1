"""Extra readouts from the objective (HamSIGReg's "ham" = H^{1/2} z) in the evaluation pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.evaluation._eval_testutils import TinyEncoder, make_eval_data

from hamjepa.evaluation import EvalOptions, evaluate
from hamjepa.objectives import HamSIGRegObjective

TINY = EvalOptions(k_values=(1, 5), probe_epochs=1, probe_batch_size=32, cosine_pairs=200, progress=False, plots=False)


def test_ham_readout_is_evaluated_on_transformed_features(tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder = TinyEncoder()
    obj = HamSIGRegObjective(16, metric="chain", eps=0.1)
    metrics = evaluate(
        encoder, make_eval_data(), split_qp=False, out_dir=tmp_path, device="cpu", options=TINY, verbose=False,
        extra_readouts=obj.feature_readouts(),
    )  # fmt: skip
    assert list(metrics["readouts"]) == ["z", "ham"]
    z, ham = metrics["readouts"]["z"], metrics["readouts"]["ham"]
    assert ham["feature_dim"] == 16
    # H^{1/2} is not a rotation: the feature geometry differs between the two readouts
    assert ham["geometry"]["spectrum"]["eigenvalues"] != z["geometry"]["spectrum"]["eigenvalues"]
    assert json.loads((tmp_path / "metrics.json").read_text())["readouts"].keys() == {"z", "ham"}


def test_extra_readout_may_not_shadow_a_builtin(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="clashes"):
        evaluate(
            TinyEncoder(), make_eval_data(), split_qp=True, out_dir=tmp_path, device="cpu", options=TINY,
            verbose=False, extra_readouts={"qp": lambda f: f},
        )  # fmt: skip
