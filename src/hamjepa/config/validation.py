"""Validation beyond types: the ``objective:`` and ``model:`` sections (their constructors are the schemas) and
impossible combinations (what the objective class declares it needs against the rest of the config).

Every function that looks a component up takes the :class:`~hamjepa.config.catalog.ComponentCatalog` handed in
by the caller; this module names no objective and no encoder.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from hamjepa.config.catalog import ComponentCatalog
from hamjepa.config.coercion import build_dataclass, coerce, suggest_key
from hamjepa.config.schema import MODEL_ENGINE_KEYS, PRESET_IMAGE_SIZE, Config, ConfigError, ModelConfig


def _constructor_params(cls: type) -> dict[str, tuple[inspect.Parameter, Any]]:
    """Keyword parameters of ``cls.__init__`` with their type hints, following ``**kwargs`` to base classes."""
    out: dict[str, tuple[inspect.Parameter, Any]] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        hints = typing.get_type_hints(init)
        params = inspect.signature(init).parameters
        for k, p in params.items():
            if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and k not in out:
                out[k] = (p, hints.get(k, Any))
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    return out


def objective_schema(name: str, *, catalog: ComponentCatalog) -> dict[str, tuple[inspect.Parameter, Any]]:
    """Keyword arguments a registered objective accepts (with type hints), minus ``predictor`` (the module the
    engine builds from the ``predictor:`` section)."""
    return {k: v for k, v in _constructor_params(objective_class(name, catalog=catalog)).items() if k != "predictor"}


def objective_class(name: str, *, catalog: ComponentCatalog) -> type:
    """The objective class registered as ``name``; a :class:`ConfigError` naming ``objective.name`` otherwise."""
    try:
        return catalog.objective_class(name)
    except ValueError as err:
        raise ConfigError(f"config: 'objective.name': {err}") from None


def validate_objective(section: dict[str, Any], *, catalog: ComponentCatalog) -> dict[str, Any]:
    """The ``objective:`` section: ``name`` and the objective's constructor arguments, type-checked."""
    if "name" not in section:
        raise ConfigError(
            "config: 'objective.name' is missing; set it to a registered objective: "
            f"{', '.join(catalog.objective_names())}."
        )
    name = section["name"]
    schema = objective_schema(name, catalog=catalog)
    out: dict[str, Any] = {"name": name}
    for key, value in section.items():
        if key == "name":
            continue
        if key not in schema:
            raise ConfigError(
                f"config: unknown key 'objective.{key}' for objective '{name}'.{suggest_key(key, list(schema))}"
            )
        out[key] = coerce(value, schema[key][1], f"objective.{key}")
    return out


def encoder_schema(name: str, *, catalog: ComponentCatalog) -> dict[str, tuple[inspect.Parameter, Any]]:
    """Keyword arguments a registered encoder accepts (with type hints): the ``model:`` keys besides the engine's."""
    try:
        cls = catalog.encoder_class(name)
    except ValueError as err:
        raise ConfigError(f"config: 'model.name': {err}") from None
    return _constructor_params(cls)


def encoder_split_qp(model: ModelConfig, *, catalog: ComponentCatalog) -> bool:
    """Whether the configured encoder lays ``z`` out as ``[q; p]`` (built on the meta device, no weights)."""
    return bool(_meta_encoder(model, catalog).split_qp)


def _meta_encoder(model: ModelConfig, catalog: ComponentCatalog) -> Any:
    """The configured encoder built on the ``meta`` device: its constructor checks its own arguments."""
    import torch

    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        return catalog.encoder_class(model.name)(**model.kwargs)


def validate_model(section: dict[str, Any], *, image_size: int, catalog: ComponentCatalog) -> ModelConfig:
    """The ``model:`` section: ``name`` (default: the catalog's ``default_encoder``), the engine keys, and the
    encoder's constructor arguments checked against its signature, completed with its defaults, and checked by
    the encoder itself (built on the meta device) together with ``data.image_size``."""
    name = section.get("name", catalog.default_encoder)
    if not isinstance(name, str):
        raise ConfigError(f"config: 'model.name' = {name!r} must be a string (a registered encoder).")
    schema = encoder_schema(name, catalog=catalog)
    engine = {k: v for k, v in section.items() if k in MODEL_ENGINE_KEYS}
    model: ModelConfig = build_dataclass(ModelConfig, {"name": name, **engine}, "model.")
    for key, value in section.items():
        if key == "name" or key in MODEL_ENGINE_KEYS:
            continue
        if key not in schema:
            valid = [*schema, "name", *MODEL_ENGINE_KEYS]
            raise ConfigError(f"config: unknown key 'model.{key}' for encoder '{name}'.{suggest_key(key, valid)}")
        model.kwargs[key] = coerce(value, schema[key][1], f"model.{key}")
    for key, (param, _) in schema.items():
        if key not in model.kwargs:
            if param.default is inspect.Parameter.empty:
                raise ConfigError(f"config: encoder '{name}' needs 'model.{key}'; set it in the model section.")
            model.kwargs[key] = param.default
    try:
        _meta_encoder(model, catalog).output_dim(image_size)
    except ValueError as err:
        raise ConfigError(f"config: 'model' (encoder '{name}'): {err}") from None
    return model


def check_combinations(cfg: Config, *, catalog: ComponentCatalog) -> None:
    """Refuse impossible combinations, among them a config that does not give the objective what its class
    declares it needs (``predictor_kind``, ``needs_phase_split``; for ``train.step=compiled`` also
    ``needs_target_encoder`` and ``supports_compiled_step``)."""
    m, p, o, d = cfg.model, cfg.predictor, cfg.objective, cfg.data
    if p.learn_dt:
        raise ConfigError(
            "config: 'predictor.learn_dt' = true is refused: a learnable step shrinks to dt -> 0 "
            "(the trivial identity predictor). Keep it false and set predictor.dt."
        )
    if p.dt <= 0 or p.steps < 1:
        raise ConfigError("config: 'predictor.dt' must be > 0 and 'predictor.steps' >= 1.")
    cls = objective_class(o["name"], catalog=catalog)
    check_predictor_kind(o["name"], getattr(cls, "predictor_kind", None), p.kind)
    if getattr(cls, "needs_phase_split", False) and not encoder_split_qp(m, catalog=catalog):
        raise ConfigError(
            f"config: objective '{o['name']}' needs the phase split z = [q; p], but encoder '{m.name}' does not "
            "split its output; set model.split_qp=true."
        )
    if d.global_views < 2 and d.global_views + d.local_views < 2:
        raise ConfigError("config: 'data.global_views' must be >= 2 (the objectives compare views).")
    if d.batch_size < 2:
        raise ConfigError("config: 'data.batch_size' must be >= 2.")
    if d.source == "folder" and d.dataset == "cifar100":
        raise ConfigError("config: 'data.source' = folder needs 'data.dataset' = imagenet100 or imagefolder.")
    if d.source in ("packed", "torchvision") and d.dataset != "cifar100":
        raise ConfigError(f"config: 'data.source' = {d.source} is for cifar100; use data.source=folder.")
    want = PRESET_IMAGE_SIZE[d.dataset]
    if d.image_size != want:
        raise ConfigError(
            f"config: 'data.image_size' = {d.image_size} but the {d.dataset} augmentation preset makes {want} px "
            f"views (docs/spec.md §A.2); set data.image_size={want}."
        )
    if cfg.train.step == "compiled":
        check_compiled_step(cfg, objective=cls)
    if cfg.train.epochs < 1:
        raise ConfigError("config: 'train.epochs' must be >= 1.")
    if cfg.optim.warmup_epochs < 0 or not 0 <= cfg.optim.min_lr_ratio <= 1:
        raise ConfigError("config: 'optim.warmup_epochs' must be >= 0 and 'optim.min_lr_ratio' in [0, 1].")


def check_predictor_kind(objective: str, wanted: str | None, kind: str) -> None:
    """Refuse a ``predictor.kind`` other than the one the objective declares (``predictor_kind``; None: no
    predictor, so ``predictor.kind`` must be ``none``)."""
    if wanted is None and kind != "none":
        raise ConfigError(
            f"config: objective '{objective}' has no predictor but 'predictor.kind' = {kind}; "
            "set predictor.kind=none so the config says what runs."
        )
    if wanted is not None and kind == "none":
        raise ConfigError(
            f"config: objective '{objective}' needs a predictor but 'predictor.kind' = none; "
            f"set predictor.kind={wanted}."
        )
    if wanted is not None and kind != wanted:
        raise ConfigError(
            f"config: objective '{objective}' uses a {wanted} predictor but 'predictor.kind' = {kind}; "
            f"set predictor.kind={wanted}."
        )


def check_compiled_step(cfg: Config, *, objective: type) -> None:
    """Refuse ``train.step=compiled`` where the step cannot be one static graph (``objective``: the class)."""
    d = cfg.data
    if d.source == "folder":
        raise ConfigError(
            "config: 'train.step' = compiled needs device-resident data (data.source=packed or torchvision); "
            "folder data is decoded by loader workers. Use train.step=eager."
        )
    if d.local_views > 0 and d.dataset != "cifar100":
        raise ConfigError(
            f"config: 'train.step' = compiled needs views of one size, but {d.dataset} local views are smaller "
            "than global ones; set data.local_views=0 or train.step=eager."
        )
    if getattr(objective, "needs_target_encoder", False):
        raise ConfigError(
            f"config: 'train.step' = compiled does not support the EMA target encoder of objective "
            f"'{cfg.objective['name']}'; use train.step=eager."
        )
    if not getattr(objective, "supports_compiled_step", True):
        raise ConfigError(
            f"config: 'train.step' = compiled: objective '{cfg.objective['name']}' does host-side work around its "
            "forward (its class sets supports_compiled_step = False, e.g. for an update of auxiliary parameters), "
            "so its step cannot be one graph; use train.step=eager."
        )
    if cfg.model.compile:
        raise ConfigError(
            "config: 'model.compile' = true compiles the encoder alone; 'train.step' = compiled already compiles "
            "the whole step. Set model.compile=false."
        )
