"""The configuration schema: one dataclass per section, plus :class:`ConfigError`.

Each field's annotation is its type (checked on load), its default is the paper's value, and its docstring
is the documentation users read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

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
    on_corrupt: Literal["error", "skip"] = "error"
    """Folder data: an image file that cannot be decoded stops the run naming it (``error``), or is replaced by
    the next readable image (``skip``; every skipped file is logged to metrics.jsonl as a ``data_skip`` row,
    counted on the progress line, and left out of evaluation). Find them first with ``hamjepa data check``."""


MODEL_ENGINE_KEYS = ("channels_last", "compile", "sync_batchnorm")
"""Keys of the ``model:`` section the engine handles for every encoder (not constructor arguments)."""


@dataclass
class ModelConfig:
    """Encoder (docs/spec.md §B): ``name`` selects a registered encoder, whose constructor's keyword arguments are
    written flat beside it (``model: {name: vit, patch_size: 4, ...}``); ``channels_last``, ``compile`` and
    ``sync_batchnorm`` are handled by the engine for every encoder. A config without ``name`` is the paper's
    ResNet-18 token encoder (``resnet18_tokens``), so configs and runs written before encoders were registered
    still load."""

    name: str = "resnet18_tokens"
    """Registered encoder: ``resnet18_tokens`` (the paper's ResNet-18 token encoder) or ``vit`` (a timm Vision
    Transformer in the same token layout; ``pip install hamjepa[vit]``). Its keywords are listed below."""
    channels_last: bool = True
    """Run the encoder in channels_last memory format (faster on GPUs)."""
    compile: bool = False
    """Wrap the encoder in ``torch.compile``."""
    sync_batchnorm: bool = True
    """Under DDP, convert the BatchNorm layers of the encoder and of the objective (e.g. VICReg's expander) to
    SyncBatchNorm (an all-reduce BatchNorm off CUDA) so statistics are global-batch ones."""
    kwargs: dict[str, Any] = field(default_factory=dict, metadata={"written_flat": True})
    """The encoder's constructor arguments, resolved (written flat in the ``model:`` section, never as
    ``model.kwargs``; the loader fills in the constructor's defaults). Empty = the encoder's defaults."""


@dataclass
class PredictorConfig:
    """Latent predictor (spec C, F). ``kind=none`` for objectives without one (LeJEPA)."""

    kind: Literal["hamiltonian", "mlp", "none"] = "hamiltonian"
    """``hamiltonian``: symplectic rollout of a learned Hamiltonian (HamJEPA); ``mlp``: non-symplectic residual
    MLP rollout (MLP-HJEPA); ``none``: objectives without a predictor (LeJEPA). Must be the kind the objective
    declares (its class attribute ``predictor_kind``; ``none`` when it declares none)."""
    hamiltonian: Literal["separable", "quadratic", "learnable"] = "separable"
    """``separable``: ``|p|^2/2 + base_coeff |q|^2/2 + residual_scale f(q)`` (HamJEPA); ``quadratic``: no
    parameters; ``learnable``: a non-separable MLP term (the explicit integrators are not symplectic for it)."""
    integrator: Literal["leapfrog", "symplectic_euler"] = "leapfrog"
    """Time stepping of the Hamiltonian flow (both symplectic for a separable Hamiltonian)."""
    dt: float = 0.05
    """Integrator step h (> 0); the backward prediction uses -h."""
    steps: int = 2
    """Integrator steps N per prediction (flow time N h)."""
    base_coeff: float = 0.1
    """Coefficient beta_0 of the quadratic base potential (ignored by ``hamiltonian=learnable``)."""
    residual_scale: float = 0.02
    """Scale s of the learned potential term (ramped by ``objective.residual_scale_warmup_epochs``)."""
    hidden_dim: int = 256
    """Hidden width of the predictor's MLP (the potential f, or the MLP predictor's residual map)."""
    depth: int = 2
    """Hidden layers of that MLP."""
    activation: Literal["gelu", "relu", "silu"] = "gelu"
    """Activation of that MLP (GELU is the exact erf form)."""
    force: Literal["analytic", "autograd"] = "analytic"
    """Residual force of the separable Hamiltonian: ``analytic`` (closed-form MLP gradient with a closed-form
    backward; no double backward) or ``autograd`` (``autograd.grad(create_graph=True)``, the reference
    formulation, for checking). Same values to round-off; the other families ignore it."""
    integrate_fp32: bool = True
    """Integrate in float32 when the encoder output is bf16/fp16 (the output is cast back)."""
    learn_dt: bool = False
    """Refused: a learnable step collapses to dt=0 (spec C.3)."""


@dataclass
class OptimConfig:
    """AdamW and the per-step learning-rate schedule (spec G.2, G.3)."""

    lr: float = 5e-4
    """Base learning rate (reached after the warm-up)."""
    weight_decay: float = 5e-4
    """AdamW weight decay, applied to every parameter."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW moment coefficients."""
    eps: float = 1e-8
    """AdamW epsilon."""
    predictor_lr: float | None = None
    """Own learning rate for the predictor's parameters (ImageNet: 5e-5); None = one group."""
    clip_grad_norm: float | None = None
    """Clip the global grad-norm of the clipped groups to this value; None = no clipping."""
    clip_predictor: bool = True
    """Whether the predictor group is clipped too (ImageNet: false)."""
    warmup_epochs: float = 10.0
    """Linear warm-up from 1 % of the lr over this many epochs (fractions allowed), then cosine decay."""
    min_lr_ratio: float = 1e-3
    """Cosine floor as a fraction of ``lr`` (the same absolute floor for every group)."""


@dataclass
class TrainConfig:
    """Run length, precision, logging and checkpoints (spec G)."""

    epochs: int = 30
    """Training epochs (the cosine schedule spans all of them)."""
    max_steps: int | None = None
    """Stop after this many optimiser steps in total (smoke tests, benchmarks); None = full run."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """``auto``: CUDA when available, else CPU. Under torchrun each rank uses GPU ``LOCAL_RANK``."""
    step: Literal["eager", "compiled"] = "eager"
    """How each training step runs. ``eager``: plain PyTorch, every operator dispatched from Python.
    ``compiled``: augmentation, encoder, objective forward and backward, gradient clipping and AdamW run as one
    ``torch.compile(fullgraph=True)`` graph (inductor; CUDA graphs on CUDA), with no host synchronisation; the
    first steps pay for compilation. Same maths as ``eager`` (checkpoints are interchangeable). Needs
    device-resident data (``data.source`` packed/torchvision), views of one size, one process (no torchrun), no
    EMA target encoder (BiJEPA) and ``model.compile=false``; shapes are static (the last partial batch of an
    epoch is dropped, as in every mode)."""
    precision: Literal["auto", "bf16", "fp32", "fp64"] = "auto"
    """``auto``: bf16 autocast on CUDA, fp32 on CPU. ``fp64`` runs the whole model in double precision (slow;
    for numerical checks such as exact distributed equivalence)."""
    out_dir: str = "runs"
    """Folder that holds the run directories."""
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
    wandb: Literal["off", "offline", "online"] = "off"
    """Also log to Weights & Biases (needs ``pip install wandb``): ``offline`` writes ``RUN_DIR/wandb/`` for a
    later ``wandb sync``; ``online`` streams to the W&B project. Rank 0 only."""
    wandb_project: str = "hamjepa"
    """W&B project of the run (the run is named after the run directory)."""
    progress: bool = True
    """Show a progress bar per epoch."""
    monitor_every: int = 0
    """Online kNN monitor every N epochs on a fixed subset (0 = off)."""
    monitor_train_size: int = 5000
    """Train images (kNN memory bank) of the online monitor."""
    monitor_test_size: int = 1000
    """Test images scored by the online monitor."""
    eval_at_end: bool = False
    """Run the full frozen-feature evaluation after training."""


@dataclass
class Config:
    """A whole run."""

    seed: int = 42
    """Seeds initialisation, data order, augmentations and random projections (runs are reproducible)."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    objective: dict[str, Any] = field(default_factory=dict)
    """``name`` plus the keyword arguments of the registered objective (its signature is the schema). A config
    file without this section trains the default objective (``hamjepa.objectives.registry.DEFAULT_OBJECTIVE``,
    the paper's method); a ``Config`` built in code sets it."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples become lists) — what is saved in the run directory and checkpoints.

        The encoder's arguments are written flat in ``model`` (``name``, the arguments, then the engine keys).
        """
        out = _plain(dataclasses.asdict(self))
        model = out["model"]
        kwargs = model.pop("kwargs")
        out["model"] = {"name": model.pop("name"), **kwargs, **model}
        return out


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
