"""The ImageFolder train stream's decoders: DCT-scaled JPEG decoding, batched device decoding (run on the CPU
here; CUDA only when present), the decoder choice, and the corrupt-file policies."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch
from torchvision.io import encode_jpeg, encode_png

from hamjepa.data import folder_stream, folder_views
from hamjepa.data.augment import imagenet_augment
from hamjepa.data.augment_params import CropParams
from hamjepa.data.folder_stream import ImageFolderStream
from hamjepa.data.folder_views import (
    FolderViews,
    collate_views,
    crop_resize_scaled,
    crop_resize_uint8,
    dct_scale,
    decode_jpeg_scaled,
    decode_jpegs_on,
    resolve_decode,
)
from hamjepa.data.imagefolder import CorruptImageError, ImageFolderSource, decode_rgb_bytes

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")


def _smooth_image(h: int, w: int, seed: int) -> torch.Tensor:
    """A photo-like uint8 [3, h, w]: smooth gradients and blobs plus mild texture."""
    g = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, h)[:, None]
    x = torch.linspace(0, 1, w)[None, :]
    chans = []
    for _ in range(3):
        f = torch.rand(4, generator=g) * 6 + 1
        v = 0.5 + 0.25 * torch.sin(f[0] * math.pi * x + f[1] * y) + 0.2 * torch.cos(f[2] * math.pi * y * x * f[3])
        chans.append(v)
    img = torch.stack(chans) + 0.03 * torch.randn(3, h, w, generator=g)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8)


def _write_jpeg(path: Path, img: torch.Tensor) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_jpeg(img, quality=92).numpy().tobytes())


def _box(top: int, left: int, h: int, w: int) -> CropParams:
    t = lambda v: torch.tensor([v], dtype=torch.int64)  # noqa: E731
    return CropParams(t(top), t(left), t(h), t(w))


def _tree(root: Path, n: int = 3, h: int = 40, w: int = 48) -> Path:
    for split in ("train", "val"):
        for c in ("a", "b"):
            for i in range(n):
                _write_jpeg(root / split / c / f"{i}.JPEG", _smooth_image(h, w, seed=i + 10 * (c == "b")))
    return root


def test_dct_scale_keeps_the_output_resolution() -> None:
    assert dct_scale([_box(0, 0, 448, 500)], [224]) == 2
    assert dct_scale([_box(0, 0, 447, 900)], [224]) == 1
    assert dct_scale([_box(0, 0, 900, 950)], [224]) == 4
    assert dct_scale([_box(0, 0, 2000, 1800)], [224]) == 8
    # every view of every group must permit it
    assert dct_scale([_box(0, 0, 900, 950), _box(0, 0, 300, 300)], [224, 96]) == 2


def test_dct_scaled_decoding_is_the_same_picture_up_to_resampling(tmp_path: Path) -> None:
    img = _smooth_image(960, 1000, seed=3)
    _write_jpeg(tmp_path / "big.jpg", img)
    data = torch.frombuffer(bytearray((tmp_path / "big.jpg").read_bytes()), dtype=torch.uint8)
    full = decode_rgb_bytes(data, "big.jpg")
    for scale, box in ((2, _box(17, 31, 601, 470)), (4, _box(3, 9, 950, 990))):
        assert dct_scale([box], [224]) == scale
        scaled = decode_jpeg_scaled(data, scale, "big.jpg")
        assert scaled.size == (250 if scale == 4 else 500, 240 if scale == 4 else 480)
        ours = crop_resize_scaled(scaled, box, 224, scale).float()
        ref = crop_resize_uint8(full, box, 224).float()
        assert ours.shape == ref.shape == (1, 3, 224, 224)
        diff = (ours - ref).abs()
        assert diff.mean() < 1.5 and diff.quantile(0.99) < 8, (scale, diff.mean(), diff.quantile(0.99))
        # a box shifted by one output pixel is much further off: the alignment is right
        shifted = crop_resize_uint8(full, _box(17 + box.height.item() // 224 * 3, 31, 601, 470), 224).float()
        if scale == 2:
            assert (ours - shifted).abs().mean() > 2 * diff.mean()


def test_worker_uses_dct_scaling_only_when_the_crops_permit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "ds"
    _write_jpeg(root / "train" / "a" / "big.JPEG", _smooth_image(1000, 1000, seed=1))
    _write_jpeg(root / "train" / "a" / "small.JPEG", _smooth_image(300, 320, seed=2))
    source = ImageFolderSource(root, "train")
    calls: list[int] = []

    def spy(data, scale, path):
        calls.append(scale)
        return decode_jpeg_scaled(data, scale, path)

    monkeypatch.setattr(folder_views, "decode_jpeg_scaled", spy)
    views = FolderViews(source, imagenet_augment(), seed=0)
    big = views[(0, 0)]
    assert calls and all(s >= 2 for s in calls)
    calls.clear()
    small = views[(1, 0)]
    assert calls == []
    exact = FolderViews(source, imagenet_augment(), seed=0, dct_scaling=False)
    assert torch.equal(exact[(1, 0)].crops[0], small.crops[0])  # no scaling: identical to the plain decoder
    diff = (exact[(0, 0)].crops[0].float() - big.crops[0].float()).abs()
    assert big.crops[0].shape == (2, 3, 224, 224) and diff.mean() < 1.5


def test_decode_choice() -> None:
    assert resolve_decode("auto", torch.device("cuda")) == "device"
    assert resolve_decode("auto", torch.device("cpu")) == "workers"
    assert resolve_decode("device", torch.device("cpu")) == "device"
    with pytest.raises(ValueError, match="decode must be"):
        resolve_decode("gpu", torch.device("cpu"))  # type: ignore[arg-type]


def test_stream_on_cuda_device_decodes_there_without_touching_cuda(tmp_path: Path) -> None:
    src = ImageFolderSource(_tree(tmp_path), "train")
    stream = ImageFolderStream(src, 4, imagenet_augment(), seed=0, device="cuda", num_workers=0)
    assert stream.decode == "device" and stream._views.decode == "device"
    assert ImageFolderStream(src, 4, imagenet_augment(), seed=0, device="cpu", num_workers=0).decode == "workers"


def _batches(stream: ImageFolderStream):
    stream.set_epoch(0)
    return list(stream._loader())


def test_device_decoding_matches_worker_decoding(tmp_path: Path) -> None:
    root = _tree(tmp_path, h=260, w=300)
    (root / "train" / "b" / "2.JPEG").unlink()
    png = _smooth_image(250, 280, seed=9)
    (root / "train" / "b" / "p.png").write_bytes(encode_png(png).numpy().tobytes())
    src = ImageFolderSource(root, "train")
    kw = dict(seed=4, device="cpu", num_workers=0, drop_last=False)
    on_workers = ImageFolderStream(src, 6, imagenet_augment(), decode="workers", **kw)
    on_device = ImageFolderStream(src, 6, imagenet_augment(), decode="device", **kw)
    (bw,), (bd,) = _batches(on_workers), _batches(on_device)
    assert len(bd.encoded) == 5 and bd.crops is not None and bd.crops[0].shape[0] == 1  # the PNG in a worker
    assert torch.equal(bw.labels, bd.labels)
    gw, gd = on_workers._device_crops(bw, 0), on_device._device_crops(bd, 0)
    assert gw[0].shape == gd[0].shape == (2, 6, 3, 224, 224)
    assert (gw[0].int() - gd[0].int()).abs().max() <= 1  # the same crops up to the uint8 rounding
    views_w, _ = next(iter(on_workers))
    views_d, _ = next(iter(on_device))
    torch.testing.assert_close(views_w, views_d, atol=0.1, rtol=0)


def test_device_decoder_refusal_falls_back_to_the_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = ImageFolderSource(_tree(tmp_path), "train")
    stream = ImageFolderStream(src, 4, imagenet_augment(), seed=1, device="cpu", num_workers=0, decode="device")
    batch = _batches(stream)[0]
    ref = stream._device_crops(batch, 0)
    monkeypatch.setattr(folder_stream, "decode_jpegs_on", lambda device, encoded: [None] * len(encoded))
    assert torch.equal(stream._device_crops(batch, 0)[0], ref[0])


def test_decode_jpegs_on_isolates_a_bad_file(tmp_path: Path) -> None:
    good = encode_jpeg(_smooth_image(16, 16, 0))
    out = decode_jpegs_on(torch.device("cpu"), [good, good[:40].clone(), good])
    assert out[1] is None and out[0] is not None and out[2] is not None and out[0].shape == (3, 16, 16)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batched_decoding_matches_the_workers(tmp_path: Path) -> None:  # pragma: no cover - GPU only
    src = ImageFolderSource(_tree(tmp_path, h=260, w=300), "train")
    kw = dict(seed=4, device="cuda", num_workers=0)
    on_workers = ImageFolderStream(src, 6, imagenet_augment(), decode="workers", **kw)
    on_device = ImageFolderStream(src, 6, imagenet_augment(), **kw)
    assert on_device.decode == "device"
    (bw,), (bd,) = _batches(on_workers), _batches(on_device)
    gw, gd = on_workers._device_crops(bw, 0), on_device._device_crops(bd, 0)
    assert (gw[0].int() - gd[0].int()).abs().float().mean() < 1.0


# ---------------------------------------------------------------------------------------------- corrupt files
def _corrupt_tree(root: Path) -> dict[str, Path]:
    _tree(root, n=4)
    bad = {
        "truncated": root / "train" / "a" / "1.JPEG",
        "empty": root / "train" / "b" / "2.JPEG",
        "not an image": root / "train" / "b" / "3.JPEG",
        "truncated late": root / "train" / "a" / "2.JPEG",  # the header still reads: fails when decoding
    }
    bad["truncated late"].write_bytes(bad["truncated late"].read_bytes()[:-400])
    bad["truncated"].write_bytes(bad["truncated"].read_bytes()[:300])
    bad["empty"].write_bytes(b"")
    bad["not an image"].write_bytes(b"just some text, not a picture\n")
    return bad


@pytest.mark.parametrize("decode", ["workers", "device"])
def test_on_corrupt_error_names_the_file(tmp_path: Path, decode: str) -> None:
    _corrupt_tree(tmp_path)
    src = ImageFolderSource(tmp_path, "train")
    stream = ImageFolderStream(src, 8, imagenet_augment(), seed=0, device="cpu", num_workers=0, decode=decode)
    with pytest.raises(CorruptImageError, match=r"cannot decode image .*JPEG .*data\.on_corrupt=skip") as info:
        next(iter(stream))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("decode", "workers"), [("workers", 0), ("device", 0), ("workers", 1)])
def test_on_corrupt_skip_reports_every_skipped_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, decode: str, workers: int
) -> None:
    bad = _corrupt_tree(tmp_path)
    src = ImageFolderSource(tmp_path, "train")
    stream = ImageFolderStream(
        src, 8, imagenet_augment(), seed=0, device="cpu", num_workers=workers, decode=decode, on_corrupt="skip"
    )
    with caplog.at_level(logging.WARNING, logger="hamjepa.data.folder_stream"):
        (views, labels), *_ = list(stream)
    assert views.shape == (2, 8, 3, 224, 224) and torch.isfinite(views).all() and labels.shape == (8,)
    skipped = dict(stream.pop_skipped())
    assert skipped == {
        str(bad["truncated"]): pytest.approx(skipped[str(bad["truncated"])]),
        str(bad["empty"]): "empty file",
        str(bad["not an image"]): "not an image",
        str(bad["truncated late"]): "Image is incomplete or truncated",
    }
    assert stream.pop_skipped() == []
    assert sum("skipped corrupt image" in r.getMessage() for r in caplog.records) == 4


def test_collate_keeps_positions(tmp_path: Path) -> None:
    src = ImageFolderSource(_tree(tmp_path), "train")
    views = FolderViews(src, imagenet_augment(), seed=0, decode="device")
    batch = collate_views([views[(i, 0)] for i in range(3)])
    assert batch.encoded_positions == [0, 1, 2] and batch.crops is None and batch.labels.tolist() == [0, 0, 0]


@pytest.mark.realdata
@pytest.mark.slow
def test_worker_crops_equal_the_decode_then_crop_reference_on_real_jpegs(shared_data: Path) -> None:
    """Boxes from the header + torchvision decoding give exactly the crops of decoding first and sampling the
    boxes from the decoded size (the stream's previous computation)."""
    from torchvision.transforms.v2.functional import resized_crop

    from hamjepa.data.augment_params import sample_crop_params
    from hamjepa.data.seeding import TAG_CROP, make_generator

    source = ImageFolderSource(shared_data / "imagenette-mini", "train")
    aug = imagenet_augment()
    views = FolderViews(source, aug, seed=7)
    for index in (0, 777, 2599):
        image = source.decode(index)
        gen = make_generator("cpu", 7, 3, index, TAG_CROP)
        g = aug.groups[0]
        box = sample_crop_params(g.n_views, image.shape[1], image.shape[2], g.scale, aug.settings.ratio, gen)
        ref = torch.stack(
            [
                resized_crop(image, int(t), int(le), int(h), int(w), [g.size, g.size], antialias=True)
                for t, le, h, w in zip(box.top, box.left, box.height, box.width, strict=True)
            ]
        )
        item = views[(index, 3)]
        assert item.label == source.samples[index][1] and torch.equal(item.crops[0], ref)


def test_worker_crop_boxes_follow_torchvision_random_resized_crop(tmp_path: Path) -> None:
    """The crop boxes the workers take (ImageNet preset: scale (0.4, 1), ratio (3/4, 4/3)) have the distribution
    of torchvision's ``RandomResizedCrop.get_params`` on a 500x375 image (quantiles of area and aspect)."""
    from torchvision.transforms import v2

    _write_jpeg(tmp_path / "train" / "a" / "x.JPEG", _smooth_image(375, 500, seed=0))
    views = FolderViews(ImageFolderSource(tmp_path, "train"), imagenet_augment(), seed=0)
    n = 1500
    ours = [views.sample_boxes(375, 500, epoch=0, index=i)[0] for i in range(n)]
    h = torch.cat([b.height for b in ours]).double()
    w = torch.cat([b.width for b in ours]).double()
    torch.manual_seed(0)
    img = torch.zeros(3, 375, 500)
    ref = torch.tensor(
        [v2.RandomResizedCrop.get_params(img, [0.4, 1.0], [3 / 4, 4 / 3])[2:] for _ in range(2 * n)]
    ).double()
    q = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], dtype=torch.float64)
    for name, a, b in (
        ("area", h * w / (375 * 500), ref[:, 0] * ref[:, 1] / (375 * 500)),
        ("aspect", w / h, ref[:, 1] / ref[:, 0]),
    ):
        assert (a.quantile(q) - b.quantile(q)).abs().max() < 0.03, name
    assert (h * w).min() >= 0.4 * 375 * 500 * 0.98 and imagenet_augment().blur_kernel == 23
