"""Exports and embeddings that tell the truth (issue 22, item 2; item 3's ``eval --data`` with ``test/``):
the card states the training images, exports are byte-reproducible, files follow the umask."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tests.inference.helpers import make_run
from torchvision.io import write_png

from hamjepa.atomic_files import deterministic_safetensors, write_safetensors
from hamjepa.evaluation import EvalOptions
from hamjepa.inference.export import export_run
from hamjepa.inference.transfer import evaluate_transfer

TINY = EvalOptions(k_values=(1, 2), probe_epochs=1, cosine_pairs=50, plots=False, progress=False)


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture(scope="module")
def subset_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("subset"), **{"data.subset": 16})


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_card_states_the_training_images(subset_run: Path, tmp_path: Path) -> None:
    card = (export_run(subset_run, tmp_path / "export") / "README.md").read_text()
    assert "| training images | 16 (`data.subset: 16`" in card
    assert card.splitlines()[0].endswith("cifar100 (16 training images), 2 epochs, seed 42")
    assert "2 global + 0 local views" in card
    (tmp_path / "full").mkdir()
    full = make_run(tmp_path / "full")
    card = (export_run(full, tmp_path / "export_full") / "README.md").read_text()
    assert "| training images | the whole training split (`data.subset: null`) |" in card


def test_export_is_byte_reproducible(subset_run: Path, tmp_path: Path) -> None:
    first = _digests(export_run(subset_run, tmp_path / "a"))
    second = _digests(export_run(subset_run, tmp_path / "b"))
    assert first == second
    assert {"encoder.safetensors", "hamjepa_export.json", "README.md"} <= set(first)


def test_safetensors_header_is_sorted_and_loads(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save

    tensors = {"b": torch.arange(3.0), "a": torch.ones(2, 2, dtype=torch.float64)}
    metadata = {"z": "1", "format": "pt", "m": "2", "a": "3"}
    data = deterministic_safetensors(save(tensors, metadata=metadata))
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0
    header = json.loads(data[8 : 8 + n])
    assert list(header) == sorted(header) and list(header["__metadata__"]) == sorted(metadata)
    path = write_safetensors(tmp_path / "t.safetensors", tensors, metadata)
    assert path.read_bytes() == data
    loaded = load_file(str(path))
    assert all(torch.equal(loaded[k], v) for k, v in tensors.items())


def test_export_files_follow_the_umask(subset_run: Path, tmp_path: Path, umask_022: None) -> None:
    out = export_run(subset_run, tmp_path / "export")
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert modes and set(modes.values()) == {0o644}, modes


@pytest.mark.parametrize("suffix", [".npz", ".npy"])
def test_embed_outputs_follow_the_umask(subset_run: Path, tmp_path: Path, suffix: str, umask_022: None) -> None:
    import hamjepa
    from hamjepa.inference.embed import embed_images, list_images

    (tmp_path / "imgs").mkdir()
    for i in range(2):
        write_png(torch.full((3, 32, 32), 40 * i, dtype=torch.uint8), str(tmp_path / "imgs" / f"{i}.png"))
    model = hamjepa.load(subset_run, device="cpu")
    out = tmp_path / f"emb{suffix}"
    embed_images(model, list_images(tmp_path / "imgs"), out, progress=False)
    assert out.stat().st_mode & 0o777 == 0o644


def _folder_tree(root: Path, test_name: str) -> Path:
    g = torch.Generator().manual_seed(0)
    for split in ("train", test_name):
        for cls in ("ants", "bees"):
            (root / split / cls).mkdir(parents=True)
            for i in range(2):
                image = torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8, generator=g)
                write_png(image, str(root / split / cls / f"{i}.png"))
    return root


def test_eval_data_accepts_test_instead_of_val(
    subset_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = _folder_tree(tmp_path / "tree", "test")
    metrics = evaluate_transfer(subset_run, tree, device="cpu", options=TINY, num_workers=0, out=tmp_path / "o")
    assert (metrics["n_train"], metrics["n_test"]) == (4, 4)
    assert "test/ for testing" in capsys.readouterr().out


def test_eval_data_without_a_test_split_names_both(subset_run: Path, tmp_path: Path) -> None:
    from hamjepa.inference import InferenceError

    tree = _folder_tree(tmp_path / "tree", "holdout")
    with pytest.raises(InferenceError, match=r"val/<class>/<image> \(or test/ instead of val/\)"):
        evaluate_transfer(subset_run, tree, device="cpu", options=TINY, num_workers=0)
