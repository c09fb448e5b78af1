"""Use a trained model: load it, embed images, export it without pickle, evaluate it on other data.

- :func:`load` (also ``hamjepa.load``) -> :class:`HamjepaModel` with ``embed`` and ``predict``.
- :func:`~hamjepa.inference.export.export_run` -- ``hamjepa export``: safetensors, config, metrics, model card.
- :func:`~hamjepa.inference.embed.embed_images` -- ``hamjepa embed``: a folder of images to .npz / .npy.
- :func:`~hamjepa.inference.transfer.evaluate_transfer` -- ``hamjepa eval RUN --data ...``.
"""

from hamjepa.inference.model import HamjepaModel, InferenceError, best_device, load
from hamjepa.inference.preprocess import EvalPreprocess

__all__ = ["EvalPreprocess", "HamjepaModel", "InferenceError", "best_device", "load"]
