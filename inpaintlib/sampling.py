"""DDIM sampling with mask consistency: the inpainting sampler.

One flat sampler function with a uniform signature and a ``callback`` called at every proposal
with a dict (``x``, ``i``, ``t``, ``x0_pred``, ...); animations and the widget hang off that
callback. ``inpaint`` is the public, validated entry point on [0, 1] images.

The reverse step (DDIM, Song et al. 2021, eq. 12), from t to the previous visited timestep s:
    x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)
    sigma  = eta * sqrt((1 - abar_s) / (1 - abar_t)) * sqrt(1 - abar_t / abar_s)       (eq. 16)
    x_s    = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps_hat + sigma z
Mask consistency (the design document's step), with hole M (1 = fill):
    x_s    = (1 - M) * q_sample(y, s) + M * x_s
so the known pixels always carry the observation at exactly the current noise level.
Optional reconstruction guidance (``guidance`` = w > 0; Ho et al. 2022, "Video Diffusion Models",
eq. 7), before the step: the hole's x0_hat moves down the gradient of how badly x0_hat(x_t) misses
the observation on the known pixels,
    x0_hat <- x0_hat - (w sqrt(abar_t) / 2) * M * grad_{x_t} || (1 - M) * (y - x0_hat(x_t)) ||^2
    eps_hat <- (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t)
Replacement alone tells the hole about the known pixels only through the network's next input;
the gradient tells it at once which way its content must change for the whole image to agree.
It costs a backward pass through the network per evaluation: 50 guided steps took 1.8x the time of
50 plain ones in benchmarks/quality.py's run (MNIST, one CPU thread).
"""
from __future__ import annotations

from typing import Callable

import torch

from .accel import amp_context, channels_last, cuda_tf32, resolve_amp, sampling_channels_last
from .schedule import NoiseSchedule, ddim_timesteps

KNOWN_MODES = ("noised", "clean")


class Denoiser:
    """Wrap a network as x_t, t, x0_prev -> (x0_hat, eps_hat), counting network evaluations.

    ``y`` (model space, hole zeroed) and ``hole`` are passed to networks that condition on them.
    ``nfe`` counts evaluations per image (one batched call adds 1)."""

    def __init__(self, model, schedule: NoiseSchedule, y=None, hole=None, clip: bool = True):
        self.model, self.schedule, self.clip = model, schedule, clip
        self.pred = model.config.pred
        self.cond_kwargs = {"y": y, "hole": hole} if model.config.cond == "mask" else {}
        self.nfe = 0

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, x0_prev: torch.Tensor | None = None):
        self.nfe += 1
        out = self.model(x_t, t, x0_prev=x0_prev, **self.cond_kwargs)
        return self.schedule.to_x0_eps(self.pred, x_t, t, out.float(), clip=self.clip)


def ddim_step(schedule: NoiseSchedule, x_t, x0, eps, t, s, eta: float, noise) -> torch.Tensor:
    """One DDIM update from timestep t to s < t (s = -1 is the clean image), eq. 12 and 16."""
    a_t, a_s = schedule.abar(t), schedule.abar(s)
    sigma = eta * ((1 - a_s) / (1 - a_t)).sqrt() * (1 - a_t / a_s).sqrt()
    x_s = a_s.sqrt() * x0 + (1 - a_s - sigma**2).clamp(min=0).sqrt() * eps
    return x_s + sigma * noise if eta > 0 else x_s


def check_guidance(guidance) -> float:
    """The reconstruction-guidance weight as a float, or a ValueError naming what is expected."""
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not 0.0 <= guidance < float("inf"):
        raise ValueError(f"guidance must be a finite number >= 0 (0 = off), got {guidance!r}")
    return float(guidance)


def guided_prediction(denoise: Callable, schedule: NoiseSchedule, x_t, t, x0_prev, y, hole, weight: float):
    """(x0_hat, eps_hat) with reconstruction guidance of ``weight`` (see the module docstring): one
    evaluation with autograd on, and the gradient with respect to x_t of the known pixels' squared
    error. Only the hole's x0_hat moves; the result is clipped to [-1, 1] like the network's own."""
    with torch.enable_grad():
        x_in = x_t.detach().requires_grad_(True)
        x0, _ = denoise(x_in, t, x0_prev)
        error = ((1.0 - hole) * (y - x0)).square().sum()
        grad = torch.autograd.grad(error, x_in, allow_unused=True)[0] if error.requires_grad else None
    if grad is None:  # an x0_hat that does not depend on x_t (an oracle in a test): nothing to follow
        grad = torch.zeros_like(x_t)
    a_t = schedule.abar(t)
    x0 = (x0.detach() - (weight * a_t.sqrt() / 2) * hole * grad).clamp(-1.0, 1.0)
    return x0, (x_t - a_t.sqrt() * x0) / (1.0 - a_t).sqrt()


def ddim_inpaint(denoise: Callable, y: torch.Tensor, hole: torch.Tensor, schedule: NoiseSchedule, steps: int,
                 eta: float = 0.0, dc_repeats: int = 1, dc_fixed_z: bool = True, init_from_y: bool = True,
                 known: str = "noised", generator: torch.Generator | None = None,
                 callback: Callable[[dict], None] | None = None, guidance: float = 0.0) -> torch.Tensor:
    """Fill ``hole`` in ``y`` by DDIM with mask consistency. Tensors in model space ([-1, 1]).

    denoise      callable (x_t, t, x0_prev) -> (x0_hat, eps_hat), e.g. a ``Denoiser``
    y            (B, C, H, W) observation; its values inside the hole are ignored
    hole         (B or 1, 1, H, W), 1 = pixel to fill, 0 = known
    steps        number of DDIM steps S <= T (timesteps evenly spaced from T-1 to 0)
    eta          0 = deterministic DDIM, 1 = DDPM-like ancestral noise
    dc_repeats   visits per timestep: after each proposal but the last, re-noise x_s back to x_t
                 (q(x_t | x_s)) and propose again (RePaint's resampling, Lugmayr et al. 2022)
    dc_fixed_z   noise the observation with one fixed draw z for all timesteps (else a fresh draw)
    init_from_y  start from q_sample(y, T_start) rather than from pure noise
    known        "noised": known pixels = observation forward-noised to the current t (MNIST design)
                 "clean": known pixels = the clean observation, also pasted into x0_hat
                 (the architecture guide's algorithm)
    callback     called after every proposal with a dict: x, i, t, t_prev, repeat, x0_pred, nfe
    guidance     reconstruction-guidance weight w (0 = off, the design's sampler); each evaluation
                 then also takes a backward pass through the network
    Returns the final x_0 with the known pixels pasted back from ``y``.
    """
    if known not in KNOWN_MODES:
        raise ValueError(f"known must be one of {KNOWN_MODES}, got {known!r}")
    if isinstance(dc_repeats, bool) or not isinstance(dc_repeats, int) or dc_repeats < 1:
        raise ValueError(f"dc_repeats must be an int >= 1, got {dc_repeats!r}")
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta must be in [0, 1], got {eta!r}")
    guidance = check_guidance(guidance)
    if guidance > 0 and torch.is_inference_mode_enabled():
        raise RuntimeError("guidance > 0 differentiates through the network, which torch.inference_mode() forbids: "
                           "call it under torch.no_grad() or neither")
    timesteps = ddim_timesteps(schedule.T, steps)
    B, dev = y.shape[0], y.device
    hole = hole.to(y.dtype)
    keep = 1.0 - hole

    def randn():
        return torch.randn(y.shape, generator=generator, device=dev, dtype=y.dtype)

    def tensor_t(t: int) -> torch.Tensor:
        return torch.full((B,), t, device=dev, dtype=torch.long)

    z_obs = randn() if dc_fixed_z else None

    def observed_at(t: torch.Tensor) -> torch.Tensor:
        """The known pixels at the noise level of timestep t."""
        if known == "clean":
            return y
        return schedule.q_sample(y, t, z_obs if dc_fixed_z else randn())

    t0 = tensor_t(timesteps[0])
    x = schedule.q_sample(keep * y, t0, randn()) if init_from_y else randn()
    x = keep * observed_at(t0) + hole * x
    x0_prev, nfe = None, 0
    for i, t_int in enumerate(timesteps):
        t = tensor_t(t_int)
        s = tensor_t(timesteps[i + 1] if i + 1 < len(timesteps) else -1)
        for r in range(dc_repeats):
            if guidance > 0:
                x0, eps = guided_prediction(denoise, schedule, x, t, x0_prev, y, hole, guidance)
            else:
                x0, eps = denoise(x, t, x0_prev)
            nfe += 1
            x0_prev = x0
            if known == "clean":
                x0 = keep * y + hole * x0  # the guide: keep known regions in the x0 estimate too
            x_s = ddim_step(schedule, x, x0, eps, t, s, eta, randn() if eta > 0 else None)
            x_s = keep * observed_at(s) + hole * x_s  # mask consistency
            if callback is not None:
                callback({"x": x_s, "i": i, "t": t_int, "t_prev": int(timesteps[i + 1]) if i + 1 < len(timesteps)
                          else -1, "repeat": r, "x0_pred": x0, "nfe": nfe})
            x = schedule.renoise(x_s, s, t, randn()) if r + 1 < dc_repeats else x_s
    return keep * y + hole * x


def nfe_per_image(steps: int, dc_repeats: int = 1) -> int:
    """Network evaluations per image for one ``ddim_inpaint`` run."""
    return steps * dc_repeats


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
    hole = hole.to(device=images.device, dtype=images.dtype)
    if not ((hole == 0) | (hole == 1)).all():
        raise ValueError("hole must be binary: 1 = pixel to fill, 0 = known (found other values)")
    return hole


@torch.no_grad()
def inpaint(model, images: torch.Tensor, hole: torch.Tensor, steps: int = 50, eta: float = 0.0,
            dc_repeats: int = 1, dc_fixed_z: bool = True, init_from_y: bool = True, seed: int | None = None,
            callback: Callable[[dict], None] | None = None, known: str = "noised",
            amp: bool | None = False, guidance: float = 0.0) -> torch.Tensor:
    """Inpaint ``images`` (B, C, H, W) in [0, 1] where ``hole`` (B or 1, 1, H, W) is 1.

    Returns (B, C, H, W) in [0, 1], on the images' device; outside the hole it equals ``images``
    exactly. The same ``seed`` gives the same output. See ``ddim_inpaint`` for the arguments.
    ``amp=True`` (or None: on for CUDA): on CUDA, autocast the network in bf16 (fp16 where bf16 is
    unsupported), with channels_last weights and TF32, for this call only; no effect on the CPU.
    Off by default, so that on a GPU the result is that of the plain fp32 loop (notebook 04).
    ``guidance`` > 0 adds reconstruction guidance of that weight to every evaluation (see the
    module docstring; off by default, as in the design's sampler).
    On the CPU the network runs in channels_last for the call (faster; the images agree with
    the NCHW loop's to a few 1e-6). No step of the loop waits for the device (no ``.item()``). A compiled network
    (``torch.compile(model)``) may be passed as ``model``."""
    cfg = model.config
    hole = check_images_and_hole(images, hole, cfg.channels, cfg.image_size)
    if not hole.any():
        return images.clone()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed) if seed is not None else int(torch.randint(2**62, (1,)).item()))
    schedule = NoiseSchedule(cfg.T, cfg.schedule).to(device)
    from .data import to_model, to_unit

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
            out = ddim_inpaint(denoise, y, h, schedule, steps, eta=eta, dc_repeats=dc_repeats,
                               dc_fixed_z=dc_fixed_z, init_from_y=init_from_y, known=known, generator=generator,
                               callback=callback, guidance=guidance)
    finally:
        model.train(was_training)
    out = to_unit(out).to(images.device, images.dtype).contiguous()
    return torch.where(hole.bool(), out, images)
