"""The generic registry (:class:`hamjepa.registry.Registry`) behind the objective and encoder registries."""

from __future__ import annotations

import pytest

from hamjepa.registry import Registry


class Base:
    pass


class Alpha(Base):
    pass


class Beta(Base):
    pass


def test_register_get_available_and_did_you_mean() -> None:
    reg: Registry[Base] = Registry("widget", Base)
    assert reg.register("alpha")(Alpha) is Alpha
    reg.add("beta", Beta)
    assert reg.get("alpha") is Alpha and reg.available() == ["alpha", "beta"]
    assert "beta" in reg and "gamma" not in reg
    with pytest.raises(ValueError, match=r"unknown widget 'alpah'; available: alpha, beta\. Did you mean 'alpha'\?"):
        reg.get("alpah")
    with pytest.raises(ValueError, match=r"unknown widget 'zzz'; available: alpha, beta\.$"):
        reg.get("zzz")
    with pytest.raises(ValueError, match="unknown widget 3"):
        reg.get(3)  # type: ignore[arg-type]


def test_refuses_empty_names_foreign_classes_and_clashes() -> None:
    reg: Registry[Base] = Registry("widget", Base)
    reg.add("alpha", Alpha)
    reg.add("alpha", Alpha)  # the same class again: a no-op (a module imported twice)
    with pytest.raises(ValueError, match="non-empty"):
        reg.register("")
    with pytest.raises(ValueError, match="needs a Base subclass"):
        reg.add("int", int)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="already registered to Alpha"):
        reg.add("alpha", Beta)
    assert reg.available() == ["alpha"]


def test_builtins_load_lazily_once_and_again_after_a_failure() -> None:
    calls: list[int] = []

    def load() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ImportError("broken built-in module")
        reg.add("alpha", Alpha)

    reg: Registry[Base] = Registry("widget", Base, load_builtins=load)
    assert calls == []  # nothing loaded at construction
    with pytest.raises(ImportError, match="broken"):
        reg.available()
    assert reg.get("alpha") is Alpha and reg.available() == ["alpha"]
    assert len(calls) == 2


def test_temporarily_and_restoring_leave_the_registry_as_it_was() -> None:
    reg: Registry[Base] = Registry("widget", Base)
    reg.add("alpha", Alpha)
    with reg.temporarily("beta", Beta) as cls:
        assert cls is Beta and reg.get("beta") is Beta
    assert reg.available() == ["alpha"]
    with reg.restoring():
        reg.unregister("alpha")
        reg.add("beta", Beta)
        assert reg.available() == ["beta"]
    assert reg.available() == ["alpha"] and reg.get("alpha") is Alpha
    with pytest.raises(ValueError, match="unknown widget 'beta'"):
        reg.unregister("beta")
    with pytest.raises(ValueError, match="already registered"), reg.temporarily("alpha", Beta):
        pass
    assert reg.get("alpha") is Alpha


def test_the_component_registries_are_instances() -> None:
    from hamjepa.models.registry import ENCODERS, get_encoder_class
    from hamjepa.objectives.registry import OBJECTIVES, get_objective_class

    assert isinstance(OBJECTIVES, Registry) and isinstance(ENCODERS, Registry)
    assert get_objective_class(OBJECTIVES.available()[0]) is OBJECTIVES.get(OBJECTIVES.available()[0])
    assert get_encoder_class(ENCODERS.available()[0]) is ENCODERS.get(ENCODERS.available()[0])
