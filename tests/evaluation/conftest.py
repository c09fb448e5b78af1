"""Evaluation tests run single-threaded: the tensors are tiny and on the shared 2-core machine
OpenMP thread hand-offs cost more than the work itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
