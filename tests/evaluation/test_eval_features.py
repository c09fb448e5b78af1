"""Feature extraction, readout slicing and the input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.evaluation._eval_testutils import TinyEncoder, batches, class_tinted_images
from torch import Tensor, nn

from hamjepa.evaluation.features import check_labels, extract_features
from hamjepa.models.phase_space import readouts


class RecordingFlatten(nn.Module):
    """Flattens the normalised input and records whether it was called in training mode."""

    def __init__(self) -> None:
        super().__init__()
        self.modes: list[bool] = []

    def forward(self, x: Tensor) -> Tensor:
        self.modes.append(self.training)
        return x.flatten(1)


def test_extract_normalises_on_device_in_eval_mode_and_restores_mode() -> None:
    x, y = class_tinted_images(10, 3, 4, seed=0)
    enc = RecordingFlatten().train()
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    feats, labels = extract_features(enc, batches(x, y, 4), mean, std, "cpu")
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    expected = ((x.double() / 255 - m.double()) / s.double()).flatten(1)
    assert feats.dtype == torch.float32 and feats.shape == (10, 48)
    np.testing.assert_allclose(feats.double().numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)
    assert torch.equal(labels, y)
    assert enc.modes == [False, False, False] and enc.training


def test_bf16_autocast_is_close_to_fp32_and_returns_fp32() -> None:
    x, y = class_tinted_images(12, 3, 8, seed=0)
    torch.manual_seed(0)
    enc = TinyEncoder()
    f32, _ = extract_features(enc, batches(x, y, 6), (0.5,) * 3, (0.25,) * 3, "cpu")
    bf, _ = extract_features(enc, batches(x, y, 6), (0.5,) * 3, (0.25,) * 3, "cpu", dtype="bf16")
    assert bf.dtype == torch.float32
    assert (bf - f32).abs().max() < 0.05 * f32.abs().max()
    assert not torch.equal(bf, f32)


def test_readouts_slice_one_forward_pass() -> None:
    f = torch.arange(12.0).view(2, 6)
    r = readouts(f, split_qp=True)
    assert list(r) == ["q", "p", "qp"]
    assert torch.equal(r["q"], f[:, :3]) and torch.equal(r["p"], f[:, 3:]) and r["qp"] is f
    assert r["q"].data_ptr() == f.data_ptr()  # a view, not a second forward / copy
    assert list(readouts(f, split_qp=False)) == ["z"]
    with pytest.raises(ValueError, match="even feature dimension"):
        readouts(torch.zeros(2, 5), split_qp=True)


def test_input_errors() -> None:
    enc = RecordingFlatten()
    empty = batches(torch.zeros(0, 3, 4, 4, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64), 4)
    with pytest.raises(ValueError, match="empty feature set"):
        extract_features(enc, empty, (0.5,) * 3, (0.5,) * 3, "cpu")
    x, y = class_tinted_images(4, 2, 4, seed=0)
    with pytest.raises(ValueError, match="uint8"):
        extract_features(enc, batches(x.float(), y, 4), (0.5,) * 3, (0.5,) * 3, "cpu")
    with pytest.raises(ValueError, match="dtype"):
        extract_features(enc, batches(x, y, 4), (0.5,) * 3, (0.5,) * 3, "cpu", dtype="fp16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="class-count mismatch"):
        check_labels(torch.tensor([0, 3]), 3, "test")
