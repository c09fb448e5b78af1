"""Use a trained model: load it, embed images, export it without pickle, evaluate it on other data.

- :func:`load` (also ``hamjepa.load``) -> :class:`HamjepaModel` with ``embed`` and ``predict``.
- :func:`~hamjepa.inference.export.export_run` -- ``hamjepa export``: safetensors, config, metrics, model card.
- :func:`~hamjepa.inference.embed.embed_images` -- ``hamjepa embed``: a folder of images to .npz / .npy.
- :func:`~hamjepa.inference.transfer.evaluate_transfer` -- ``hamjepa eval RUN --data ...``.
"""

from __future__ import annotations

from hamjepa.lazy_exports import lazy_exports

# Imported on first use (hamjepa.lazy_exports): importing the package, e.g. for `--help`, loads no torch.
__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".model": (
            "HamjepaModel",
            "InferenceError",
            "best_device",
            "load",
        ),
        ".preprocess": ("EvalPreprocess",),
    },
)
