"""Protocols, one-run benchmark, the reproduce command and its CLI (tiny settings)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from hamjepa.engine.module import embed_views
from hamjepa.sequences.benchmark import (
    DEFAULT_SETTINGS,
    TaskSettings,
    benchmark_config,
    build_benchmark_objective,
    run_image_halves,
)
from hamjepa.sequences.cli import add_reproduce_dynamics_parser
from hamjepa.sequences.data import make_image_halves
from hamjepa.sequences.encoders import HalfImageEncoder, SequenceEncoder
from hamjepa.sequences.protocols import decoder_probe, linear_classification_probe, linear_regression_probe
from hamjepa.sequences.reproduce import reproduce_dynamics, summarise_runs
from hamjepa.sequences.train import pair_views, predict_forward


def test_regression_probe_fits_linear_map_and_reports_heldout() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, 3, generator=g)
    x, xh = torch.randn(400, 8, generator=g), torch.randn(200, 8, generator=g)
    res = linear_regression_probe(x, x @ w, xh, xh @ w, epochs=200, lr=0.05, extra_x=xh[:5])
    assert res.train < 1e-3 and res.heldout < 1e-3
    assert res.predictions is not None
    torch.testing.assert_close(res.predictions, xh[:5] @ w, atol=0.05, rtol=0)
    # Pure-noise targets: the held-out error cannot be small.
    noise = linear_regression_probe(
        x, torch.randn(400, 1, generator=g), xh, torch.randn(200, 1, generator=g), epochs=50
    )
    assert noise.heldout > 0.5


def test_classification_and_decoder_probes() -> None:
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(3, 6, generator=g) * 4
    y = torch.randint(0, 3, (300,), generator=g)
    x = centers[y] + 0.3 * torch.randn(300, 6, generator=g)
    res = linear_classification_probe(x[:200], y[:200], x[200:], y[200:], num_classes=3, epochs=5, batch_size=32)
    assert res.train > 95 and res.heldout > 95
    pixels = torch.sigmoid(x @ torch.randn(6, 10, generator=g))
    dec = decoder_probe(x[:200], pixels[:200], x[200:], pixels[200:], epochs=3, batch_size=32)
    baseline = float(((pixels[200:] - pixels[:200].mean(0)) ** 2).mean())
    assert 0 <= dec.heldout < baseline and dec.train >= 0


def test_encoders_shapes_and_norm_modes() -> None:
    enc = SequenceEncoder(10, 16, 8, layer_norm=False, unit_sphere=True)
    z = enc(torch.randn(5, 10))
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(5))
    with pytest.raises(ValueError, match=r"\[N, 10\]"):
        enc(torch.randn(5, 11))
    img = HalfImageEncoder(12, layer_norm=True)
    views = pair_views(img, torch.randn(4, 1, 28, 14), torch.randn(4, 1, 28, 14))
    assert isinstance(views, list)  # BatchNorm: one forward per view
    z2 = embed_views(img, views, channels_last=False, amp_dtype=None)
    assert z2.shape == (2, 4, 12)
    stacked = pair_views(enc, torch.randn(4, 10), torch.randn(4, 10))
    assert isinstance(stacked, torch.Tensor) and stacked.shape == (2, 4, 10)


def test_hamjepa_composition_predicts_with_leapfrog() -> None:
    settings = TaskSettings(steps=1, lr=1e-3, batch_size=8, hidden_dim=8, embed_dim=6, momentum=0.99, probe_epochs=1)
    obj = build_benchmark_objective("hamjepa", settings)
    assert obj.needs_target_encoder is False
    z = torch.randn(4, 6)
    forward = predict_forward(obj, z)
    # The backward map with -h inverts the forward map (symplectic leapfrog).
    back = obj.predictor(forward, direction=-1).detach()
    torch.testing.assert_close(back, z, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="method"):
        build_benchmark_objective("vicreg", settings)


def test_run_image_halves_on_synthetic_images() -> None:
    rng = np.random.default_rng(0)
    halves = make_image_halves(
        rng.integers(0, 256, (40, 28, 28)).astype(np.uint8),
        rng.integers(0, 10, 40),
        rng.integers(0, 256, (12, 28, 28)).astype(np.uint8),
        rng.integers(0, 10, 12),
    )
    settings = TaskSettings(steps=2, lr=1e-3, batch_size=8, hidden_dim=16, embed_dim=8, momentum=0.99, probe_epochs=1)
    out = run_image_halves(halves, "bijepa", 0, settings=settings)
    m = out["metrics"]
    assert 0 <= m["linear_acc_test"] <= 100 and m["decoder_mse_test"] > 0
    assert np.isfinite(m["train_loss_end"])


def test_reproduce_tiny_writes_table_json_and_plots(tmp_path) -> None:
    result = reproduce_dynamics(
        tmp_path, seeds=[0, 1], tasks=["sine", "lorenz"], scale=0.003, workers=1, progress=False
    )
    assert len(result["runs"]) == 2 * 3 * 2
    table = (tmp_path / "results.md").read_text()
    for label in ("Classic JEPA", "BiJEPA", "HamJEPA", "Sine", "Lorenz", "0.0517", "0.0249"):
        assert label in table
    assert "±" in table
    record = json.loads((tmp_path / "results.json").read_text())
    stat = record["summary"]["lorenz"]["bijepa"]["pred_probe_train"]
    values = [
        r["metrics"]["pred_probe_train"] for r in record["runs"] if r["task"] == "lorenz" and r["method"] == "bijepa"
    ]
    assert stat["n"] == 2 and stat["mean"] == pytest.approx(float(np.mean(values)))
    assert stat["std"] == pytest.approx(float(np.std(values, ddof=1)))
    for name in ("sine_forecast.png", "lorenz_forecast.png", "lorenz_phase.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_reproduce_rejects_bad_arguments(tmp_path) -> None:
    with pytest.raises(ValueError, match="tasks"):
        reproduce_dynamics(tmp_path, tasks=["mnist"], workers=1, progress=False)
    with pytest.raises(ValueError, match="seeds"):
        reproduce_dynamics(tmp_path, seeds=[], workers=1, progress=False)


def test_summarise_single_seed_has_zero_std() -> None:
    runs = [{"task": "sine", "method": "jepa", "metrics": {"a": 2.0}}]
    assert summarise_runs(runs) == {"sine": {"jepa": {"a": {"mean": 2.0, "std": 0.0, "n": 1}}}}


def test_cli_registers_dynamics_under_reproduce() -> None:
    parser = argparse.ArgumentParser(prog="hamjepa")
    top = parser.add_subparsers(dest="command")
    reproduce = top.add_parser("reproduce").add_subparsers(dest="what")
    add_reproduce_dynamics_parser(reproduce)
    args = parser.parse_args(["reproduce", "dynamics", "--seeds", "3", "4", "--tasks", "sine", "--scale", "0.5"])
    assert args.seeds == [3, 4] and args.tasks == ["sine"] and args.scale == 0.5 and args.workers == 2
    assert callable(args.func)
    defaults = parser.parse_args(["reproduce", "dynamics"])
    assert defaults.tasks == ["sine", "lorenz", "halves"] and defaults.seeds == [0, 1, 2]
    with pytest.raises(SystemExit):
        parser.parse_args(["reproduce", "dynamics", "--tasks", "cifar"])


def test_hamjepa_predictor_comes_from_the_predictor_config() -> None:
    """No copied literals: the benchmark's predictor is the predictor config's defaults at the task's width."""
    from hamjepa.config import PredictorConfig
    from hamjepa.objectives.registry import get_objective_class

    settings = DEFAULT_SETTINGS["lorenz"]
    cfg = benchmark_config("hamjepa", settings)
    assert cfg.predictor == PredictorConfig(hidden_dim=settings.hidden_dim)
    obj = build_benchmark_objective("hamjepa", settings)
    assert type(obj) is get_objective_class("hamjepa")
    defaults = PredictorConfig()
    assert float(obj.predictor.dt) == defaults.dt and obj.predictor.steps == defaults.steps
    assert obj.predictor.hamiltonian_name == defaults.hamiltonian
    assert obj.predictor.integrator_name == defaults.integrator
    assert obj.predictor.residual_scale == defaults.residual_scale
    for method, alpha in (("jepa", 1.0), ("bijepa", 0.5)):
        bijepa = build_benchmark_objective(method, settings)
        assert type(bijepa) is get_objective_class("bijepa") and bijepa.alpha == alpha
        assert benchmark_config(method, settings).predictor.kind == "none"
    assert (cfg.optim.warmup_epochs, cfg.optim.min_lr_ratio, cfg.optim.lr) == (0.0, 1.0, settings.lr)


def test_default_settings_follow_the_paper() -> None:
    sine, lorenz = DEFAULT_SETTINGS["sine"], DEFAULT_SETTINGS["lorenz"]
    assert (sine.steps, sine.lr, sine.batch_size, sine.embed_dim, sine.probe_epochs) == (2000, 1e-3, 64, 16, 100)
    assert (lorenz.steps, lorenz.lr, lorenz.embed_dim, lorenz.probe_epochs) == (3000, 5e-4, 32, 200)
    assert sine.momentum == lorenz.momentum == 0.995
