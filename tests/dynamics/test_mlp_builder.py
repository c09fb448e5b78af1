"""One MLP builder (``hamjepa.dynamics.mlp.build_mlp``): state-dict keys and numbers of every user unchanged.

The reference builders below are the former private copies (BiJEPA's ``make_mlp``, the decoder probe's literal
``nn.Sequential``), kept here as the record that moving their users onto ``build_mlp`` changed nothing.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hamjepa.dynamics import HamiltonianPredictor, MLPPredictor, build_mlp
from hamjepa.objectives.bijepa import BiJEPAObjective
from hamjepa.sequences.encoders import HalfImageEncoder, SequenceEncoder
from hamjepa.sequences.protocols import make_decoder


def _old_make_mlp(in_dim: int, hidden_dims: list[int], out_dim: int, *, layer_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_dim
    for hidden in hidden_dims:
        layers.append(nn.Linear(width, hidden))
        if layer_norm:
            layers.append(nn.LayerNorm(hidden))
        layers.append(nn.ReLU())
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def _old_decoder(in_dim: int, out_pixels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, 256),
        nn.BatchNorm1d(256),
        nn.ReLU(),
        nn.Linear(256, 512),
        nn.BatchNorm1d(512),
        nn.ReLU(),
        nn.Linear(512, out_pixels),
        nn.Sigmoid(),
    )


def _same_module(new: nn.Module, old: nn.Module) -> None:
    assert [type(m) for m in new.modules()][1:] == [type(m) for m in old.modules()][1:]
    new_state, old_state = new.state_dict(), old.state_dict()
    assert list(new_state) == list(old_state)
    for key, value in old_state.items():
        assert torch.equal(new_state[key], value), key


@pytest.mark.parametrize("layer_norm", [True, False])
def test_layer_norm_relu_mlp_is_the_former_make_mlp(layer_norm: bool) -> None:
    torch.manual_seed(0)
    new = build_mlp(6, 4, hidden_dims=[8, 5], activation="relu", norm="layer" if layer_norm else None)
    torch.manual_seed(0)
    _same_module(new, _old_make_mlp(6, [8, 5], 4, layer_norm=layer_norm))


def test_decoder_probe_is_the_former_literal_stack() -> None:
    torch.manual_seed(1)
    new = make_decoder(7, 12)
    torch.manual_seed(1)
    old = _old_decoder(7, 12)
    _same_module(new, old)
    x = torch.randn(5, 7)
    assert torch.equal(new(x), old(x))


def test_state_dict_keys_of_every_user_are_unchanged() -> None:
    """The tensor names old checkpoints carry (BiJEPA runs, HamJEPA / MLP-HJEPA predictors, benchmark nets)."""
    bijepa = BiJEPAObjective(4, hidden_dim=8)
    assert list(bijepa.state_dict()) == [
        f"predictor_{d}.{i}.{p}" for d in ("fwd", "bwd") for i in (0, 1, 3) for p in ("weight", "bias")
    ]
    no_norm = BiJEPAObjective(4, hidden_dim=8, norm_mode="none", alpha=1.0)
    assert list(no_norm.state_dict()) == [f"predictor_fwd.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")]
    mlp_predictor = MLPPredictor(4, hidden_dim=8, depth=2)
    assert list(mlp_predictor.state_dict()) == ["dt"] + [f"net.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")]
    ham = HamiltonianPredictor(4, hidden_dim=8, depth=2)
    assert list(ham.state_dict()) == ["dt"] + [
        f"hamiltonian.residual.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")
    ]
    sequence = SequenceEncoder(10, 8, 4, layer_norm=True)
    assert list(sequence.state_dict()) == [f"net.{i}.{p}" for i in (0, 1, 3, 4, 6) for p in ("weight", "bias")]
    halves = HalfImageEncoder(4, layer_norm=True, hidden_dim=8)
    assert [k for k in halves.state_dict() if k.startswith("head.")] == [
        f"head.{i}.{p}" for i in (0, 1, 3) for p in ("weight", "bias")
    ]
    assert list(make_decoder(4, 6).state_dict())[:7] == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
    ]


def test_bad_norm_and_empty_hidden_dims_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown norm='group'"):
        build_mlp(4, 4, hidden_dims=[8], activation="relu", norm="group")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one hidden width"):
        build_mlp(4, 4, hidden_dims=[], activation="relu")
