"""MNIST data: the digits through torchvision, the shipped test sample, and in-memory batches.

The centre-box hole is ``inpaintlib.masks.center_hole``; the pixel-range conversions are
``inpaintlib.utils.to_model`` and ``to_unit``.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..checks import check_int
from ..utils import to_model
from ..gaussian import GaussianModel, fit_gaussian
from ..gaussian_mixture import GaussianMixtureModel, fit_mixture

SAMPLE_FILE = Path(__file__).parent.parent / "assets" / "mnist_test_sample.npz"


def load_mnist(data_root: str | os.PathLike = "data", train: bool = True, download: bool = True):
    """All MNIST images of one split as a uint8 tensor (N, 1, 28, 28) and the labels (N,).

    Uses ``torchvision.datasets.MNIST(root=data_root)``: files already in
    ``<data_root>/MNIST/raw`` are used as they are; otherwise torchvision downloads them. With
    neither the files nor a network, a FileNotFoundError names the folder to fill."""
    from torchvision.datasets import MNIST

    root = Path(data_root)
    try:
        ds = MNIST(root=str(root), train=train, download=download)
    except Exception as err:  # torchvision raises RuntimeError / URLError / OSError here
        raise FileNotFoundError(
            f"MNIST is not in {root / 'MNIST' / 'raw'} and could not be downloaded ({type(err).__name__}: {err}). "
            f"Put the four raw MNIST files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            f"t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte) in that folder, or pass data_root= "
            f"a folder that holds MNIST/raw/.") from err
    return ds.data.unsqueeze(1).contiguous(), ds.targets.clone()


def load_test_images(data_root: str | os.PathLike = "data", n: int | None = None, allow_sample: bool = True):
    """The first ``n`` MNIST test images as float [0, 1] (n, 1, 28, 28) and their labels.

    Falls back to the small sample shipped with the package (the first 1000 test images) when the
    full split is not available and ``n`` fits in it, so the demo runs offline on a fresh clone."""
    try:
        images, labels = load_mnist(data_root, train=False, download=not allow_sample)
    except FileNotFoundError:
        if not allow_sample:
            raise
        images, labels = load_mnist_sample()
        if n is not None and n > len(images):
            raise
    if n is not None:
        n = check_int(n, "n_eval (at most the size of the test split)", 1, len(images))
        images, labels = images[:n], labels[:n]
    return images.float() / 255.0, labels


def load_mnist_sample():
    """The first 1000 MNIST test images (uint8) and labels, shipped with the package."""
    import numpy as np

    with np.load(SAMPLE_FILE, allow_pickle=False) as blob:
        return torch.from_numpy(blob["images"]).unsqueeze(1).contiguous(), torch.from_numpy(blob["labels"]).long()


class TensorBatches:
    """Shuffled mini-batches from a uint8 image tensor held in memory, as float [-1, 1].

    MNIST is 47 MB as uint8, so indexing one tensor is far cheaper than a per-item Dataset; the
    data stays on ``device`` (the GPU, if there is one) and batches never cross the bus. The order
    is ``EpochBatches``' (the one batch orderer of both recipes): epoch e's permutation depends only
    on (seed, e); set ``epoch`` and ``skip`` (batches already seen) before iterating. Distributed:
    every rank draws the same order and takes every ``world_size``-th image of each global batch."""

    def __init__(self, images_uint8: torch.Tensor, batch_size: int, seed: int, device, rank: int = 0,
                 world_size: int = 1):
        from ..trainer import EpochBatches

        self.images = images_uint8.to(device)
        self.order = EpochBatches(len(images_uint8), batch_size, seed, rank, world_size)

    def set_epoch(self, epoch: int, skip: int = 0) -> "TensorBatches":
        self.order.epoch, self.order.skip = epoch, skip
        return self

    def __len__(self) -> int:
        return self.order.batches_per_epoch  # the last partial batch is dropped

    def __iter__(self):
        for idx in self.order:
            yield to_model(self.images[torch.tensor(idx, device=self.images.device)].float() / 255.0)


def _pooled_digits(data_root: str, size: int, n: int | None):
    """The first ``n`` training digits in [0, 1] (N, 1, size, size), average-pooled when ``size`` < 28
    (adaptive average pooling; 14 and 7 pool 2x2 and 4x4), and their labels."""
    size = check_int(size, "size", 2, 28)
    data, labels = load_mnist(data_root, train=True)
    x = data[:n].float() / 255.0
    if size != 28:
        x = torch.nn.functional.adaptive_avg_pool2d(x, size)
    return x, labels[:n]


def mnist_gaussian(data_root: str = "data", size: int = 28, rank: int = 32, n: int | None = None,
                   floor: float | None = None, T: int = 1000, schedule: str = "linear",
                   pred: str = "eps") -> GaussianModel:
    """The Gaussian fitted to MNIST training digits (the first ``n``, all if None), average-pooled
    to ``size`` x ``size`` when ``size`` < 28 (adaptive average pooling; 14 and 7 pool 2x2 and 4x4)."""
    x, _ = _pooled_digits(data_root, size, n)
    return fit_gaussian(x, rank=rank, floor=floor, T=T, schedule=schedule, pred=pred)


def mnist_mixture(data_root: str = "data", size: int = 14, rank: int = 8, n: int | None = 20000,
                  floor: float | None = None, T: int = 1000, schedule: str = "linear",
                  pred: str = "eps") -> GaussianMixtureModel:
    """One low-rank Gaussian per digit class (``gaussian_mixture.fit_mixture``) fitted to the first ``n``
    training digits (all if None), average-pooled to ``size`` x ``size``: the digit mixture of
    ``benchmarks/mixture_posterior.py`` and notebook 08 at the defaults."""
    x, labels = _pooled_digits(data_root, size, n)
    return fit_mixture(x, labels, rank=rank, floor=floor, T=T, schedule=schedule, pred=pred)
