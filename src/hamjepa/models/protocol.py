"""What every encoder is: the small protocol the engine, the objectives, evaluation and export rely on.

An encoder is an :class:`Encoder` (an ``nn.Module``) registered under a name with
:func:`~hamjepa.models.registry.register_encoder`; the config selects it with ``model.name`` and its
constructor's keyword arguments are the rest of the ``model:`` section (the signature is the schema). It
declares:

* ``forward(images [N, 3, S, S]) -> z [N, D]`` on normalised images, with ``D = output_dim(S)``;
* ``split_qp``: whether ``z`` is laid out as ``[q; p]`` (the first half of ``D`` is ``q``);
* ``token_layout(S)``: the :class:`TokenLayout` of ``z`` when it is a flattened token grid (grid, channels per
  token, q/p split; what grid-aware objectives such as HamSIGReg need), else ``None``;
* ``pooled_features(images) -> [N, F]``: the field's standard frozen feature (global average of the
  backbone's last feature map, before any token head; a ViT's mean patch token);
* ``describe()``: one line for the model card;
* ``export_artifacts(S)``: the extra files ``hamjepa export`` writes for it (e.g. the backbone under the names
  of its reference library), each with the model-card section that shows how to load it.

Constructors must reject impossible argument combinations with a ``ValueError`` naming the argument: the
config loader builds the encoder on the ``meta`` device (no memory, no random numbers drawn) to validate the
``model:`` section and read its layout before any work starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

__all__ = ["Encoder", "ExportArtifact", "TokenLayout"]


@dataclass(frozen=True)
class TokenLayout:
    """Layout of an embedding that is a flattened token grid (see :mod:`hamjepa.models.phase_space`).

    Attributes:
        grid: ``(h, w)`` tokens, flattened row-major.
        channels: channels per token ``C`` (channels last: token ``t`` holds ``C`` consecutive values, or ``C/2``
            in ``q`` and ``C/2`` in ``p`` with the split).
        split_qp: whether ``z = [q; p]`` splits every token's channels into halves.
    """

    grid: tuple[int, int]
    channels: int
    split_qp: bool

    @property
    def dim(self) -> int:
        """Width ``D = h * w * C`` of the flattened embedding."""
        return self.grid[0] * self.grid[1] * self.channels


@dataclass
class ExportArtifact:
    """One extra file an encoder asks ``hamjepa export`` to write, and how its model card explains it.

    Attributes:
        file: file name inside the export folder (``*.safetensors``).
        tensors: the tensors to save (names as the reference library expects them).
        metadata: string metadata stored in the safetensors header (architecture, arguments).
        manifest: JSON-ready facts recorded under ``backbone`` in ``hamjepa_export.json``.
        card_markdown: the model-card section (Markdown, code included) that loads the file.
    """

    file: str
    tensors: dict[str, Tensor]
    metadata: dict[str, str] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    card_markdown: str = ""


class Encoder(nn.Module):
    """Base class of registered encoders: ``images [N, 3, S, S] -> z [N, D]`` (see the module docstring).

    Subclasses implement ``forward``, :meth:`output_dim` and :meth:`pooled_features`, set :attr:`split_qp`,
    and override :meth:`token_layout`, :meth:`describe` and :meth:`export_artifacts` where they have one.
    """

    split_qp: bool = False
    """Whether ``z`` is laid out as ``[q; p]`` (readouts q, p, qp); else the single readout z."""

    def output_dim(self, image_size: int) -> int:
        """Embedding width ``D`` for square ``image_size`` inputs; ``ValueError`` for sizes it cannot take."""
        raise NotImplementedError(f"{type(self).__name__} must implement output_dim(image_size)")

    def token_layout(self, image_size: int) -> TokenLayout | None:
        """The token grid ``z`` flattens for ``image_size`` inputs, or ``None`` when ``z`` is not a token grid."""
        return None

    def pooled_features(self, images: Tensor) -> Tensor:
        """The standard frozen feature ``[N, F]`` of normalised ``images`` (no token head, no projector)."""
        raise NotImplementedError(f"{type(self).__name__} must implement pooled_features(images)")

    def describe(self) -> str:
        """One line describing the architecture (the model card's ``encoder`` row)."""
        return type(self).__name__

    def export_artifacts(self, image_size: int) -> list[ExportArtifact]:
        """Extra files for ``hamjepa export`` (the encoder's own state dict is always written); default none."""
        return []
