"""Host-to-device copies of evaluation batches: pinned sources, no CPU permute (issue 17, item 5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hamjepa.data.eval_data import _array_batches, eval_loader
from hamjepa.evaluation.features import extract_features, to_device


def _nhwc(n: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8), np.arange(n, dtype=np.int64) % 3


def test_array_batches_are_channels_first_views_without_a_cpu_copy() -> None:
    x, y = _nhwc()
    batches = list(_array_batches(x, y, 4)())
    assert [b.shape for b, _ in batches] == [(4, 3, 8, 8), (4, 3, 8, 8), (2, 3, 8, 8)]
    first = batches[0][0]
    assert first.data_ptr() == x.ctypes.data  # a view of the array: the permute copied nothing on the CPU
    assert first.is_contiguous(memory_format=torch.channels_last) and not first.is_contiguous()
    torch.testing.assert_close(first, torch.from_numpy(x[:4]).permute(0, 3, 1, 2), rtol=0, atol=0)


def test_features_from_channels_last_views_equal_those_from_nchw_batches() -> None:
    x, y = _nhwc()
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten())

    def nchw():
        for b, lab in _array_batches(x, y, 4)():
            yield b.contiguous(), lab

    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    f_view, y_view = extract_features(encoder, _array_batches(x, y, 4), mean, std, "cpu")
    f_ref, y_ref = extract_features(encoder, nchw, mean, std, "cpu")
    torch.testing.assert_close(f_view, f_ref, rtol=0, atol=0)
    torch.testing.assert_close(y_view, y_ref, rtol=0, atol=0)


def test_to_device_pins_cpu_tensors_before_an_asynchronous_cuda_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, object]] = []

    def fake_pin(self: torch.Tensor) -> torch.Tensor:
        calls.append(("pin", None))
        return self

    def fake_to(self: torch.Tensor, device: object, non_blocking: bool = False) -> torch.Tensor:
        calls.append(("to", (str(device), non_blocking)))
        return self

    monkeypatch.setattr(torch.Tensor, "pin_memory", fake_pin)
    monkeypatch.setattr(torch.Tensor, "is_pinned", lambda self: False)
    monkeypatch.setattr(torch.Tensor, "to", fake_to)
    to_device(torch.zeros(3), torch.device("cuda", 0))
    assert calls == [("pin", None), ("to", ("cuda:0", True))]
    calls.clear()
    to_device(torch.zeros(3), torch.device("cpu"))
    assert calls == [("to", ("cpu", True))]  # nothing to pin for a CPU target


def test_imagefolder_eval_loader_pins_memory_when_cuda_is_present(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = torch.utils.data.TensorDataset(torch.zeros(4, 3, 2, 2, dtype=torch.uint8), torch.zeros(4))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert eval_loader(ds, 2, 0).pin_memory
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not eval_loader(ds, 2, 0).pin_memory
