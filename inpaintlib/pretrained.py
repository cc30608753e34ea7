"""Shipped checkpoints: ``pretrained(name)`` returns the path of one, for ``load_model``."""
from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent / "weights"

# name -> file in inpaintlib/weights/ (each with a model card <file>.md beside it)
MODELS = {
    "mnist": "mnist_default.pt",  # the design's default: cond="none" + mask consistency
    "mnist-mask": "mnist_cond_mask.pt",  # cond="mask": the network also sees the observation and hole
    "patterns": "patterns_small.pt",  # 64x64 free-form model on generated geometric patterns
}


def pretrained(name: str = "mnist") -> Path:
    """Path of the shipped checkpoint ``name`` (one of ``MODELS``)."""
    if name not in MODELS:
        raise ValueError(f"name must be one of {', '.join(map(repr, MODELS))}, got {name!r}")
    path = WEIGHTS_DIR / MODELS[name]
    if not path.exists():
        raise FileNotFoundError(
            f"the shipped model {name!r} ({path}) is not in this copy of inpaintlib. Train one with "
            f"`python -m inpaintlib train` (writes outputs/inpaint/last.pt) and pass that path instead.")
    return path


def available() -> list:
    """Names of the shipped checkpoints present in this installation."""
    return [name for name, f in MODELS.items() if (WEIGHTS_DIR / f).exists()]
