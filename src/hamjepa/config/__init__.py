"""Typed run configuration: dataclasses, YAML loading, dotted overrides and validation.

A configuration is a tree of dataclasses (:class:`Config`). It is loaded from a YAML file with a safe loader,
updated with dotted command-line overrides (``train.epochs=80 seed=1``) and validated before any work
starts. Every mistake fails loudly with :class:`ConfigError`, naming the key and the fix:

- an unknown key (with the closest valid key suggested),
- a value of the wrong type (``train.epochs='ten'``),
- an impossible combination (odd token dimension with the phase split, a projector with the phase split,
  learnable ``dt``, a predictor the objective cannot use, ...).

The objective section is ``name`` plus the keyword arguments of the registered objective class, and the
model section ``name`` (default ``resnet18_tokens``) plus the keyword arguments of the registered encoder
class besides the engine keys ``channels_last``, ``compile`` and ``sync_batchnorm``: their constructor
signatures *are* the schema, and the objective class declares what it needs from the rest of the config
(``predictor_kind``, ``needs_phase_split``, ...), so a new objective or encoder needs no change here.

This layer imports no registry: the components are handed in as a :class:`ComponentCatalog`
(``catalog=``). Load a config with :func:`hamjepa.components.load_config`, which hands in the library's::

    from hamjepa.components import load_config

    cfg = load_config("configs/cifar100_hamjepa.yaml", ["train.epochs=1", "data.subset=512"])
    cfg.train.epochs  # 1

Layout: :mod:`~hamjepa.config.schema` (the dataclasses), :mod:`~hamjepa.config.coercion` (type checks),
:mod:`~hamjepa.config.validation` (objective schema, impossible combinations),
:mod:`~hamjepa.config.catalog` (what the layer needs from the components) and :mod:`~hamjepa.config.loading`
(YAML, overrides, the validated build). Import from ``hamjepa.config``.
"""

from hamjepa.config.catalog import ComponentCatalog
from hamjepa.config.loading import (
    apply_overrides,
    config_from_dict,
    load_config,
    load_yaml,
    parse_override,
    save_config,
)
from hamjepa.config.schema import (
    PRESET_IMAGE_SIZE,
    Config,
    ConfigError,
    DataConfig,
    ModelConfig,
    OptimConfig,
    PredictorConfig,
    TrainConfig,
)
from hamjepa.config.validation import encoder_schema, objective_schema

__all__ = [
    "PRESET_IMAGE_SIZE",
    "ComponentCatalog",
    "Config",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "PredictorConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "encoder_schema",
    "load_config",
    "load_yaml",
    "objective_schema",
    "parse_override",
    "save_config",
]
