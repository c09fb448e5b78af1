"""``hamjepa.load``: a trained encoder (and its predictor) ready for embedding images in your own code.

>>> model = hamjepa.load("runs/cifar100_hamjepa-seed42")      # run folder, checkpoint .pt or export folder
>>> z = model.embed(["cat.jpg", "dog.png"], readout="q")        # float32 [2, D/2] on the CPU

Inputs to :meth:`HamjepaModel.embed`: a uint8 (0-255) or float (0-1) tensor ``[N, 3, H, W]`` or
``[3, H, W]``, a PIL image, an image file path, or a list mixing these (sizes may differ). Every image gets
the run's evaluation preprocessing (:class:`~hamjepa.inference.preprocess.EvalPreprocess`), batches run on
the best device (CUDA, then Apple MPS, then CPU) in true fp32 without gradients, and the result comes back
on the CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hamjepa.data.imagefolder import decode_rgb
from hamjepa.engine.checkpoint import load_run, run_dir_of
from hamjepa.engine.run_logger import recorded_plugins
from hamjepa.errors import HamjepaError
from hamjepa.inference.preprocess import EvalPreprocess
from hamjepa.models.phase_space import readouts
from hamjepa.numerics import full_fp32_matmuls
from hamjepa.objectives.base import Objective

__all__ = ["HamjepaModel", "InferenceError", "best_device", "load"]


class InferenceError(HamjepaError):
    """A model or input that cannot be used for inference; the message names the fix."""


def best_device() -> torch.device:
    """CUDA when present, else Apple MPS when present, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _resolve_device(device: str | torch.device | None) -> torch.device:
    return best_device() if device in (None, "auto") else torch.device(device)


@dataclass
class HamjepaModel:
    """A frozen trained encoder with its evaluation preprocessing and its predictor (when it has one).

    Attributes:
        encoder: the :class:`~hamjepa.models.TokenEncoder` (eval mode, ``requires_grad`` off), ``[N, 3, crop,
            crop] -> [N, D]`` on normalised images.
        objective: the trained objective (its predictors: ``objective.predictors()``; :meth:`predict` calls
            ``objective.predict``).
        config: the run's resolved config (plain dict).
        preprocess: the evaluation preprocessing applied by :meth:`embed`.
        device: where batches run.
        source: the run folder, checkpoint or export folder it was loaded from.
        metrics: the run's ``eval/metrics.json`` (or the export's ``metrics.json``) when present.
        epoch, step: training progress of the weights.
        info: provenance (``checkpoint`` file, or ``export`` folder and ``training_commit``).
    """

    encoder: nn.Module
    objective: Objective
    config: dict[str, Any]
    preprocess: EvalPreprocess
    device: torch.device
    source: Path
    metrics: dict[str, Any] | None = None
    epoch: int = 0
    step: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for module in (self.encoder, self.objective):
            module.eval()
            module.requires_grad_(False)
            module.to(self.device)

    # ---------------------------------------------------------------- readouts
    @property
    def split_qp(self) -> bool:
        """Whether ``z`` is laid out as ``[q; p]`` (readouts q, p, qp) or not (readout z)."""
        return bool(getattr(self.encoder, "split_qp", self.config.get("model", {}).get("split_qp", False)))

    @property
    def readouts(self) -> tuple[str, ...]:
        """The readout names :meth:`embed` accepts (``q``, ``p``, ``qp`` for phase-split encoders, else ``z``)."""
        return tuple(readouts(torch.zeros(1, 2), self.split_qp))

    @property
    def default_readout(self) -> str:
        """``qp`` (the whole embedding) for phase-split encoders, else ``z``."""
        return "qp" if self.split_qp else "z"

    @property
    def predictors(self) -> dict[str, nn.Module]:
        """The objective's trained predictor modules by name (empty for objectives without one)."""
        return self.objective.predictors()

    @property
    def predictor(self) -> nn.Module | None:
        """The trained latent predictor ``[B, D] -> [B, D]`` when the objective has exactly one (HamJEPA,
        MLP-HJEPA), else None; :meth:`predict` works for every objective with predictors."""
        found = self.predictors
        return next(iter(found.values())) if len(found) == 1 else None

    # ------------------------------------------------------------------- embed
    @torch.no_grad()
    def embed(
        self,
        images: Any,
        readout: str | None = None,
        *,
        batch_size: int = 256,
        progress: bool = False,
    ) -> Tensor:
        """Embed images with the frozen encoder.

        Args:
            images: uint8 (0-255) or float (0-1) tensor ``[N, 3, H, W]`` / ``[3, H, W]``, a PIL image, a
                file path, or a sequence of these.
            readout: ``q``, ``p`` or ``qp`` for phase-split encoders, ``z`` otherwise; None = the whole
                embedding (``qp`` / ``z``).
            batch_size: images per forward pass.
            progress: show a tqdm bar over batches.

        Returns:
            float32 ``[N, d]`` on the CPU (``d = D/2`` for ``q`` / ``p``).
        """
        name = self.check_readout(readout)
        if batch_size < 1:
            raise InferenceError(f"embed: batch_size must be >= 1, got {batch_size}")
        batches: Iterator[Tensor] = self._normalised_batches(images, batch_size)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="embed", unit="batch", leave=False)
        with full_fp32_matmuls():
            outputs = [self._embed_normalised(x, name) for x in batches]
        if not outputs:
            raise InferenceError("embed: no images given; pass a tensor, a PIL image, a path or a list of them")
        return torch.cat(outputs)

    def check_readout(self, readout: str | None) -> str:
        """The readout name to use (``None`` -> :attr:`default_readout`); raises for unknown names."""
        name = readout or self.default_readout
        if name not in self.readouts:
            raise InferenceError(f"embed: unknown readout {name!r} for this encoder; valid: {', '.join(self.readouts)}")
        return name

    def _embed_normalised(self, x: Tensor, readout: str) -> Tensor:
        """Readout ``readout`` of a normalised batch on :attr:`device` -> float32 CPU ``[b, d]`` (no grad, caller
        sets the matmul precision)."""
        with torch.no_grad():
            z = self.encoder(x)
        return readouts(z, self.split_qp)[readout].float().cpu()

    def _normalised_batches(self, images: Any, batch_size: int) -> Iterator[Tensor]:
        if isinstance(images, Tensor):
            if images.ndim == 3:
                images = images.unsqueeze(0)
            if images.ndim != 4 or images.shape[1] != 3:
                raise InferenceError(
                    f"embed: image tensors must be [N, 3, H, W] or [3, H, W] RGB, got {tuple(images.shape)}"
                )
            for start in range(0, images.shape[0], batch_size):
                yield self.preprocess(images[start : start + batch_size].to(self.device))
            return
        items = [images] if _is_single_image(images) else list(images)
        for start in range(0, len(items), batch_size):
            prepared = [self.preprocess.geometry(_to_tensor(item)) for item in items[start : start + batch_size]]
            if not all(p.dtype == torch.uint8 for p in prepared):  # mixed: uint8 -> [0, 1] floats first
                prepared = [p.float().div(255.0) if p.dtype == torch.uint8 else p.float() for p in prepared]
            batch = torch.stack(prepared)
            yield self.preprocess.normalise(batch.to(self.device))

    # ----------------------------------------------------------------- predict
    @torch.no_grad()
    def predict(self, z: Tensor, direction: int = 1) -> Tensor:
        """Apply the trained predictor to full embeddings ``z [B, D]`` (readout ``qp`` / ``z``).

        ``direction=+1`` predicts one view's state from the other, ``-1`` runs the map backwards (the exact
        inverse for a Hamiltonian predictor; a second, backward predictor for BiJEPA). Returns ``[B, D]`` on
        ``z``'s device. The objective's :meth:`~hamjepa.objectives.base.Objective.predict` does the mapping.
        """
        if not self.predictors:
            raise InferenceError(
                f"predict: the {self.config.get('objective', {}).get('name', '?')} objective has no predictor; "
                "only embed() applies to this model"
            )
        if z.ndim != 2:
            raise InferenceError(f"predict: z must be [B, D] full embeddings (readout qp/z), got {tuple(z.shape)}")
        with full_fp32_matmuls():
            out = self.objective.predict(z.to(self.device, torch.float32), direction)
        return out.to(z.device)

    def __repr__(self) -> str:
        name = self.config.get("objective", {}).get("name", "?")
        return (
            f"HamjepaModel({name}, source={str(self.source)!r}, epoch={self.epoch}, readouts={self.readouts}, "
            f"input={self.preprocess.crop}px, device={self.device})"
        )


def _is_single_image(obj: Any) -> bool:
    return isinstance(obj, str | Path) or hasattr(obj, "getbands")  # a path or a PIL image


def _to_tensor(item: Any) -> Tensor:
    """One image (tensor, path or PIL image) as a ``[3, H, W]`` uint8 / float tensor on the CPU."""
    if isinstance(item, Tensor):
        if item.ndim != 3 or item.shape[0] != 3:
            raise InferenceError(f"embed: an image tensor in a list must be [3, H, W] RGB, got {tuple(item.shape)}")
        return item
    if isinstance(item, str | Path):
        return decode_rgb(item)
    if hasattr(item, "getbands"):
        from torchvision.transforms.v2.functional import pil_to_tensor

        return pil_to_tensor(item.convert("RGB"))
    raise InferenceError(
        f"embed: cannot read an image from a {type(item).__name__}; pass tensors, PIL images or file paths"
    )


def _run_metrics(checkpoint_path: Path) -> dict[str, Any] | None:
    """``RUN_DIR/eval/metrics.json`` of the run a checkpoint belongs to, when it was evaluated."""
    import json

    file = run_dir_of(checkpoint_path) / "eval" / "metrics.json"
    return json.loads(file.read_text()) if file.is_file() else None


def load(path: str | Path, *, device: str | torch.device | None = "auto") -> HamjepaModel:
    """Load a trained model for inference.

    Args:
        path: a run folder (its ``checkpoints/last.pt``), a checkpoint ``.pt`` file, or a folder written by
            ``hamjepa export`` (safetensors, no pickle).
        device: ``"auto"`` (CUDA, then MPS, then CPU) or any torch device.

    Returns:
        A :class:`HamjepaModel` (frozen, eval mode).
    """
    from hamjepa.inference.export import MANIFEST_NAME, load_export

    path = Path(path)
    dev = _resolve_device(device)
    if path.is_dir() and (path / MANIFEST_NAME).is_file():
        return load_export(path, device=dev)

    run = load_run(path)
    return HamjepaModel(
        encoder=run.encoder,
        objective=run.objective,
        config=run.config,
        preprocess=EvalPreprocess.from_config(run.config),
        device=dev,
        source=path,
        metrics=_run_metrics(run.checkpoint_path),
        epoch=run.epoch,
        step=run.step,
        info={"checkpoint": str(run.checkpoint_path), "plugins": recorded_plugins(run_dir_of(run.checkpoint_path))},
    )
