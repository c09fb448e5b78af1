"""Seeded data for the BiJEPA dynamics benchmark: noisy sine waves, Lorenz trajectories, image halves.

All generators follow the BiJEPA paper (App. B.2) as restated in ``bijepa_lejepa.md`` Part 1:

* **Sine** (Sec. 1.3): ``sin(omega * t + phi)`` on 20 evenly spaced points of ``[0, 4 pi]`` (endpoints
  included), ``omega ~ U(0.8, 1.2)``, ``phi ~ U(0, 2 pi)``, i.i.d. Gaussian noise with std 0.05.
  Context = steps 0-9, target = steps 10-19; probe target = the value at step 10.
* **Lorenz** (Sec. 1.4): sigma 10, rho 28, beta 8/3, explicit forward Euler with dt 0.01, initial state
  ``U(-15, 15)^3``, no burn-in; the stored sequence starts at the state *after* the first Euler step and
  has 40 steps. Each generated set is normalised with one scalar mean and one scalar std over the whole
  array. Context = steps 0-19, target = steps 20-39 (flattened 20 x 3 = 60), probe target = state at step 20.
* **Image halves** (Sec. 1.5, with Fashion-MNIST in place of MNIST): left = columns 0-13,
  right = columns 14-27.

A :class:`SequenceTask` bundles one task's fixed sets (train pool or on-the-fly sampler, probe set,
held-out probe set, plot/test set). Sets come from independent child streams of one
:class:`numpy.random.SeedSequence`, so each set is reproducible on its own.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "FASHION_MNIST_DIRS",
    "LORENZ_BETA",
    "LORENZ_RHO",
    "LORENZ_SIGMA",
    "ImageHalves",
    "SequenceTask",
    "generate_lorenz",
    "generate_sine",
    "load_fashion_mnist",
    "make_image_halves",
    "make_lorenz_task",
    "make_sine_task",
    "normalise_scalar",
    "read_idx",
    "split_halves",
]

LORENZ_SIGMA = 10.0
LORENZ_RHO = 28.0
LORENZ_BETA = 8.0 / 3.0

#: Where the Debian package ``dataset-fashion-mnist`` installs the idx files.
FASHION_MNIST_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)


# ----------------------------------------------------------------------------------------------- sine
def generate_sine(n: int, rng: np.random.Generator, *, length: int = 20, noise_std: float = 0.05) -> np.ndarray:
    """Noisy sine waves ``sin(omega t + phi) + eps`` on ``linspace(0, 4 pi, length)``.

    Returns:
        float32 array ``[n, length, 1]``.
    """
    if n < 1 or length < 2:
        raise ValueError(f"need n >= 1 and length >= 2, got n={n}, length={length}")
    t = np.linspace(0.0, 4.0 * np.pi, length)
    omega = rng.uniform(0.8, 1.2, size=(n, 1))
    phi = rng.uniform(0.0, 2.0 * np.pi, size=(n, 1))
    clean = np.sin(omega * t[None, :] + phi)
    noisy = clean + rng.normal(0.0, noise_std, size=clean.shape)
    return noisy[..., None].astype(np.float32)


# --------------------------------------------------------------------------------------------- lorenz
def generate_lorenz(
    n: int,
    rng: np.random.Generator,
    *,
    length: int = 40,
    dt: float = 0.01,
    init_range: float = 15.0,
) -> np.ndarray:
    """Lorenz-63 trajectories by explicit forward Euler (sigma 10, rho 28, beta 8/3), no burn-in.

    The initial state is drawn from ``U(-init_range, init_range)^3``; the returned sequence starts at
    the state after the first Euler step.

    Returns:
        float64 array ``[n, length, 3]`` (un-normalised; see :func:`normalise_scalar`).
    """
    if n < 1 or length < 1:
        raise ValueError(f"need n >= 1 and length >= 1, got n={n}, length={length}")
    state = rng.uniform(-init_range, init_range, size=(n, 3))
    out = np.empty((n, length, 3))
    for step in range(length):
        x, y, z = state[:, 0], state[:, 1], state[:, 2]
        deriv = np.stack([LORENZ_SIGMA * (y - x), x * (LORENZ_RHO - z) - y, x * y - LORENZ_BETA * z], axis=1)
        state = state + dt * deriv
        out[:, step] = state
    return out


def normalise_scalar(x: np.ndarray) -> np.ndarray:
    """Subtract one scalar mean and divide by one scalar std over the whole array (float32 result)."""
    std = float(x.std())
    if std == 0.0:
        raise ValueError("cannot normalise a constant array (std = 0)")
    return ((x - float(x.mean())) / std).astype(np.float32)


# ---------------------------------------------------------------------------------------------- tasks
@dataclass
class SequenceTask:
    """One sequence task: context/target split, fixed sets and a training-batch sampler.

    Sequences are float32 tensors ``[N, T, C]``; the encoder sees ``[N, L * C]`` flattened segments.

    Attributes:
        name: ``"sine"`` or ``"lorenz"``.
        split: first target index (10 for sine, 20 for Lorenz); context = ``[:split]``.
        channels: C.
        probe: the paper's probe set ``[N_probe, T, C]`` (probes are trained on it; its final training
            error is what the paper reports).
        heldout: an independent set ``[N_heldout, T, C]`` on which the trained probes are evaluated.
        test: the small set ``[N_test, T, C]`` used for the forecast plots.
        train_pool: fixed training pool ``[N_pool, T, C]`` (Lorenz) or None (sine: fresh batches).
        train_rng: the NumPy stream behind :meth:`sample_train`.
    """

    name: str
    split: int
    channels: int
    probe: torch.Tensor
    heldout: torch.Tensor
    test: torch.Tensor
    train_pool: torch.Tensor | None
    train_rng: np.random.Generator = field(repr=False, default_factory=lambda: np.random.default_rng(0))

    @property
    def context_dim(self) -> int:
        """Flattened context size ``split * C`` (encoder input dim)."""
        return self.split * self.channels

    def context(self, seqs: torch.Tensor) -> torch.Tensor:
        """``[N, T, C] -> [N, split * C]``: the flattened context (past) segment."""
        return seqs[:, : self.split].reshape(seqs.shape[0], -1)

    def target(self, seqs: torch.Tensor) -> torch.Tensor:
        """``[N, T, C] -> [N, (T - split) * C]``: the flattened target (future) segment."""
        return seqs[:, self.split :].reshape(seqs.shape[0], -1)

    def next_value(self, seqs: torch.Tensor) -> torch.Tensor:
        """``[N, T, C] -> [N, C]``: the first target step (the 1-step forecast probe target)."""
        return seqs[:, self.split]

    def sample_train(self, batch_size: int) -> torch.Tensor:
        """A training batch ``[B, T, C]``: fresh sines, or indices drawn with replacement from the pool."""
        if self.train_pool is None:
            return torch.from_numpy(generate_sine(batch_size, self.train_rng))
        idx = self.train_rng.integers(0, self.train_pool.shape[0], size=batch_size)
        return self.train_pool[torch.from_numpy(idx)]


def _streams(seed: int, count: int) -> list[np.random.Generator]:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(count)]


def _train_stream(data_seed: int, train_seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([data_seed, train_seed, 0x7EA1]))


def make_sine_task(
    data_seed: int = 42, train_seed: int = 0, *, n_probe: int = 1000, n_heldout: int = 1000, n_test: int = 20
) -> SequenceTask:
    """Sine task (context 10, target 10, C=1); training batches are generated fresh at every step.

    ``data_seed`` fixes the probe, held-out and test sets; ``train_seed`` the training-batch stream.
    """
    probe, heldout, test = _streams(data_seed, 3)
    train = _train_stream(data_seed, train_seed)
    return SequenceTask(
        name="sine",
        split=10,
        channels=1,
        probe=torch.from_numpy(generate_sine(n_probe, probe)),
        heldout=torch.from_numpy(generate_sine(n_heldout, heldout)),
        test=torch.from_numpy(generate_sine(n_test, test)),
        train_pool=None,
        train_rng=train,
    )


def make_lorenz_task(
    data_seed: int = 42,
    train_seed: int = 0,
    *,
    n_train: int = 2000,
    n_probe: int = 1000,
    n_heldout: int = 1000,
    n_test: int = 20,
) -> SequenceTask:
    """Lorenz task (context 20 x 3, target 20 x 3); every set is scalar-normalised on its own.

    ``data_seed`` fixes the training pool and the probe, held-out and test sets; ``train_seed`` the
    stream of pool indices drawn (with replacement) for the training batches.
    """
    pool, probe, heldout, test = _streams(data_seed, 4)
    sampler = _train_stream(data_seed, train_seed)

    def make(n: int, rng: np.random.Generator) -> torch.Tensor:
        return torch.from_numpy(normalise_scalar(generate_lorenz(n, rng)))

    return SequenceTask(
        name="lorenz",
        split=20,
        channels=3,
        probe=make(n_probe, probe),
        heldout=make(n_heldout, heldout),
        test=make(n_test, test),
        train_pool=make(n_train, pool),
        train_rng=sampler,
    )


# --------------------------------------------------------------------------------------- image halves
def read_idx(path: str | Path) -> np.ndarray:
    """Read an idx file (``.gz`` or raw) of unsigned bytes into a NumPy array of its stored shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an idx file (bad magic number)")
    if data[2] != 0x08:
        raise ValueError(f"{path}: only unsigned-byte idx files are supported (type 0x{data[2]:02x})")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    array = np.frombuffer(data, dtype=np.uint8, offset=offset)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but holds {array.size} values")
    return array.reshape(shape).copy()  # writable, owns its memory


def _find_idx(root: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (root / name).is_file():
            return root / name
    return None


def find_fashion_mnist(root: str | Path | None = None) -> Path | None:
    """The first directory holding the four Fashion-MNIST idx files (``root`` or the Debian location)."""
    candidates = [Path(root)] if root is not None else list(FASHION_MNIST_DIRS)
    for directory in candidates:
        for sub in (directory, directory / "FashionMNIST" / "raw"):
            if all(
                _find_idx(sub, s) is not None
                for s in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte")
            ):
                return sub
    return None


def load_fashion_mnist(
    root: str | Path | None = None, *, download: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fashion-MNIST as ``(x_train [60000,28,28] uint8, y_train int64, x_test [10000,28,28], y_test)``.

    Looks in ``root`` (also ``root/FashionMNIST/raw``, torchvision's layout) or, without ``root``, in
    ``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``). With
    ``download=True`` and no files found, torchvision downloads them into ``root`` (needs a network).

    Raises:
        FileNotFoundError: when the files are absent and ``download`` is False.
    """
    directory = find_fashion_mnist(root)
    if directory is None and download:
        if root is None:
            raise ValueError("download=True needs root= (the directory to download Fashion-MNIST into)")
        from torchvision.datasets import FashionMNIST

        for train in (True, False):
            FashionMNIST(str(root), train=train, download=True)
        directory = find_fashion_mnist(root)
    if directory is None:
        where = root if root is not None else ", ".join(str(d) for d in FASHION_MNIST_DIRS)
        raise FileNotFoundError(
            f"Fashion-MNIST idx files not found in {where}; install the Debian package "
            "`dataset-fashion-mnist` (apt-get install dataset-fashion-mnist) or pass "
            "--fashion-mnist-root DIR --download"
        )
    arrays = []
    for stem in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        found = _find_idx(directory, stem)
        if found is None:
            raise FileNotFoundError(f"{stem}[.gz] missing in {directory}")
        arrays.append(read_idx(found))
    x_train, y_train, x_test, y_test = arrays
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


def split_halves(images: torch.Tensor, column: int = 14) -> tuple[torch.Tensor, torch.Tensor]:
    """``[N, 1, H, W] -> (left [N, 1, H, column], right [N, 1, H, W - column])``."""
    if images.ndim != 4:
        raise ValueError(f"images must be [N, 1, H, W], got shape {tuple(images.shape)}")
    return images[..., :column], images[..., column:]


@dataclass
class ImageHalves:
    """Left/right halves of a grey-scale image set, normalised with the training mean/std.

    Attributes:
        train_left, train_right: float32 ``[N, 1, 28, 14]`` (normalised).
        test_left, test_right: float32 ``[M, 1, 28, 14]`` (normalised).
        train_right_01, test_right_01: right halves rescaled to ``[0, 1]`` (decoder-probe targets).
        y_train, y_test: int64 labels.
        mean, std: the normalisation constants (training-set pixel statistics in ``[0, 1]`` units).
    """

    train_left: torch.Tensor
    train_right: torch.Tensor
    test_left: torch.Tensor
    test_right: torch.Tensor
    train_right_01: torch.Tensor
    test_right_01: torch.Tensor
    y_train: torch.Tensor
    y_test: torch.Tensor
    mean: float
    std: float


def make_image_halves(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> ImageHalves:
    """Build :class:`ImageHalves` from uint8 ``[N, 28, 28]`` images (split at column 14).

    Pixels are scaled to ``[0, 1]`` (``/255``, i.e. the min-max range of uint8 images) and normalised
    with the training set's scalar mean and std (the Fashion-MNIST analogue of MNIST's 0.1307/0.3081).
    """
    train01 = torch.from_numpy(x_train).float().div_(255.0).unsqueeze(1)
    test01 = torch.from_numpy(x_test).float().div_(255.0).unsqueeze(1)
    mean, std = float(train01.mean()), float(train01.std())
    train_n, test_n = (train01 - mean) / std, (test01 - mean) / std
    tl, tr = split_halves(train_n)
    el, er = split_halves(test_n)
    return ImageHalves(
        train_left=tl.contiguous(),
        train_right=tr.contiguous(),
        test_left=el.contiguous(),
        test_right=er.contiguous(),
        train_right_01=split_halves(train01)[1].contiguous(),
        test_right_01=split_halves(test01)[1].contiguous(),
        y_train=torch.from_numpy(np.array(y_train, dtype=np.int64)),
        y_test=torch.from_numpy(np.array(y_test, dtype=np.int64)),
        mean=mean,
        std=std,
    )
