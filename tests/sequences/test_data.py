"""Seeded generators of the dynamics benchmark reproduce the spec's recipe and statistics."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from hamjepa.sequences.data import (
    LORENZ_BETA,
    LORENZ_RHO,
    LORENZ_SIGMA,
    find_fashion_mnist,
    generate_lorenz,
    generate_sine,
    load_fashion_mnist,
    make_image_halves,
    make_lorenz_task,
    make_sine_task,
    normalise_scalar,
    read_idx,
    split_halves,
)


def test_sine_shape_grid_and_noise_std() -> None:
    noisy = generate_sine(4000, np.random.default_rng(3))
    clean = generate_sine(4000, np.random.default_rng(3), noise_std=0.0)  # same omega, phi draws
    assert noisy.shape == (4000, 20, 1) and noisy.dtype == np.float32
    noise = noisy - clean
    assert abs(noise.std() - 0.05) < 0.002
    assert abs(noise.mean()) < 0.002
    assert np.abs(clean).max() <= 1.0 + 1e-6
    # Endpoints of linspace(0, 4 pi, 20): x(0) = sin(phi), x(4 pi) = sin(4 pi omega + phi), omega in [0.8, 1.2].
    rng = np.random.default_rng(7)
    omega, phi = rng.uniform(0.8, 1.2, size=(5, 1)), rng.uniform(0, 2 * np.pi, size=(5, 1))
    one = generate_sine(5, np.random.default_rng(7), noise_std=0.0)
    np.testing.assert_allclose(one[:, 0, 0], np.sin(phi[:, 0]), atol=1e-6)
    np.testing.assert_allclose(one[:, -1, 0], np.sin(4 * np.pi * omega[:, 0] + phi[:, 0]), atol=1e-5)


def test_lorenz_is_forward_euler_without_burn_in() -> None:
    traj = generate_lorenz(50, np.random.default_rng(11), length=40, dt=0.01)
    assert traj.shape == (50, 40, 3)

    def f(s: np.ndarray) -> np.ndarray:
        x, y, z = s[..., 0], s[..., 1], s[..., 2]
        return np.stack([LORENZ_SIGMA * (y - x), x * (LORENZ_RHO - z) - y, x * y - LORENZ_BETA * z], -1)

    np.testing.assert_allclose(traj[:, 1:], traj[:, :-1] + 0.01 * f(traj[:, :-1]), rtol=1e-12, atol=1e-12)
    init = np.random.default_rng(11).uniform(-15, 15, size=(50, 3))
    np.testing.assert_allclose(traj[:, 0], init + 0.01 * f(init), rtol=1e-12)


def test_normalise_scalar_is_one_global_mean_and_std() -> None:
    raw = generate_lorenz(200, np.random.default_rng(0))
    norm = normalise_scalar(raw)
    assert abs(float(norm.mean())) < 1e-5 and abs(float(norm.std()) - 1.0) < 1e-5
    # Not per channel: z has a large positive mean on the attractor, so the channels differ after scaling.
    channel_means = norm.reshape(-1, 3).mean(0)
    assert channel_means[2] - channel_means[0] > 0.5


def test_sine_task_sets_and_splits() -> None:
    task = make_sine_task(42, 0, n_probe=100, n_heldout=50, n_test=20)
    assert task.probe.shape == (100, 20, 1) and task.heldout.shape == (50, 20, 1) and task.test.shape == (20, 20, 1)
    assert task.context_dim == 10
    batch = task.sample_train(64)
    assert task.context(batch).shape == (64, 10) and task.target(batch).shape == (64, 10)
    torch.testing.assert_close(task.next_value(batch), batch[:, 10])
    # data_seed fixes the evaluation sets; train_seed only changes the training stream.
    other = make_sine_task(42, 1, n_probe=100, n_heldout=50, n_test=20)
    torch.testing.assert_close(other.probe, task.probe)
    assert not torch.equal(other.sample_train(8), make_sine_task(42, 0).sample_train(8))
    assert not torch.equal(task.probe[:50], task.heldout)


def test_lorenz_task_sizes_and_normalisation() -> None:
    task = make_lorenz_task(42, 0, n_train=300, n_probe=100, n_heldout=100, n_test=20)
    assert task.train_pool is not None and task.train_pool.shape == (300, 40, 3)
    assert task.context_dim == 60
    for seqs in (task.train_pool, task.probe, task.heldout, task.test):
        assert abs(float(seqs.mean())) < 1e-4 and abs(float(seqs.std(unbiased=False)) - 1) < 1e-3
    batch = task.sample_train(64)
    assert task.context(batch).shape == (64, 60) and task.target(batch).shape == (64, 60)
    torch.testing.assert_close(task.next_value(batch), batch[:, 20])
    # Batches are drawn from the fixed pool.
    pool_rows = {tuple(r.tolist()) for r in task.train_pool[:, 0]}
    assert all(tuple(r.tolist()) in pool_rows for r in batch[:, 0])


def _write_idx(path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path, gz: bool) -> None:
    array = np.random.default_rng(0).integers(0, 256, size=(3, 5, 4)).astype(np.uint8)
    path = tmp_path / ("x.idx.gz" if gz else "x.idx")
    _write_idx(path, array, gz)
    np.testing.assert_array_equal(read_idx(path), array)
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="idx"):
        read_idx(bad)


def test_fashion_mnist_loader_on_fake_files(tmp_path) -> None:
    rng = np.random.default_rng(0)
    for stem, shape in (
        ("train-images-idx3-ubyte", (12, 28, 28)),
        ("train-labels-idx1-ubyte", (12,)),
        ("t10k-images-idx3-ubyte", (5, 28, 28)),
        ("t10k-labels-idx1-ubyte", (5,)),
    ):
        high = 10 if "labels" in stem else 256
        _write_idx(tmp_path / f"{stem}.gz", rng.integers(0, high, size=shape), gz=True)
    x_train, y_train, x_test, y_test = load_fashion_mnist(tmp_path)
    assert x_train.shape == (12, 28, 28) and y_test.shape == (5,) and y_train.dtype == np.int64
    halves = make_image_halves(x_train, y_train, x_test, y_test)
    assert halves.train_left.shape == (12, 1, 28, 14) and halves.test_right.shape == (5, 1, 28, 14)
    assert float(halves.train_right_01.min()) >= 0 and float(halves.train_right_01.max()) <= 1
    full = torch.cat([halves.train_left, halves.train_right], dim=-1)
    assert abs(float(full.mean())) < 1e-4  # normalised with the training statistics
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "missing")


def test_split_halves() -> None:
    images = torch.arange(2 * 28 * 28, dtype=torch.float32).reshape(2, 1, 28, 28)
    left, right = split_halves(images)
    assert left.shape == right.shape == (2, 1, 28, 14)
    torch.testing.assert_close(torch.cat([left, right], -1), images)


@pytest.mark.realdata
def test_real_fashion_mnist() -> None:
    if find_fashion_mnist() is None:
        pytest.skip("Fashion-MNIST not installed (Debian package dataset-fashion-mnist)")
    x_train, y_train, x_test, y_test = load_fashion_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert sorted(np.unique(y_train).tolist()) == list(range(10))
    assert np.bincount(y_test).tolist() == [1000] * 10
