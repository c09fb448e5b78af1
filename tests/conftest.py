"""Shared pytest fixtures: thread counts, and the location of ../shared/data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

torch.set_num_threads(2)

# Areas whose tests are many tiny ops: on a shared 2-core machine OpenMP hand-offs cost more than the work.
SINGLE_THREADED_AREAS = {"data", "evaluation", "sequences"}


@pytest.fixture(autouse=True)
def _thread_count(request: pytest.FixtureRequest) -> Iterator[None]:
    """One intra-op thread in the tiny-op areas, two elsewhere (ResNet forward/backward benefits)."""
    area = Path(request.node.path).resolve().relative_to(REPO_ROOT / "tests").parts[0]
    previous = torch.get_num_threads()
    torch.set_num_threads(1 if area in SINGLE_THREADED_AREAS else 2)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def cifar100_npz(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """The real CIFAR-100 unpacked once per session into a temp .npz (never into the repo)."""
    import subprocess
    import sys

    src = shared_data / "cifar100"
    if not (src / "unpack.py").is_file():
        pytest.skip(f"{src}/unpack.py not found")
    out = tmp_path_factory.mktemp("cifar100") / "cifar100.npz"
    subprocess.run(
        [sys.executable, str(src / "unpack.py"), str(out), "--src", str(src)], check=True, capture_output=True
    )
    return out
