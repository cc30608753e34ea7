import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


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
