"""The ladder of inpainting samplers beyond replacement, as flat functions of one signature.

Every sampler here reads ``(denoise, y, hole, schedule, steps, ..., generator=None, callback=None)``
like ``sampling.ddim_inpaint`` (k-diffusion's shape), works in model space ([-1, 1]), and returns
x_0 (B, C, H, W) with the known pixels pasted back from ``y``. They share the schedule, the
``Denoiser`` wrapper, the mask-consistency step (``paste_known``) and the time loop
(``SamplerRun.loop``, with RePaint/DDNM time travel); each one is only its step. The callback gets
the dict of ``SamplerRun.report`` (x, i, t, t_prev, repeat, x0_pred, nfe, and backward for the
samplers that differentiate through the network), so benchmarks can plot quality against NFE.

    name        where the observation enters                        NFE / image      backward
    "replace"   x_t: known pixels = noised y (the design's)         S * repeats      0
    "guidance"  + gradient of the known pixels' error (Ho 2022)     S * repeats      = NFE
    "ddnm"      x0_hat: keep * y + hole * x0_hat (Wang 2023)        S * repeats      0
    "pigdm"     vector-Jacobian product of the residual (Song 2023) S * repeats      = NFE
    "diffpir"   x0_hat: closed-form proximal data step (Zhu 2023)   S * repeats      0
    "smc"       particles weighted by the known pixels (Dou 2024)   S * particles    0

``SAMPLERS`` maps each name to its function. ``inpaint(model, images, hole, ..., sampler=name)``, the
public entry point on [0, 1] images (at the end of this file), validates the inputs and runs one.
"""
from __future__ import annotations

from typing import Callable

import torch

from .masks import check_binary
from .accel import amp_context, channels_last, cuda_tf32, resolve_amp, sampling_channels_last
from .sampling import (Denoiser, SamplerRun, check_autograd, check_int, check_number, ddim_inpaint, ddim_sigma, ddim_step,
                       paste_known)
from .schedule import NoiseSchedule


def check_eta(eta) -> float:
    return check_number(eta, "eta", 0.0, 1.0)


# ----------------------------------------------------------------------------------------------
# reconstruction guidance as its own name


def guidance_inpaint(denoise: Callable, y: torch.Tensor, hole: torch.Tensor, schedule: NoiseSchedule, steps: int,
                     guidance: float = 30.0, eta: float = 0.0, dc_repeats: int = 1, dc_fixed_z: bool = True,
                     init_from_y: bool = True, travel_length: int = 1, generator: torch.Generator | None = None,
                     callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """Replacement plus reconstruction guidance (Ho et al. 2022, "Video Diffusion Models", eq. 7):
    ``ddim_inpaint`` with ``guidance`` = w > 0, see ``sampling``'s module docstring. It is DPS
    (Chung et al. 2023, Algorithm 1) up to its step-size rule, with replacement kept on top."""
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not 0 < guidance < float("inf"):
        raise ValueError(f"guidance must be a finite number > 0 for sampler='guidance' (e.g. 30), got {guidance!r}")
    return ddim_inpaint(denoise, y, hole, schedule, steps, eta=eta, dc_repeats=dc_repeats, dc_fixed_z=dc_fixed_z,
                        init_from_y=init_from_y, generator=generator, callback=callback, guidance=guidance,
                        travel_length=travel_length)


# ----------------------------------------------------------------------------------------------
# DDNM: consistency in x0-space


def ddnm_inpaint(denoise: Callable, y: torch.Tensor, hole: torch.Tensor, schedule: NoiseSchedule, steps: int,
                 eta: float = 0.0, dc_repeats: int = 1, travel_length: int = 1,
                 generator: torch.Generator | None = None,
                 callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """DDNM (Wang et al. 2023, "Zero-Shot Image Restoration Using Denoising Diffusion Null-Space
    Model", Algorithm 1; the range-null-space decomposition of their Sec. 3): the observation enters
    x0_hat, not x_t. With A the
    observation operator and A^+ its pseudo-inverse, the range-null-space decomposition
        x0_hat <- A^+ y + (I - A^+ A) x0_hat
    keeps the known pixels of y and the hole of x0_hat; for inpainting A = A^+ = keep (a 0/1
    diagonal), so it is x0_hat <- keep * y + hole * x0_hat (``paste_known``). Then the DDIM step
    x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps_hat + sigma z with the network's eps_hat
    (eq. 12 of DDIM; DDNM's code does the same). Starts from pure noise.

    Time travel (DDNM's "time-travel trick", on RePaint's schedule): windows of
    ``travel_length`` steps are run ``dc_repeats`` times, re-noising x from the window's end back to
    its start between runs, so that later, better x0_hat estimates can correct earlier steps.
    NFE per image = steps * dc_repeats."""
    check_eta(eta)
    check_int(dc_repeats, "dc_repeats")
    check_int(travel_length, "travel_length")
    run = SamplerRun(schedule, y, hole, steps, generator, callback)
    keep, hole = run.keep, run.hole
    x0_prev = None

    def step(x, i, r):
        nonlocal x0_prev
        t, s = run.t(i), run.t(i + 1)
        x0, eps = denoise(x, t, x0_prev)
        run.nfe += 1
        x0_prev = x0
        x0 = paste_known(x0, y, keep, hole)  # A^+ y + (I - A^+ A) x0_hat   (DDNM, Algorithm 1)
        x_s = ddim_step(schedule, x, x0, eps, t, s, eta, run.randn() if eta > 0 else None)
        run.report(x_s, i, r, x0)
        return x_s

    x = run.loop(run.randn(), step, dc_repeats, travel_length)
    return keep * y + hole * x


# ----------------------------------------------------------------------------------------------
# PiGDM: pseudo-inverse guidance


def pigdm_inpaint(denoise: Callable, y: torch.Tensor, hole: torch.Tensor, schedule: NoiseSchedule, steps: int,
                  eta: float = 0.0, sigma_y: float = 0.0, weight: float = 1.0, dc_repeats: int = 1,
                  travel_length: int = 1, generator: torch.Generator | None = None,
                  callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """PiGDM (Song et al. 2023, "Pseudoinverse-Guided Diffusion Models for Inverse Problems", ICLR,
    Algorithm 1). p(y | x_t) is approximated by the Gaussian
    N(H x0_hat(x_t), r_t^2 H H^T + sigma_y^2 I) with r_t^2 = 1 - abar_t (the paper's
    r_t^2 = sigma_t^2 / (1 + sigma_t^2) in VP form), so its score is the vector-Jacobian product
        g = ((y - H x0_hat)^T (r_t^2 H H^T + sigma_y^2 I)^-1 H  d x0_hat / d x_t)^T
    For inpainting H selects the known pixels (H H^T = I): g = J^T keep (y - x0_hat) / (r_t^2 + sigma_y^2),
    one backward pass through the network per evaluation (autograd's vjp).
    The step (Algorithm 1): the DDIM step with the network's x0_hat and eps_hat, plus the guidance
        x_s = DDIM(x0_hat, eps_hat) + weight * sqrt(abar_s) sqrt(abar_t) r_t^2 g,
    i.e. x0_hat moved by sqrt(abar_t) r_t^2 g before the step. The r_t^2 in front cancels the one in g
    for sigma_y = 0 (noiseless inpainting needs no small sigma_y to stay finite); it is the
    coefficient of the public implementations (e.g. azula's PGDMSampler), and the Tweedie step
    E[x0 | x_t, y] - E[x0 | x_t] = ((1 - abar_t) / sqrt(abar_t)) grad log p(y | x_t) up to abar_t.
    ``weight`` = 1 is the paper's; the known pixels are not replaced during the loop, only pasted
    into the result. NFE per image = steps * dc_repeats, and as many backward passes."""
    check_eta(eta)
    sigma_y = check_number(sigma_y, "sigma_y", 0.0, float("inf"))
    weight = check_number(weight, "weight", 0.0, float("inf"))
    check_int(dc_repeats, "dc_repeats")
    check_int(travel_length, "travel_length")
    check_autograd("sampler='pigdm'")
    run = SamplerRun(schedule, y, hole, steps, generator, callback, counts_backward=True)
    keep, hole = run.keep, run.hole
    x0_prev = None

    def step(x, i, r):
        nonlocal x0_prev
        t, s = run.t(i), run.t(i + 1)
        a_t, a_s = schedule.abar(t), schedule.abar(s)
        r2 = 1.0 - a_t  # r_t^2 = 1 - abar_t
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            x0, eps = denoise(x_in, t, x0_prev)
            residual = keep * (y - x0.detach()) / (r2 + sigma_y ** 2)  # (r_t^2 H H^T + sigma_y^2 I)^-1 (y - H x0_hat)
            g = torch.autograd.grad(x0, x_in, residual, allow_unused=True)[0] if x0.requires_grad else None
        g = torch.zeros_like(x) if g is None else g  # an x0_hat that does not depend on x_t (an oracle)
        run.nfe += 1
        run.backward += 1
        x0, eps = x0.detach(), eps.detach()
        x0_prev = x0
        x_s = ddim_step(schedule, x, x0, eps, t, s, eta, run.randn() if eta > 0 else None)
        x_s = x_s + weight * a_s.sqrt() * a_t.sqrt() * r2 * g  # PiGDM's guidance term (Algorithm 1)
        run.report(x_s, i, r, x0)
        return x_s

    x = run.loop(run.randn(), step, dc_repeats, travel_length)
    return keep * y + hole * x


# ----------------------------------------------------------------------------------------------
# DiffPIR: a closed-form data step, then re-noise


def diffpir_inpaint(denoise: Callable, y: torch.Tensor, hole: torch.Tensor, schedule: NoiseSchedule, steps: int,
                    zeta: float = 0.3, lam: float = 7.0, sigma_y: float = 0.0, dc_repeats: int = 1,
                    travel_length: int = 1, generator: torch.Generator | None = None,
                    callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """DiffPIR (Zhu et al. 2023, "Denoising Diffusion Models for Plug-and-Play Image Restoration",
    Algorithm 1), a plug-and-play method meant for few steps (20 to 100). Each step:
      1. the prior step: x0_hat = the network's denoised estimate at x_t;
      2. the data step, the proximal problem  argmin_z ||y - H z||^2 + rho_t ||z - x0_hat||^2  with
         rho_t = lam * sigma_y^2 / sigma_bar_t^2,  sigma_bar_t^2 = (1 - abar_t) / abar_t;  for inpainting
         (H = keep, diagonal) in closed form, per pixel:
             z = (keep * y + rho_t x0_hat) / (keep + rho_t)
         = (y + rho_t x0_hat) / (1 + rho_t) on known pixels, x0_hat in the hole. (Written with rho in
         the denominator; the reading with rho multiplying y is the same with 1/rho.) sigma_y = 0, the
         noiseless observation, makes it plain x0-space replacement;
      3. eps_hat = (x_t - sqrt(abar_t) z) / sqrt(1 - abar_t), the effective noise of z;
      4. x_s = sqrt(abar_s) z + sqrt(1 - abar_s) (sqrt(1 - zeta) eps_hat + sqrt(zeta) eps),  eps ~ N(0, I):
         ``zeta`` mixes fresh noise in (0: DDIM's deterministic step, 1: all noise fresh).
    Starts from pure noise. NFE per image = steps * dc_repeats."""
    zeta = check_number(zeta, "zeta", 0.0, 1.0)
    lam = check_number(lam, "lam", 0.0, float("inf"), low_open=True)
    sigma_y = check_number(sigma_y, "sigma_y", 0.0, float("inf"))
    check_int(dc_repeats, "dc_repeats")
    check_int(travel_length, "travel_length")
    run = SamplerRun(schedule, y, hole, steps, generator, callback)
    keep, hole = run.keep, run.hole
    x0_prev = None

    def step(x, i, r):
        nonlocal x0_prev
        t, s = run.t(i), run.t(i + 1)
        a_t, a_s = schedule.abar(t), schedule.abar(s)
        x0, _ = denoise(x, t, x0_prev)
        run.nfe += 1
        x0_prev = x0
        rho = lam * sigma_y ** 2 * a_t / (1 - a_t)  # rho_t = lam sigma_y^2 / sigma_bar_t^2
        z = paste_known(x0, (y + rho * x0) / (1 + rho), keep, hole)  # the data step, per pixel
        eps_hat = schedule.eps_from_x0(x, t, z)
        noise = run.randn() if zeta > 0 else torch.zeros_like(x)
        x_s = a_s.sqrt() * z + (1 - a_s).sqrt() * ((1 - zeta) ** 0.5 * eps_hat + zeta ** 0.5 * noise)
        run.report(x_s, i, r, z)
        return x_s

    x = run.loop(run.randn(), step, dc_repeats, travel_length)
    return keep * y + hole * x


# ----------------------------------------------------------------------------------------------
# sequential Monte Carlo: FPS-SMC


def systematic_resample(log_w: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices (B, K) of systematic resampling (Kitagawa 1996) of each row's K normalised weights:
    one uniform u per row, the K points (u + k) / K, each mapped through the weights' CDF."""
    B, K = log_w.shape
    cdf = torch.softmax(log_w, dim=1).cumsum(1)
    cdf[:, -1] = 1.0  # rounding must not let the last point fall past the end
    u = (torch.rand((B, 1), generator=generator, device=log_w.device, dtype=log_w.dtype)
         + torch.arange(K, device=log_w.device, dtype=log_w.dtype)) / K
    return torch.searchsorted(cdf, u).clamp(max=K - 1)


def effective_sample_size(log_w: torch.Tensor) -> torch.Tensor:
    """ESS = 1 / sum_k w_k^2 of each row's normalised weights, (B,)."""
    return 1.0 / torch.softmax(log_w, dim=1).square().sum(1)


def smc_inpaint(denoise: Callable, y: torch.Tensor, hole: torch.Tensor, schedule: NoiseSchedule, steps: int,
                particles: int = 8, eta: float = 1.0, ess_threshold: float = 0.5,
                generator: torch.Generator | None = None,
                callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """FPS-SMC (Dou & Song 2024, "Diffusion Posterior Sampling for Linear Inverse Problem Solving: A
    Filtering Perspective", ICLR; the particle filter of their Sec. 3): K = ``particles`` samples per
    image whose weighted set converges to the model's exact posterior p(x_0 | y) as K grows.

    Why FPS-SMC and not TDS (Wu et al. 2023): for a linear observation with Gaussian (here: no)
    noise, FPS's weights and proposals are closed-form Gaussians, so it needs no backward pass
    through the network (NFE = K per step, backward = 0, where TDS takes a backward pass per particle
    and step for its twisting functions), and for inpainting it reduces to the design's replacement
    step plus a reweighting: the SMC is a small, readable change of the sampler the notebooks teach.

    The construction (noiseless inpainting, H = keep): the known pixels of the forward process,
    y_t = H x_t, form their own diffusion, independent of the hole given y_0 = y, so first a path
    y_T, ..., y_0 = y is drawn backwards with the same DDIM kernel the sampler uses,
        y_T = sqrt(abar_T) y + sqrt(1 - abar_T) z,   y_s = DDIM(y_t, x0 = y, eps = (y_t - sqrt(abar_t) y) / sqrt(1 - abar_t)) + sigma z,
    (DDIM eq. 7: its marginals are q(y_t | y) at every t), and then the particles target
    p(x_{T..0} | y_{T..0}) with the model's kernel p(x_s | x_t) = N(mu(x_t), sigma^2 I) (DDIM, eq. 12/16):
      proposal  the hole of x_s from N(mu, sigma^2), the known pixels set to y_s (replacement);
      weight    w *= p(known pixels of x_s = y_s | x_t) = N(y_s; keep mu(x_t), sigma^2 I),
    resampled (systematic) whenever an image's ESS < ``ess_threshold`` * K. The last step (to t = -1,
    sigma = 0) takes x0_hat and is not reweighted. ``eta`` > 0 is required (the weights need the
    kernel's noise); eta = 1 is DDPM's ancestral kernel. The result holds one particle per image,
    drawn by the final weights; all of them are in the callback's dict.

    Particles: rows b*K .. b*K + K-1 of the network's batch are image b's (``Denoiser`` repeats a
    conditioned network's y and hole). Callback extras: ``particles`` (B, K, C, H, W),
    ``log_weights`` (B, K), ``ess`` (B,), ``resampled`` (B,) bool; ``x`` and ``x0_pred`` are each
    image's heaviest particle. NFE per image = steps * particles; no time travel (it would break the
    weights)."""
    K = check_int(particles, "particles")
    eta = check_number(eta, "eta", 0.0, 1.0, low_open=True)
    ess_threshold = check_number(ess_threshold, "ess_threshold", 0.0, 1.0)
    run = SamplerRun(schedule, y, hole, steps, generator, callback)
    B, n = y.shape[0], len(run.timesteps)

    def rep(v):  # one copy per particle, image-major
        return v.repeat_interleave(K, 0) if v.shape[0] == B else v  # a (1, ...) hole broadcasts

    keep, hole_k, y_k = rep(run.keep), rep(run.hole), rep(y)
    y_t = schedule.q_sample(y, run.t(0), run.randn())  # the observation's path starts at q(y_T | y)
    x = paste_known(run.randn(y_k), rep(y_t), keep, hole_k)
    log_w = torch.zeros(B, K, device=y.device, dtype=torch.float32)
    x0_prev = None
    rows = torch.arange(B, device=y.device).unsqueeze(1) * K

    def step(x, i, r):
        nonlocal x0_prev, y_t, log_w
        t, s = run.t(i, B * K), run.t(i + 1, B * K)
        x0, eps = denoise(x, t, x0_prev)
        run.nfe += K
        sigma = ddim_sigma(schedule, t, s, eta)
        a_s = schedule.abar(s)
        mean = a_s.sqrt() * x0 + (1 - a_s - sigma ** 2).clamp(min=0).sqrt() * eps  # mu(x_t), DDIM eq. 12
        # the observation's next point: y_s ~ q(y_s | y_t, y), the same DDIM kernel with x0 = y
        tb, sb = run.t(i, B), run.t(i + 1, B)
        y_s = ddim_step(schedule, y_t, y, schedule.eps_from_x0(y_t, tb, y), tb, sb, eta, run.randn())
        y_t = y_s
        if i + 1 < n:  # w *= N(y_s; keep mu(x_t), sigma^2 I)   (the constant factors cancel per image)
            sq = (keep * (rep(y_s) - mean)).square().flatten(1).sum(1)
            log_w = log_w + (-0.5 * sq / sigma.flatten() ** 2).float().view(B, K)
            x_s = paste_known(mean + sigma * run.randn(mean), rep(y_s), keep, hole_k)
        else:
            x_s = paste_known(mean, y_k, keep, hole_k)
        ess = effective_sample_size(log_w)
        resampled = ess < ess_threshold * K
        if i + 1 < n:  # resample the images whose ESS fell below the threshold (no host sync)
            idx = torch.where(resampled.unsqueeze(1), systematic_resample(log_w, run.generator),
                              torch.arange(K, device=y.device).expand(B, K))
            flat = (rows + idx).reshape(-1)
            x_s, x0 = x_s[flat], x0[flat]
            log_w = torch.where(resampled.unsqueeze(1), torch.zeros_like(log_w), log_w)
        x0_prev = x0
        if run.callback is not None:
            best = rows.squeeze(1) + log_w.argmax(1)
            run.report(x_s[best], i, r, x0[best], particles=x_s.view(B, K, *x_s.shape[1:]),
                       log_weights=log_w.clone(), ess=ess, resampled=resampled)
        return x_s

    x = run.loop(x, step)
    pick = torch.multinomial(torch.softmax(log_w, 1), 1, generator=run.generator).squeeze(1)
    x = x.view(B, K, *x.shape[1:])[torch.arange(B, device=y.device), pick]
    return run.keep * y + run.hole * x


# ----------------------------------------------------------------------------------------------
# the registry ``inpaint`` selects from

SAMPLERS = {"replace": ddim_inpaint, "guidance": guidance_inpaint, "ddnm": ddnm_inpaint, "pigdm": pigdm_inpaint,
            "diffpir": diffpir_inpaint, "smc": smc_inpaint}


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


# the arguments of ``inpaint`` that several samplers share, with inpaint's defaults (eta=None: the
# sampler's own default, 0 = DDIM for all but "smc", whose weights need eta > 0 and which takes 1)
SHARED_DEFAULTS = dict(eta=None, dc_repeats=1, dc_fixed_z=True, init_from_y=True, known="noised", guidance=0.0)


def sampler_arguments(sampler: str, options: dict, **shared):
    """(the sampler function, its keyword arguments) for ``inpaint``'s ``sampler`` and arguments.

    A shared argument goes to the sampler if its signature names it; one it does not name must keep
    inpaint's default. ``options`` must be arguments of the sampler's own. Else a ValueError names
    the argument and what is allowed."""
    import inspect

    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(map(repr, SAMPLERS))}, got {sampler!r}")
    func = SAMPLERS[sampler]
    params = set(inspect.signature(func).parameters) - {"denoise", "y", "hole", "schedule", "steps", "generator",
                                                         "callback"}
    kwargs = {}
    for name, value in shared.items():
        if name in params:
            if value is not None:
                kwargs[name] = value
        elif value != SHARED_DEFAULTS[name]:
            takers = [k for k, f in SAMPLERS.items() if name in inspect.signature(f).parameters]
            raise ValueError(f"{name}={value!r} does not apply to sampler={sampler!r}; it applies to "
                             f"sampler {', '.join(map(repr, takers))} (leave it at {SHARED_DEFAULTS[name]!r})")
    own = sorted(params - set(shared))
    for name, value in options.items():
        if name not in own:
            raise ValueError(f"sampler={sampler!r} has no option {name!r}; its options are "
                             f"{', '.join(own) if own else '(none)'}")
        kwargs[name] = value
    return func, kwargs


@torch.no_grad()
def inpaint(model, images: torch.Tensor, hole: torch.Tensor, steps: int = 50, eta: float | None = None,
            dc_repeats: int = 1, dc_fixed_z: bool = True, init_from_y: bool = True, seed: int | None = None,
            callback: Callable[[dict], None] | None = None, known: str = "noised",
            amp: bool | None = False, guidance: float = 0.0, sampler: str = "replace",
            **sampler_options) -> torch.Tensor:
    """Inpaint ``images`` (B, C, H, W) in [0, 1] where ``hole`` (B or 1, 1, H, W) is 1.

    Returns (B, C, H, W) in [0, 1], on the images' device; outside the hole it equals ``images``
    exactly. The same ``seed`` gives the same output. See ``ddim_inpaint`` for the arguments
    (``eta`` None: the sampler's default, 0 for "replace").
    ``amp=True`` (or None: on for CUDA): on CUDA, autocast the network in bf16 (fp16 where bf16 is
    unsupported), with channels_last weights and TF32, for this call only; no effect on the CPU.
    Off by default, so that on a GPU the result is that of the plain fp32 loop (notebook 04).
    ``guidance`` > 0 adds reconstruction guidance of that weight to every evaluation (see the
    module docstring; off by default, as in the design's sampler).
    ``sampler`` picks the sampler (``samplers.SAMPLERS``): "replace" (the design's, default),
    "guidance", "ddnm", "pigdm", "diffpir" or "smc"; ``sampler_options`` are that sampler's own
    keyword arguments (e.g. ``particles=16`` for "smc", ``travel_length=5`` for "ddnm"). Of the
    arguments above, each sampler takes those its signature names; passing another one at a value
    other than its default is a ValueError (e.g. ``known="clean"`` with sampler="ddnm").
    On the CPU the network runs in channels_last for the call (faster; the sums inside each
    convolution run in another order, so the images agree with an NCHW loop's to float rounding, which
    20 evaluations grow to about 1e-5; notebook 04's loop, run in the same layout, matches bit for bit).
    No step of the loop waits for the device (no ``.item()``). A compiled network
    (``torch.compile(model)``) may be passed as ``model``."""
    cfg = model.config
    sample, kwargs = sampler_arguments(sampler, sampler_options, eta=eta, dc_repeats=dc_repeats,
                                       dc_fixed_z=dc_fixed_z, init_from_y=init_from_y, known=known, guidance=guidance)
    hole = check_images_and_hole(images, hole, cfg.channels, cfg.image_size)
    if not hole.any():
        return images.clone()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed) if seed is not None else int(torch.randint(2**62, (1,)).item()))
    schedule = NoiseSchedule(cfg.T, cfg.schedule).to(device)
    from .utils import to_model, to_unit

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
            out = sample(denoise, y, h, schedule, steps, generator=generator, callback=callback, **kwargs)
    finally:
        model.train(was_training)
    out = to_unit(out).to(images.device, images.dtype).contiguous()
    return torch.where(hole.bool(), out, images)
