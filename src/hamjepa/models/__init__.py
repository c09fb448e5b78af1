"""Encoders and the phase-space layout ``z = [q; p]`` (spec section B)."""

from hamjepa.models.encoder import CANONICAL_IMAGE_SIZE, PROJECTOR_DIM, TokenEncoder
from hamjepa.models.phase_space import flatten_tokens, merge_qp, split_qp

__all__ = [
    "CANONICAL_IMAGE_SIZE",
    "PROJECTOR_DIM",
    "TokenEncoder",
    "flatten_tokens",
    "merge_qp",
    "split_qp",
]
