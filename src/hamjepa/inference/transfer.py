"""Transfer evaluation: the frozen encoder of a run on another labelled data set (``hamjepa eval --data``).

The data set is a packed ``.npz`` (``x_train`` / ``y_train`` / ``x_test`` / ``y_test``, e.g. CIFAR-10) or an
ImageFolder tree with ``train/`` and ``val/`` (or ``test/``). Its images get the run's evaluation
preprocessing (resize the shorter side, centre crop to the run's image size, the run's normalisation):
packed arrays already at the run's size pass unchanged (CIFAR-10 on a CIFAR-100 run), others are resized
as needed. The protocol and the outputs are those of ``hamjepa eval`` (:func:`hamjepa.evaluation.evaluate`),
with the data set's name in ``metrics.json`` and ``report.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from hamjepa.data.eval_data import (
    Batches,
    EvalData,
    eval_data_from_arrays,
    eval_data_from_imagefolder,
    first_split_present,
)
from hamjepa.data.sources import load_packed
from hamjepa.engine.checkpoint import run_dir_of
from hamjepa.evaluation.pipeline import evaluate, objective_readouts
from hamjepa.inference.model import InferenceError, load
from hamjepa.inference.preprocess import EvalPreprocess

TEST_SPLITS = ("val", "test")
"""Folders of an ImageFolder ``--data`` tree tried for the test split, in order."""

__all__ = ["TEST_SPLITS", "default_transfer_out", "evaluate_transfer", "transfer_data_name", "transfer_eval_data"]


def transfer_data_name(data: str | Path) -> str:
    """The data set's default name: the ``.npz`` file stem or the folder name."""
    path = Path(data)
    return path.stem if path.suffix == ".npz" else path.resolve().name


def _with_geometry(batches: Batches, preprocess: EvalPreprocess) -> Batches:
    def fn() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels in batches():
            yield preprocess.geometry(images), labels

    return fn


def transfer_eval_data(
    data: str | Path,
    preprocess: EvalPreprocess,
    *,
    batch_size: int = 256,
    num_workers: int = 4,
    subset: int | None = None,
) -> EvalData:
    """Eval data of a packed ``.npz`` or an ImageFolder tree, preprocessed for a run.

    Args:
        data: the ``.npz`` file or the folder holding ``train/`` and ``val/`` (or ``test/``).
        preprocess: the run's :class:`EvalPreprocess` (resize / crop / normalisation).
        batch_size: images per batch.
        num_workers: decoding workers (folders only).
        subset: keep a stratified slice of this many images per split.
    """
    path = Path(data)
    if path.is_file():
        if path.suffix != ".npz":
            raise InferenceError(f"eval: --data {path} is a file but not a packed .npz; pass an .npz or a folder")
        ed = eval_data_from_arrays(
            load_packed(path), batch_size=batch_size, mean=preprocess.mean, std=preprocess.std, subset=subset
        )
        return dataclasses.replace(
            ed, train=_with_geometry(ed.train, preprocess), test=_with_geometry(ed.test, preprocess)
        )
    if path.is_dir():
        test_split = first_split_present(path, TEST_SPLITS)
        if first_split_present(path, ("train",)) is None or test_split is None:
            raise InferenceError(
                f"eval: --data {path} must hold train/<class>/<image> and val/<class>/<image> (or test/ instead "
                "of val/); pass such a folder or a packed .npz to --data"
            )
        print(f"[eval] --data {path}: train/ for the kNN bank and probe, {test_split}/ for testing", flush=True)
        ed = eval_data_from_imagefolder(
            path,
            batch_size=batch_size,
            num_workers=num_workers,
            subset=subset,
            resize=preprocess.resize,
            crop=preprocess.crop,
            test_split=test_split,
        )
        return dataclasses.replace(ed, mean=preprocess.mean, std=preprocess.std)
    raise InferenceError(
        f"eval: --data {path} does not exist; pass a packed .npz or a folder with train/ and val/ (or test/)"
    )


def default_transfer_out(path: str | Path, name: str) -> Path:
    """``RUN_DIR/eval_<name>`` (for a checkpoint file: its run folder's), or ``EXPORT_DIR/eval_<name>``."""
    given = Path(path)
    if given.is_dir():
        return given / f"eval_{name}"

    return run_dir_of(given) / f"eval_{name}"


def evaluate_transfer(
    path: str | Path,
    data: str | Path,
    *,
    name: str | None = None,
    out: Path | None = None,
    device: str | None = None,
    options: Any = None,
    split_qp: str = "auto",
    subset: int | None = None,
    batch_size: int = 256,
    num_workers: int = 4,
) -> dict[str, Any]:
    """Evaluate the frozen encoder of a run / checkpoint / export on another labelled data set.

    Args:
        path: what :func:`hamjepa.load` accepts.
        data: a packed ``.npz`` or a folder with ``train/`` and ``val/`` (or ``test/``).
        name: the data set's name in the report (default: :func:`transfer_data_name`).
        out: output folder (default :func:`default_transfer_out`).
        device: torch device (default: CUDA when present).
        options: :class:`~hamjepa.evaluation.EvalOptions` (default: the paper's protocol).
        split_qp: ``auto`` (the encoder's layout), ``on`` (q, p, qp) or ``off`` (z).
        subset: a stratified slice of this many images per split.
        batch_size, num_workers: feature-extraction batches and decoding workers.

    Returns:
        The metrics dict (``metrics["dataset"] == name``).
    """
    model = load(path, device="cpu")
    name = name or transfer_data_name(data)
    eval_data = transfer_eval_data(
        data, model.preprocess, batch_size=batch_size, num_workers=num_workers, subset=subset
    )
    flag = model.split_qp if split_qp == "auto" else split_qp == "on"
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return evaluate(
        model.encoder,
        eval_data,
        split_qp=flag,
        out_dir=out or default_transfer_out(path, name),
        device=dev,
        options=options,
        checkpoint=str(model.info.get("checkpoint", model.source)),
        config=model.config,
        dataset=name,
        extra_readouts=objective_readouts(model.objective, dev),
    )
