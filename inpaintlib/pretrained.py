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


# How each shipped model samples best (chosen on training digits, never on the test split; the cards
# give the measurements). ``DESIGN`` is the design document's sampler, kept as the baseline beside it.
DESIGN = dict(steps=50, dc_repeats=2, guidance=0.0)  # eval_cmd's defaults: replacement, RePaint x2
RECOMMENDED = {
    "mnist": dict(steps=50, dc_repeats=3, guidance=30.0),  # the best training-free sampler on this network
    "mnist-mask": dict(steps=50, dc_repeats=2, guidance=0.0),  # the network already sees the observation
}
BEST = "mnist-mask"  # the best shipped MNIST model: what the demo, the widget and notebooks 04 to 06 show


def recommended(name: str) -> dict:
    """The sampler settings (steps, dc_repeats, guidance) that shipped model ``name`` samples best with."""
    if name not in RECOMMENDED:
        raise ValueError(f"name must be one of {', '.join(map(repr, RECOMMENDED))}, got {name!r}")
    return dict(RECOMMENDED[name])


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
