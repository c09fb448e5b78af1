"""Encoders and the phase-space layout ``z = [q; p]`` (docs/spec.md §B).

Encoders are registered components (:func:`register_encoder`; ``model.name`` in the config selects one):
``resnet18_tokens`` (:class:`TokenEncoder`, the paper's ResNet-18 token encoder and the default) and ``vit``
(:class:`ViTTokenEncoder`, a timm Vision Transformer in the same token layout; needs ``pip install
hamjepa[vit]``). Every encoder follows the :class:`Encoder` protocol (see :mod:`hamjepa.models.protocol`).
Importing an encoder module registers it; the registry imports no encoder, so any import order works.
"""

from hamjepa.models.encoder import CANONICAL_IMAGE_SIZE, PROJECTOR_DIM, TokenEncoder
from hamjepa.models.phase_space import flatten_tokens, merge_qp, split_qp
from hamjepa.models.protocol import Encoder, ExportArtifact, TokenLayout
from hamjepa.models.registry import DEFAULT_ENCODER, available_encoders, get_encoder_class, register_encoder
from hamjepa.models.vit import ViTTokenEncoder

__all__ = [
    "CANONICAL_IMAGE_SIZE",
    "DEFAULT_ENCODER",
    "PROJECTOR_DIM",
    "Encoder",
    "ExportArtifact",
    "TokenEncoder",
    "TokenLayout",
    "ViTTokenEncoder",
    "available_encoders",
    "flatten_tokens",
    "get_encoder_class",
    "merge_qp",
    "register_encoder",
    "split_qp",
]
