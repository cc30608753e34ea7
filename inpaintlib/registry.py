"""The shipped models and how to load any checkpoint.

    pretrained(name)              the path of a shipped checkpoint ("mnist", "mnist-mask", "patterns", "patterns-mmse",
                                  "patterns-residual")
    DESIGN, RECOMMENDED, BEST     the design's sampler settings, each shipped model's best, the best model
    load_model(path)              any checkpoint of this library, as the network its ``kind`` names

It sits above both systems: it knows the MNIST ``DenoiserUNet`` and the free-form ``UNET`` family,
and neither system imports it.
"""
from __future__ import annotations

from pathlib import Path

from .checkpoint import WEIGHTS_DIR, load_network
from .checks import check_choice
from .freeform.model import build_freeform_model
from .mnist.model import build_mnist_model

# name -> file in inpaintlib/weights/ (each with a model card <file>.md beside it)
MODELS = {
    "mnist": "mnist_default.pt",  # the design's default: cond="none" + mask consistency
    "mnist-mask": "mnist_cond_mask.pt",  # cond="mask": the network also sees the observation and hole
    "patterns": "patterns_small.pt",  # 64x64 free-form model on generated geometric patterns
    "patterns-mmse": "patterns_mmse.pt",  # its MMSE reference: a regression U-Net of the same size (E[x | known])
    "patterns-residual": "patterns_residual.pt",  # diffusion of the residual from that MMSE fill (base="mmse")
}


# How each shipped model samples best (chosen on training digits, never on the test split; the cards
# give the measurements). ``DESIGN`` is the design document's sampler, kept as the baseline beside it.
DESIGN = dict(sampler="replace", steps=50, dc_repeats=2)  # eval_cmd's defaults: replacement, RePaint x2
RECOMMENDED = {
    # the best training-free sampler on this network at <= 100 forward-equivalents per image: reconstruction
    # guidance, 10 steps x 3 resampling rounds (benchmarks/tune_samplers.py on training digits 59000..59127:
    # 10.97 dB; weight 30: 10.71, 40: 10.44, 60: 9.96; benchmarks/results/tune_samplers*_cpu.json). Chosen on
    # the step-4,500 weights; on the shipped step-11,700 ones weights 15 and 20 give 11.03 and 10.94 dB there,
    # inside that sweep's noise, so it stays (tune_samplers_mnist11700_cpu.json)
    "mnist": dict(sampler="guidance", steps=10, dc_repeats=3, guidance=20.0),
    "mnist-mask": dict(sampler="replace", steps=50, dc_repeats=2),  # the network already sees the observation
}
BEST = "mnist-mask"  # the best shipped MNIST model: what the demo, the widget and notebooks 04 to 06 show


def recommended(name: str) -> dict:
    """The sampler settings (sampler, steps and the sampler's options) that shipped model ``name``
    samples best with: ``inpaint(model, images, hole, **recommended(name))``."""
    return dict(RECOMMENDED[check_choice(name, "name", RECOMMENDED)])


def pretrained(name: str = "mnist") -> Path:
    """Path of the shipped checkpoint ``name`` (one of ``MODELS``)."""
    check_choice(name, "name", MODELS)
    path = WEIGHTS_DIR / MODELS[name]
    if not path.exists():
        raise FileNotFoundError(
            f"the shipped model {name!r} ({path}) is not in this copy of inpaintlib. Train one with "
            f"`python -m inpaintlib train` (writes outputs/inpaint/last.pt) and pass that path instead.")
    return path


def available() -> list:
    """Names of the shipped checkpoints present in this installation."""
    return [name for name, f in MODELS.items() if (WEIGHTS_DIR / f).exists()]


BUILDERS = {"mnist": build_mnist_model, "freeform": build_freeform_model}  # a checkpoint's kind -> its network


def load_model(path, device=None, weights: str = "ema"):
    """Load a trained network from a checkpoint, in eval mode, on ``device`` (None: best available).

    The file is read once; its ``kind`` picks the system's builder (``BUILDERS``). ``weights="ema"``
    (default) takes the exponential-moving-average weights when the file has them; ``"model"`` takes
    the raw training weights. The network's ``config`` tells how it was trained (pred, self_cond,
    coord_conv, cond, T, schedule)."""
    return load_network(path, BUILDERS, device=device, weights=weights)
