"""Typed run configuration: dataclasses, YAML loading, dotted overrides and validation.

A configuration is a tree of dataclasses (:class:`Config`). It is loaded from a YAML file with a safe loader,
updated with dotted command-line overrides (``train.epochs=80 seed=1``) and validated before any work
starts. Every mistake fails loudly with :class:`ConfigError`, naming the key and the fix:

- an unknown key (with the closest valid key suggested),
- a value of the wrong type (``train.epochs='ten'``),
- an impossible combination (odd token dimension with the phase split, a projector with the phase split,
  learnable ``dt``, a predictor the objective cannot use, ...).

The objective section is ``name`` plus the keyword arguments of the registered objective class: its
constructor signature *is* the schema, so a new objective needs no change here.

Example::

    cfg = load_config("configs/cifar100_hamjepa.yaml", ["train.epochs=1", "data.subset=512"])
    cfg.train.epochs  # 1
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from hamjepa.errors import HamjepaError

PRESET_IMAGE_SIZE = {"cifar100": 32, "imagenet100": 224, "imagefolder": 224}
"""Global-view side that each data set's spec-A.2 augmentation preset produces."""


class ConfigError(HamjepaError):
    """A configuration problem; the message names the key and the fix."""


@dataclass
class DataConfig:
    """Where the images come from and how views are made (spec A)."""

    dataset: Literal["cifar100", "imagenet100", "imagefolder"] = "cifar100"
    """Data set family; fixes the augmentation preset and normalisation (``cifar100``: the CIFAR preset of
    spec A.2; ``imagenet100`` / ``imagefolder``: the ImageNet preset, for ImageNet-100 or your own folder)."""
    source: Literal["packed", "torchvision", "folder"] = "packed"
    """``packed``: an .npz of uint8 arrays (fast path); ``torchvision``: CIFAR-100 via torchvision;
    ``folder``: an ImageFolder tree with ``train/`` and ``val/``."""
    path: str = ""
    """The .npz file (packed), the torchvision root (torchvision) or the folder root (folder)."""
    download: bool = False
    """Let torchvision download CIFAR-100 when ``source=torchvision``."""
    subset: int | None = None
    """Use only the first N training images (stratified when possible); None = all."""
    eval_subset: int | None = None
    """Evaluate on a stratified slice of this many images per split (train and test); None = all."""
    batch_size: int = 512
    """Global batch size in images (split evenly across ranks)."""
    global_views: int = 2
    """Number of global views per image."""
    local_views: int = 0
    """Number of local views per image (0 in every paper config)."""
    image_size: int = 32
    """Output size of global views (32 for CIFAR, 224 for ImageNet)."""
    num_workers: int = 8
    """Loader workers for folder data (JPEG decoding); unused for device-resident data."""
    eval_batch_size: int = 256
    """Batch size for feature extraction."""


@dataclass
class ModelConfig:
    """Encoder (spec B)."""

    stem: Literal["cifar", "imagenet"] = "cifar"
    mode: Literal["tokens", "global"] = "tokens"
    token_layer: Literal["layer2", "layer3", "layer4"] = "layer3"
    token_hw: int | None = None
    """Adaptive-pool the token grid to ``token_hw x token_hw`` (ImageNet: 8); None = no pooling."""
    token_dim: int = 32
    """Channels per token after the 1x1 conv + BN."""
    split_qp: bool = True
    """Phase-space split: the first half of every token's channels is q, the second half p."""
    projector: Literal["identity", "mlp"] = "identity"
    global_out_dim: int = 2048
    channels_last: bool = True
    """Run the encoder in channels_last memory format (faster on GPUs)."""
    compile: bool = False
    """Wrap the encoder in ``torch.compile``."""
    sync_batchnorm: bool = True
    """Under DDP, convert BatchNorm to SyncBatchNorm so statistics are global-batch ones."""


@dataclass
class PredictorConfig:
    """Latent predictor (spec C, F). ``kind=none`` for objectives without one (LeJEPA)."""

    kind: Literal["hamiltonian", "mlp", "none"] = "hamiltonian"
    hamiltonian: Literal["separable", "quadratic", "learnable"] = "separable"
    integrator: Literal["leapfrog", "symplectic_euler"] = "leapfrog"
    dt: float = 0.05
    steps: int = 2
    base_coeff: float = 0.1
    residual_scale: float = 0.02
    hidden_dim: int = 256
    depth: int = 2
    activation: Literal["gelu", "relu", "silu"] = "gelu"
    integrate_fp32: bool = True
    learn_dt: bool = False
    """Refused: a learnable step collapses to dt=0 (spec C.3)."""


@dataclass
class OptimConfig:
    """AdamW and the per-step learning-rate schedule (spec G.2, G.3)."""

    lr: float = 5e-4
    weight_decay: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    predictor_lr: float | None = None
    """Own learning rate for the predictor's parameters (ImageNet: 5e-5); None = one group."""
    clip_grad_norm: float | None = None
    """Clip the global grad-norm of the clipped groups to this value; None = no clipping."""
    clip_predictor: bool = True
    """Whether the predictor group is clipped too (ImageNet: false)."""
    warmup_epochs: float = 10.0
    min_lr_ratio: float = 1e-3
    """Cosine floor as a fraction of ``lr`` (the same absolute floor for every group)."""


@dataclass
class TrainConfig:
    """Run length, precision, logging and checkpoints (spec G)."""

    epochs: int = 30
    max_steps: int | None = None
    """Stop after this many optimiser steps in total (smoke tests, benchmarks); None = full run."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "bf16", "fp32", "fp64"] = "auto"
    """``auto``: bf16 autocast on CUDA, fp32 on CPU. ``fp64`` runs the whole model in double precision (slow;
    for numerical checks such as exact distributed equivalence)."""
    out_dir: str = "runs"
    run_name: str | None = None
    """Run directory name under ``out_dir``; None = ``<config stem>-seed<seed>``."""
    checkpoint_every: int = 1
    """Save a checkpoint every N epochs (and always at the end)."""
    checkpoint_every_steps: int | None = None
    """Also save every N steps inside an epoch (for long epochs); None = off."""
    keep_epoch_checkpoints: bool = False
    """Keep ``epoch_XXXX.pt`` files besides ``last.pt``."""
    log_every: int = 20
    """Log (and sync with the device) every N steps."""
    tensorboard: bool = True
    """Write TensorBoard logs when the tensorboard package is installed."""
    progress: bool = True
    """Show a progress bar per epoch."""
    monitor_every: int = 0
    """Online kNN monitor every N epochs on a fixed subset (0 = off)."""
    monitor_train_size: int = 5000
    monitor_test_size: int = 1000
    eval_at_end: bool = False
    """Run the full frozen-feature evaluation after training."""


@dataclass
class Config:
    """A whole run."""

    seed: int = 42
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    objective: dict[str, Any] = field(default_factory=lambda: {"name": "hamjepa"})
    """``name`` plus the keyword arguments of the registered objective (its signature is the schema)."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples become lists) — what is saved in the run directory and checkpoints."""
        return _plain(dataclasses.asdict(self))


# --------------------------------------------------------------------------------------------------------
# Loading


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"{hint} Valid keys: {', '.join(sorted(valid))}."


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert lossless cases (int -> float, list -> tuple)."""
    if tp is Any or tp is inspect.Parameter.empty:
        return value
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"config: '{key}' = {value!r} must be {' or '.join(_type_name(a) for a in args)}.")
    if origin is Literal:
        if value in get_args(tp):
            return value
        close = difflib.get_close_matches(str(value), [str(a) for a in get_args(tp)], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"config: '{key}' = {value!r} is not one of {_type_name(tp)}.{hint}")
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"config: '{key}' = {value!r} must be a list of {len(args)} values.")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin in (list, dict):
        if not isinstance(value, origin):
            raise ConfigError(f"config: '{key}' = {value!r} must be a {origin.__name__}.")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config: '{key}' = {value!r} must be true or false.")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config: '{key}' = {value!r} must be an integer.")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads '1e-3' (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config: '{key}' = {value!r} must be a number.")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config: '{key}' = {value!r} must be a string.")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"config: '{key}' = {value!r} must be {_type_name(tp)}.")


def _build_dataclass(cls: type, values: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        full = f"{prefix}{key}"
        if key not in hints:
            raise ConfigError(f"config: unknown key '{full}'.{_suggest(key, valid)}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise ConfigError(f"config: '{full}' must be a mapping of keys, got {value!r}.")
            kwargs[key] = _build_dataclass(tp, value, f"{full}.")
        else:
            kwargs[key] = _coerce(value, tp, full)
    return cls(**kwargs)


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


def objective_schema(name: str) -> dict[str, tuple[inspect.Parameter, Any]]:
    """Keyword arguments a registered objective accepts (with type hints), minus ``predictor``."""
    from hamjepa.objectives.registry import get_objective_class

    try:
        cls = get_objective_class(name)
    except ValueError as err:
        raise ConfigError(f"config: 'objective.name': {err}") from None
    return {k: v for k, v in _constructor_params(cls).items() if k != "predictor"}


def objective_takes_predictor(name: str) -> bool:
    """Whether the named objective's constructor takes a ``predictor`` module."""
    from hamjepa.objectives.registry import get_objective_class

    return "predictor" in _constructor_params(get_objective_class(name))


def _validate_objective(section: dict[str, Any]) -> dict[str, Any]:
    if "name" not in section:
        raise ConfigError("config: 'objective.name' is missing; set it to e.g. hamjepa, lejepa or mlp_hjepa.")
    name = section["name"]
    schema = objective_schema(name)
    out: dict[str, Any] = {"name": name}
    for key, value in section.items():
        if key == "name":
            continue
        if key not in schema:
            raise ConfigError(
                f"config: unknown key 'objective.{key}' for objective '{name}'.{_suggest(key, list(schema))}"
            )
        out[key] = _coerce(value, schema[key][1], f"objective.{key}")
    return out


def _check_combinations(cfg: Config) -> None:
    m, p, o, d = cfg.model, cfg.predictor, cfg.objective, cfg.data
    if m.split_qp and m.token_dim % 2:
        raise ConfigError(
            f"config: 'model.token_dim' = {m.token_dim} is odd but 'model.split_qp' is true; "
            "use an even token_dim so each token splits into q and p halves."
        )
    if m.split_qp and m.projector != "identity":
        raise ConfigError(
            "config: 'model.projector' = 'mlp' mixes the q/p channels that 'model.split_qp' relies on; "
            "set model.projector=identity or model.split_qp=false."
        )
    if m.split_qp and m.mode == "global":
        raise ConfigError("config: 'model.split_qp' needs 'model.mode' = tokens (the split is per token).")
    if p.learn_dt:
        raise ConfigError(
            "config: 'predictor.learn_dt' = true is refused: a learnable step shrinks to dt -> 0 "
            "(the trivial identity predictor). Keep it false and set predictor.dt."
        )
    if p.dt <= 0 or p.steps < 1:
        raise ConfigError("config: 'predictor.dt' must be > 0 and 'predictor.steps' >= 1.")
    takes_predictor = objective_takes_predictor(o["name"])
    expected = {"hamjepa": "hamiltonian", "mlp_hjepa": "mlp"}.get(o["name"])
    if takes_predictor and p.kind == "none":
        raise ConfigError(
            f"config: objective '{o['name']}' needs a predictor but 'predictor.kind' = none; "
            f"set predictor.kind={expected or 'hamiltonian'}."
        )
    if expected and p.kind != expected:
        raise ConfigError(
            f"config: objective '{o['name']}' uses a {expected} predictor but 'predictor.kind' = {p.kind}; "
            f"set predictor.kind={expected}."
        )
    if not takes_predictor and p.kind != "none":
        raise ConfigError(
            f"config: objective '{o['name']}' has no predictor but 'predictor.kind' = {p.kind}; "
            "set predictor.kind=none so the config says what runs."
        )
    if o["name"] in ("hamjepa", "mlp_hjepa") and not m.split_qp:
        raise ConfigError(f"config: objective '{o['name']}' needs the phase split; set model.split_qp=true.")
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
            f"views (spec A.2); set data.image_size={want}."
        )
    if cfg.train.epochs < 1:
        raise ConfigError("config: 'train.epochs' must be >= 1.")
    if cfg.optim.warmup_epochs < 0 or not 0 <= cfg.optim.min_lr_ratio <= 1:
        raise ConfigError("config: 'optim.warmup_epochs' must be >= 0 and 'optim.min_lr_ratio' in [0, 1].")


def config_from_dict(values: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from a nested dict (YAML content)."""
    if not isinstance(values, dict):
        raise ConfigError(f"config: the top level must be a mapping, got {type(values).__name__}.")
    values = dict(values)
    objective = values.pop("objective", {"name": "hamjepa"})
    if not isinstance(objective, dict):
        raise ConfigError("config: 'objective' must be a mapping with at least 'name'.")
    cfg = _build_dataclass(Config, values, "")
    cfg.objective = _validate_objective(objective)
    _check_combinations(cfg)
    return cfg


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into (``['a','b','c']``, YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"config: override '{text}' must look like key.subkey=value (e.g. train.epochs=80).")
    key, raw = text.split("=", 1)
    if not key:
        raise ConfigError(f"config: override '{text}' has an empty key.")
    return key.split("."), yaml.safe_load(raw) if raw != "" else ""


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted overrides to a nested dict (in place) and return it."""
    for text in overrides:
        path, value = parse_override(text)
        node = values
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"config: override '{text}': '{part}' is a value, not a section.")
            node = child
        node[path[-1]] = value
    return values


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config: file not found: {path}. Pass one of the YAML files in configs/.")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config: {path} is not valid YAML: {err}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config: {path} must hold a mapping at the top level.")
    return values


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Load a YAML config, apply dotted overrides, validate, and return the typed :class:`Config`."""
    values = apply_overrides(load_yaml(path), list(overrides or []))
    return config_from_dict(values)


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML."""
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
