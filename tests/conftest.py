import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------
# the slow lane: `python -m pytest -m "not slow" tests` is the quick one (under 2 minutes on 2 CPU cores)


def pytest_collection_modifyitems(config, items):
    """The notebooks (nbval collects notebooks/*.ipynb under --nbval-lax) are slow: each runs a kernel."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def mnist_root() -> str:
    """A dataset root holding MNIST/raw (the repo's data/, which .ci/run links from ../shared)."""
    for root in (REPO / "data", REPO.parent / "shared" / "data"):
        if (root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
            return str(root)
    pytest.fail("MNIST raw files not found in data/MNIST/raw (run .ci/run or link ../shared/data/MNIST/raw there)")


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, mnist_root):
    """One tiny training run shared by the end-to-end tests (a few optimizer steps)."""
    from inpaintlib import train

    out = tmp_path_factory.mktemp("run")
    result = train(epochs=1, batch_size=16, max_steps=4, sample_every=2, sample_steps=4, steps=50,
                   warmup_steps=2, train_subset=64, base_channels=8, out_dir=str(out), data_root=mnist_root, progress=False)
    return result


def load_script(relpath: str, name: str):
    """Import a script of the repository that is not part of the package (benchmarks/, scripts/)."""
    spec = importlib.util.spec_from_file_location(name, REPO / relpath)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------------
# networks and images shared by the sampler, widget and benchmark tests


def make_tiny_net(base_channels: int = 16, T: int = 50, init_std: float | None = 0.02, seed: int = 0, **config):
    """A small random (untrained) ``DenoiserUNet`` in eval mode, the same for the same arguments.
    ``init_std``: every parameter drawn from N(0, init_std^2), so that the output is non-trivial;
    None keeps PyTorch's default initialisation. ``config``: any other ``ModelConfig`` field."""
    from inpaintlib.mnist.model import DenoiserUNet, ModelConfig

    torch.manual_seed(seed)
    net = DenoiserUNet(ModelConfig(base_channels=base_channels, T=T, **config))
    if init_std is not None:
        for p in net.parameters():
            torch.nn.init.normal_(p, std=init_std)
    return net.eval()


@pytest.fixture(scope="session")
def tiny_net():
    """Factory ``tiny_net(base_channels=16, T=50, init_std=0.02, seed=0, **config)``: a fresh small
    random network (``make_tiny_net``). Session-scoped, so hypothesis tests may take it too."""
    return make_tiny_net


def make_sparse_digits(n: int = 3, seed: int = 0) -> torch.Tensor:
    """(n, 1, 28, 28) digit-like random images in [0, 1]: about 30% of the pixels inked, with random grey."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 28, 28, generator=g) > 0.7).float() * torch.rand(n, 1, 28, 28, generator=g)


@pytest.fixture(scope="session")
def sparse_digits():
    """Factory ``sparse_digits(n=3, seed=0)`` (``make_sparse_digits``)."""
    return make_sparse_digits


@pytest.fixture(scope="session")
def binary_digits():
    """Factory ``binary_digits(n=2, seed=0)``: (n, 1, 28, 28) images of 0s and 1s, about 40% ones."""
    def binary_digits(n: int = 2, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return (torch.rand(n, 1, 28, 28, generator=g) > 0.6).float()
    return binary_digits


@pytest.fixture(scope="module")
def labelled_digits():
    """``(images, labels)``: three uniform random (3, 1, 28, 28) images in [0, 1] and the labels 7, 2, 1,
    a stand-in for a labelled test set (the widgets show the label)."""
    torch.manual_seed(1)
    images = torch.rand(3, 1, 28, 28)
    return images, torch.tensor([7, 2, 1])
