"""``hamjepa embed``: folders, ImageFolder labels, globs, corrupt files listed, restart without redoing chunks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.inference.helpers import make_run
from torchvision.io import write_png

import hamjepa
from hamjepa.cli import main
from hamjepa.inference import InferenceError
from hamjepa.inference import embed as embed_module
from hamjepa.inference.embed import embed_images, list_images


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("embed"))


@pytest.fixture(scope="module")
def model(run: Path) -> hamjepa.inference.HamjepaModel:
    return hamjepa.load(run, device="cpu")


def _image_folder(root: Path, per_class: int = 2, corrupt: bool = True) -> Path:
    """``root/{ants,bees}/*.png`` (32 px noise) plus, optionally, one corrupt ``bees/broken.jpg``."""
    g = torch.Generator().manual_seed(0)
    for cls in ("ants", "bees"):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            write_png(torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g), str(root / cls / f"{i}.png"))
    if corrupt:
        (root / "bees" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def test_image_folder_with_a_corrupt_file(model, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _image_folder(tmp_path / "imgs")
    images = list_images(folder)
    assert images.classes == ["ants", "bees"] and images.labels == [0, 0, 1, 1, 1]
    result = embed_images(model, images, tmp_path / "emb.npz", readout="q", chunk_size=2, progress=False)
    assert result.n_embedded == 4 and result.chunks_total == 3 and result.chunks_reused == 0
    assert [name for name, _ in result.corrupt] == ["bees/broken.jpg"]
    assert "skipped corrupt image bees/broken.jpg" in capsys.readouterr().err
    with np.load(tmp_path / "emb.npz", allow_pickle=False) as out:
        assert out["files"].tolist() == ["ants/0.png", "ants/1.png", "bees/0.png", "bees/1.png"]
        assert out["labels"].tolist() == [0, 0, 1, 1] and out["classes"].tolist() == ["ants", "bees"]
        assert out["corrupt_files"].tolist() == ["bees/broken.jpg"]
        assert "cannot decode" in str(out["corrupt_errors"][0]) and str(out["readout"]) == "q"
        emb = out["embeddings"]
    assert emb.shape == (4, 1024) and emb.dtype == np.float32
    ref = torch.cat([model.embed([folder / f for f in pair], readout="q") for pair in (
        ["ants/0.png", "ants/1.png"], ["bees/0.png", "bees/1.png"])])  # fmt: skip
    assert torch.equal(torch.from_numpy(emb), ref)  # same batches as the chunks: bit-identical
    assert not (tmp_path / "emb.npz.partial").exists()


def test_restart_skips_finished_chunks(model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images = list_images(_image_folder(tmp_path / "imgs", per_class=3, corrupt=False))
    full = embed_images(model, images, tmp_path / "full.npz", chunk_size=2, progress=False)
    assert full.chunks_total == 3

    real_write, writes = embed_module._write_chunk, []

    def write_then_die(*args, **kwargs):
        if writes:
            raise KeyboardInterrupt  # killed while the second chunk is being written
        writes.append(args[0])
        real_write(*args, **kwargs)

    monkeypatch.setattr(embed_module, "_write_chunk", write_then_die)
    out = tmp_path / "again.npz"
    with pytest.raises(KeyboardInterrupt):
        embed_images(model, images, out, chunk_size=2, progress=False)
    assert sorted(p.name for p in (tmp_path / "again.npz.partial").iterdir()) == ["chunk_000000.npz", "job.json"]
    assert not out.exists()

    monkeypatch.setattr(embed_module, "_write_chunk", real_write)
    encoded: list[int] = []
    real_embed = type(model)._embed_normalised
    monkeypatch.setattr(
        type(model), "_embed_normalised", lambda self, x, r: encoded.append(len(x)) or real_embed(self, x, r)
    )
    again = embed_images(model, images, out, chunk_size=2, progress=False)
    assert again.chunks_reused == 1 and encoded == [2, 2]  # only chunks 1 and 2 were computed
    with np.load(out) as a, np.load(tmp_path / "full.npz") as b:
        assert np.array_equal(a["embeddings"], b["embeddings"]) and a["files"].tolist() == b["files"].tolist()
    # a different job in the same .partial folder is refused instead of mixed in
    (tmp_path / "other.npz.partial").mkdir()
    (tmp_path / "other.npz.partial" / "job.json").write_text(json.dumps({"format": 1, "readout": "p"}))
    with pytest.raises(InferenceError, match="different job"):
        embed_images(model, images, tmp_path / "other.npz", chunk_size=2, progress=False)


def test_glob_and_npy_output_via_the_cli(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _image_folder(tmp_path / "imgs")
    (folder / "ants" / "notes.txt").write_text("not an image")
    listed = list_images(str(folder / "**" / "*.png"))
    assert listed.labels is None and len(listed.files) == 4
    recursive = list_images(tmp_path)  # a folder that is not an ImageFolder: searched recursively, no labels
    assert recursive.labels is None and len(recursive.files) == 5
    out = tmp_path / "emb.npy"
    argv = ["embed", str(run), "--images", str(folder / "**" / "*.png"), "--out", str(out), "--readout", "p"]
    assert main([*argv, "--workers", "0", "--device", "cpu", "--no-progress"]) == 0
    assert "4 embeddings, 0 corrupt images skipped" in capsys.readouterr().out
    meta = json.loads(out.with_suffix(".json").read_text())
    assert len(meta["files"]) == 4 and meta["files"][0].endswith("ants/0.png") and meta["readout"] == "p"
    assert np.load(out).shape == (4, 1024)


def test_embed_errors_are_one_line(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _image_folder(tmp_path / "imgs", corrupt=False)
    for extra, needle in (
        (["--images", str(tmp_path / "nothing*.png"), "--out", "e.npz"], "neither a folder nor a glob"),
        (["--images", str(folder), "--out", str(tmp_path / "e.csv")], "must end in .npz or .npy"),
        (["--images", str(folder), "--out", str(tmp_path / "e.npz"), "--readout", "z"], "unknown readout"),
    ):
        assert main(["embed", str(run), *extra, "--workers", "0", "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and needle in err, err


def test_embed_and_export_have_complete_help(capsys: pytest.CaptureFixture[str]) -> None:
    from hamjepa.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, flags in (
        ("embed", ("--images", "--readout", "--chunk-size", "--out")),
        ("export", ("--out", "--force")),
    ):
        with pytest.raises(SystemExit) as exc:
            sub[name].parse_args(["--help"])
        assert exc.value.code == 0
        text = capsys.readouterr().out
        assert all(flag in text for flag in flags) and "Example: hamjepa " in text
