"""Every inpainting sampler, as flat functions of one signature, and ``inpaint``, the one entry point.

Each sampler reads ``(denoise, y, hole, schedule, steps, *, <its own options>, generator=None,
callback=None)`` (k-diffusion's shape), works in model space ([-1, 1]), owns its defaults, and returns
x_0 (B, C, H, W) with the known pixels pasted back from ``y``. What they share (the ``Denoiser``, the DDIM
step, ``paste_known`` and the time loop of ``SamplerRun``) is in ``reverse.py``; each one here is only its
step. The callback gets ``SamplerRun.report``'s dict (x, i, t, t_prev, repeat, x0_pred, nfe, and backward
for the samplers that differentiate through the network).

    name        where the observation enters                        its repeat option      NFE / image      backward
    "replace"   x_t: known pixels = noised y (the design's)         dc_repeats (RePaint)   S * dc_repeats   0
    "guidance"  + gradient of the known pixels' error (Ho 2022)     dc_repeats (RePaint)   S * dc_repeats   = NFE
    "ddnm"      x0_hat: keep * y + hole * x0_hat (Wang 2023)        travel_rounds          S * rounds       0
    "pigdm"     vector-Jacobian product of the residual (Song 2023) travel_rounds          S * rounds       = NFE
    "diffpir"   x0_hat: closed-form proximal data step (Zhu 2023)   travel_rounds          S * rounds       0
    "smc"       particles weighted by the known pixels (Dou 2024)   (none)                 S * particles    0
    "mcgdiff"   particles on a path of noised observations (Cardoso 2024)  (none)          S * particles    0
    "tds"       particles twisted by x0_hat's fit to y (Wu 2023)    (none)                 S * particles    = NFE

``dc_repeats`` re-noises after every step (RePaint's visits per timestep); ``travel_rounds`` runs each
window of ``travel_length`` steps that many times (DDNM's time travel). ``guidance`` is the one weight name
of the two samplers that follow a gradient of the observation ("guidance", "pigdm"). NFE is per image.

``inpaint(model, images, hole, sampler="replace", *, steps, seed, callback, amp, **options)`` runs one of
``SAMPLERS`` on [0, 1] images; ``options`` are that sampler's own (``sampler_options(name)`` lists them).
"""
from __future__ import annotations

import inspect
from typing import Callable

import torch

from ..accel import amp_context, channels_last, cuda_tf32, resolve_amp, sampling_channels_last
from ..checks import check_choice, check_int
from ..masks import check_binary
from ..reverse import Denoiser
from ..schedule import NoiseSchedule
from .particles import effective_sample_size, mcgdiff_inpaint, smc_inpaint, systematic_resample, tds_inpaint
from .replacement import KNOWN_MODES, ddim_inpaint, ddnm_inpaint, diffpir_inpaint, guidance_inpaint, pigdm_inpaint

# ----------------------------------------------------------------------------------------------
# the registry ``inpaint`` selects from

SAMPLERS = {"replace": ddim_inpaint, "guidance": guidance_inpaint, "ddnm": ddnm_inpaint, "pigdm": pigdm_inpaint,
            "diffpir": diffpir_inpaint, "smc": smc_inpaint, "mcgdiff": mcgdiff_inpaint, "tds": tds_inpaint}
SAMPLER_INPUTS = ("denoise", "y", "hole", "schedule", "steps", "generator", "callback")  # not options


def sampler_options(sampler: str) -> dict:
    """The options of sampler ``sampler`` with its own defaults, e.g. ``sampler_options("smc")`` ->
    {"particles": 8, "eta": 1.0, "ess_threshold": 0.5}."""
    check_choice(sampler, "sampler", SAMPLERS)
    params = inspect.signature(SAMPLERS[sampler]).parameters
    return {name: p.default for name, p in params.items() if name not in SAMPLER_INPUTS}


def check_options(sampler: str, options: dict) -> dict:
    """``options`` if every one is an option of ``sampler``; else a ValueError that names the sampler's
    options (and the samplers that do take the one given)."""
    own = sampler_options(sampler)
    for name in options:
        if name not in own:
            takers = [k for k in SAMPLERS if k != sampler and name in sampler_options(k)]
            hint = f" ({name!r} is an option of sampler {', '.join(map(repr, takers))})" if takers else ""
            raise ValueError(f"sampler={sampler!r} has no option {name!r}; its options are "
                             f"{', '.join(own) if own else '(none)'}{hint}")
    return dict(options)


REPEAT_OPTIONS = ("dc_repeats", "travel_rounds")  # what a sampler's repeat option is called (module docstring)


def repeat_option(sampler: str) -> str | None:
    """The name of ``sampler``'s repeat option ("dc_repeats" or "travel_rounds"), None if it has none."""
    return next((name for name in REPEAT_OPTIONS if name in sampler_options(sampler)), None)


def route_options(sampler: str, options: dict | None = None, defaults: dict | None = None, **given) -> dict:
    """The one place that decides which argument goes to which sampler, for callers that hold some
    options as their own general arguments (the commands' ``dc_repeats``, ``eta``, ``guidance``; the
    widget's controls). Returns the keyword options for ``SAMPLERS[sampler]``:
      - each of ``given`` goes to the sampler if it is one of its options; None means the sampler's
        own default (left out);
      - one it does not take must be None or equal to the caller's default in ``defaults`` (it was
        not asked for), else a ValueError names the samplers that take it;
      - ``options`` are passed on as they are, checked by ``check_options``."""
    check_choice(sampler, "sampler", SAMPLERS)
    own, defaults = sampler_options(sampler), defaults or {}
    out = {}
    for name, value in given.items():
        if name in own:
            if value is not None:
                out[name] = value
        elif value is not None and value != defaults.get(name):
            takers = [k for k in SAMPLERS if name in sampler_options(k)]
            raise ValueError(f"{name}={value!r} does not apply to sampler={sampler!r}; it is an option of sampler "
                             f"{', '.join(map(repr, takers)) or '(none)'}")
    extra = check_options(sampler, options or {})
    clash = sorted(set(out) & set(extra))
    if clash:
        raise ValueError(f"{', '.join(clash)} given twice (as an argument and in the sampler's options)")
    return {**out, **extra}


# ----------------------------------------------------------------------------------------------
# the public entry point on [0, 1] images


def check_images_and_hole(images, hole, channels: int | None = None, size: int | None = None):
    """Validate the tensor API's inputs; return the hole as a float tensor on the images' device."""
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a torch.Tensor of shape (B, C, H, W), got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"images must have shape (B, C, H, W) (rank 4), got shape {tuple(images.shape)}")
    if images.shape[0] < 1:
        raise ValueError("images must hold at least one image (B >= 1), got B = 0")
    if channels is not None and images.shape[1] != channels:
        raise ValueError(f"images must have {channels} channel(s) for this model, got shape {tuple(images.shape)}")
    if size is not None and tuple(images.shape[-2:]) != (size, size):
        raise ValueError(f"images must be {size}x{size} for this model, got {tuple(images.shape[-2:])}")
    if not images.is_floating_point():
        raise ValueError(f"images must be a float tensor in [0, 1], got dtype {images.dtype}")
    if not torch.isfinite(images).all():
        raise ValueError("images must be finite (found NaN or inf)")
    if images.min() < 0 or images.max() > 1:
        raise ValueError(f"images must be in [0, 1], got values in [{images.min().item():.3g}, {images.max().item():.3g}]")
    if not isinstance(hole, torch.Tensor):
        raise ValueError(f"hole must be a torch.Tensor of shape (B or 1, 1, H, W), got {type(hole).__name__}")
    if hole.ndim != 4 or hole.shape[1] != 1 or hole.shape[0] not in (1, images.shape[0]):
        raise ValueError(f"hole must have shape ({images.shape[0]} or 1, 1, H, W), got {tuple(hole.shape)}")
    if hole.shape[-2:] != images.shape[-2:]:
        raise ValueError(f"hole size {tuple(hole.shape[-2:])} differs from the images' size {tuple(images.shape[-2:])}")
    return check_binary(hole.to(device=images.device, dtype=images.dtype))


@torch.no_grad()
def inpaint(model, images: torch.Tensor, hole: torch.Tensor, sampler: str = "replace", *, steps: int = 50,
            seed: int | None = None, callback: Callable[[dict], None] | None = None, amp: bool | None = False,
            **options) -> torch.Tensor:
    """Inpaint ``images`` (B, C, H, W) in [0, 1] where ``hole`` (B or 1, 1, H, W) is 1, with sampler
    ``sampler`` (one of ``SAMPLERS``: "replace", the design's, by default) at ``steps`` steps.

    ``options`` are the sampler's own keyword arguments, with its own defaults (``sampler_options``):
    e.g. ``dc_repeats=2`` for "replace", ``guidance=20, dc_repeats=3`` for "guidance",
    ``particles=16`` for "smc". An option the sampler does not have is a ValueError naming its options.
    Returns (B, C, H, W) in [0, 1], on the images' device; outside the hole it equals ``images``
    exactly. The same ``seed`` gives the same output.
    ``amp=True`` (or None: on for CUDA): on CUDA, autocast the network in bf16 (fp16 where bf16 is
    unsupported), with channels_last weights and TF32, for this call only; no effect on the CPU.
    Off by default, so that on a GPU the result is that of the plain fp32 loop (notebook 04).
    On the CPU the network runs in channels_last for the call (faster; the sums inside each
    convolution run in another order, so the images agree with an NCHW loop's to float rounding, which
    20 evaluations grow to about 1e-5; notebook 04's loop, run in the same layout, matches bit for bit).
    No step of the loop waits for the device (no ``.item()``). A compiled network
    (``torch.compile(model)``) may be passed as ``model``."""
    cfg = model.config
    check_options(sampler, options)
    sample = SAMPLERS[sampler]
    check_int(steps, "steps", 1, cfg.T)
    hole = check_images_and_hole(images, hole, cfg.channels, cfg.image_size)
    if not hole.any():
        return images.clone()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed) if seed is not None else int(torch.randint(2**62, (1,)).item()))
    schedule = NoiseSchedule.of(cfg).to(device)
    from ..utils import to_model, to_unit

    x, h = images.to(device), hole.to(device)
    y = to_model(x) * (1.0 - h)  # observation in model space, hole zeroed
    amp = resolve_amp(amp, device)
    autocast, _ = amp_context(device, amp)
    was_training = model.training
    model.eval()
    try:
        # one autocast region for the whole loop: autocast caches its casts of the weights until it exits
        with cuda_tf32(device, amp), channels_last(model, sampling_channels_last(device, amp)), autocast():
            denoise = Denoiser(model, schedule, y=y, hole=h)
            out = sample(denoise, y, h, schedule, steps, generator=generator, callback=callback, **options)
    finally:
        model.train(was_training)
    out = to_unit(out).to(images.device, images.dtype).contiguous()
    return torch.where(hole.bool(), out, images)
