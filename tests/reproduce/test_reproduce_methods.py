"""`hamjepa reproduce` discovers its methods from the shipped configs/<dataset>_<method>.yaml files."""

from __future__ import annotations

import pytest

from hamjepa.cli import build_parser
from hamjepa.reproduce.cifar100 import ReproduceOptions, method_config
from hamjepa.reproduce.methods import available_methods, configs_dir
from hamjepa.reproduce.paper_numbers import paper_methods


def test_methods_are_the_shipped_configs() -> None:
    for dataset in ("cifar100", "imagenet100"):
        stems = {p.stem for p in configs_dir().glob(f"{dataset}_*.yaml")}
        assert {f"{dataset}_{m}" for m in available_methods(dataset)} == stems
        assert set(paper_methods(dataset)) <= set(available_methods(dataset))
    assert {"vicreg", "visreg"} <= set(available_methods("cifar100"))


@pytest.mark.parametrize(("method", "objective"), [("vicreg", "vicreg"), ("visreg", "visreg"), ("sigreg", "lejepa")])
def test_cli_accepts_the_new_methods_and_builds_their_configs(method: str, objective: str) -> None:
    args = build_parser().parse_args(["reproduce", "cifar100", "--data", "DATA.npz", "--methods", method])
    assert args.methods == [method]
    cfg = method_config(method, ReproduceOptions(data_path="DATA.npz", epochs=3), seed=1)
    assert cfg.objective["name"] == objective and cfg.train.epochs == 3 and cfg.seed == 1
    assert cfg.train.run_name == f"{method}-e3-seed1"


def test_default_methods_are_the_papers_rows() -> None:
    args = build_parser().parse_args(["reproduce", "cifar100", "--data", "DATA.npz"])
    assert args.methods == ["hamjepa", "sigreg", "mlp_hjepa"]
    args = build_parser().parse_args(["reproduce", "imagenet100", "--data", "DATA"])
    assert args.methods == ["hamjepa", "sigreg"]


def test_unknown_method_lists_the_available_ones() -> None:
    with pytest.raises(ValueError, match=r"choose from .*vicreg"):
        method_config("vicregg", ReproduceOptions(data_path="DATA.npz"), seed=0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["reproduce", "cifar100", "--data", "DATA.npz", "--methods", "vicregg"])
