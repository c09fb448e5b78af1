"""The model card describes the objective from its class (``description``), never from a table of names."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, ClassVar

from hamjepa.inference.model_card import objective_description, render_model_card
from hamjepa.objectives import Objective, available_objectives, get_objective_class


class _Described(Objective):
    """First docstring line (not used: the description wins)."""

    description: ClassVar[str] = "Described: a one-line description of the method"


class _Undescribed(Objective):
    """Mean squared distance of the views.

    More detail that the card leaves out.
    """


class _Bare(Objective):
    pass


def test_the_description_comes_from_the_class_with_a_docstring_fallback() -> None:
    assert objective_description(_Described()) == "Described: a one-line description of the method"
    assert objective_description(_Undescribed()) == "_Undescribed: Mean squared distance of the views."
    assert objective_description(_Bare()) == "_Bare"  # no docstring of its own: the name alone
    for name in available_objectives():
        cls = get_objective_class(name)
        assert cls.description and "\n" not in cls.description, name


def test_the_card_states_the_objective_description() -> None:
    manifest: dict[str, Any] = {
        "objective": "described",
        "preprocess": {"resize": 36, "crop": 32, "mean": [0.5] * 3, "std": [0.25] * 3},
        "readouts": ["z"],
        "encoder": "a test encoder",
        "training_commit": None,
        "hamjepa_version": "0",
        "export_commit": "abc",
        "files": {},
    }
    config = {"seed": 1, "data": {"dataset": "cifar100"}, "model": {"name": "enc"}, "train": {"epochs": 1}}
    model = SimpleNamespace(config=config, epoch=1, step=2, metrics=None, objective=_Described())
    card = render_model_card(model, manifest, [])  # type: ignore[arg-type]
    assert "| method | Described: a one-line description of the method (`objective.name: described`) |" in card
    assert "| encoder | a test encoder (`model.name: enc`) |" in card
