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

from .accel import amp_context, channels_last, cuda_tf32, resolve_amp, sampling_channels_last
from .checks import check_choice, check_int, check_number
from .masks import check_binary
from .reverse import Denoiser, SamplerRun, check_autograd, ddim_sigma, ddim_step, guided_prediction, paste_known
from .schedule import NoiseSchedule

KNOWN_MODES = ("noised", "clean")


def check_eta(eta) -> float:
    return check_number(eta, "eta", 0.0, 1.0)


# ----------------------------------------------------------------------------------------------
# replacement (the design's sampler), and replacement with reconstruction guidance


def _replacement(denoise: Callable, y, hole, schedule: NoiseSchedule, steps: int, eta, dc_repeats, travel_length,
                 dc_fixed_z, init_from_y, known, generator, callback, guidance: float) -> torch.Tensor:
    """The loop of "replace" and "guidance" (their docstrings); ``guidance`` = 0 is "replace"."""
    eta = check_eta(eta)
    check_int(dc_repeats, "dc_repeats")
    check_int(travel_length, "travel_length")
    check_choice(known, "known", KNOWN_MODES)
    run = SamplerRun(schedule, y, hole, steps, generator, callback, counts_backward=guidance > 0)
    keep, hole = run.keep, run.hole
    z_obs = run.randn() if dc_fixed_z else None

    def observed_at(t: torch.Tensor) -> torch.Tensor:
        """The known pixels at the noise level of timestep t."""
        if known == "clean":
            return y
        return schedule.q_sample(y, t, z_obs if dc_fixed_z else run.randn())

    t0 = run.t(0)
    x = schedule.q_sample(keep * y, t0, run.randn()) if init_from_y else run.randn()
    x = paste_known(x, observed_at(t0), keep, hole)
    x0_prev = None

    def step(x, i, r):
        nonlocal x0_prev
        t, s = run.t(i), run.t(i + 1)
        if guidance > 0:
            x0, eps = guided_prediction(denoise, schedule, x, t, x0_prev, y, hole, guidance)
            run.backward += 1
        else:
            x0, eps = denoise(x, t, x0_prev)
        run.nfe += 1
        x0_prev = x0
        if known == "clean":
            x0 = paste_known(x0, y, keep, hole)  # the guide: keep known regions in the x0 estimate too
        x_s = ddim_step(schedule, x, x0, eps, t, s, eta, run.randn() if eta > 0 else None)
        x_s = paste_known(x_s, observed_at(s), keep, hole)  # mask consistency
        run.report(x_s, i, r, x0)
        return x_s

    x = run.loop(x, step, dc_repeats, travel_length)
    return keep * y + hole * x


def ddim_inpaint(denoise: Callable, y: torch.Tensor, hole: torch.Tensor, schedule: NoiseSchedule, steps: int, *,
                 eta: float = 0.0, dc_repeats: int = 1, travel_length: int = 1, dc_fixed_z: bool = True,
                 init_from_y: bool = True, known: str = "noised", generator: torch.Generator | None = None,
                 callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """Sampler "replace", the design's: DDIM (Song et al. 2021, eq. 12 and 16) with mask consistency.
    After every step the known pixels are replaced by the observation noised to the new level,
        x_s <- (1 - M) * q_sample(y, s) + M * x_s          (M = hole, 1 = fill)
    so they always carry the observation at exactly the current noise level. With dc_repeats > 1 it is
    RePaint (Lugmayr et al. 2022, Algorithm 1). Tensors in model space ([-1, 1]).

    denoise      callable (x_t, t, x0_prev) -> (x0_hat, eps_hat), e.g. a ``reverse.Denoiser``
    y            (B, C, H, W) observation; its values inside the hole are ignored
    hole         (B or 1, 1, H, W), 1 = pixel to fill, 0 = known
    steps        number of DDIM steps S <= T (timesteps evenly spaced from T-1 to 0)
    eta          0 = deterministic DDIM, 1 = DDPM-like ancestral noise
    dc_repeats   visits per timestep: after each proposal but the last, re-noise x_s back to x_t
                 (q(x_t | x_s)) and propose again (RePaint's resampling)
    travel_length  RePaint's jump length: re-noise after windows of this many steps (1 = every step)
    dc_fixed_z   noise the observation with one fixed draw z for all timesteps (else a fresh draw)
    init_from_y  start from q_sample(y, T_start) rather than from pure noise
    known        "noised": known pixels = observation forward-noised to the current t (the MNIST design)
                 "clean": known pixels = the clean observation, also pasted into x0_hat (the free-form
                 system's algorithm)
    callback     called after every proposal with a dict: x, i, t, t_prev, repeat, x0_pred, nfe
    Returns the final x_0 with the known pixels pasted back from ``y``. NFE per image = S * dc_repeats."""
    return _replacement(denoise, y, hole, schedule, steps, eta, dc_repeats, travel_length, dc_fixed_z, init_from_y,
                        known, generator, callback, guidance=0.0)


def guidance_inpaint(denoise: Callable, y: torch.Tensor, hole: torch.Tensor, schedule: NoiseSchedule, steps: int, *,
                     guidance: float = 1.0, eta: float = 0.0, dc_repeats: int = 1, travel_length: int = 1,
                     dc_fixed_z: bool = True, init_from_y: bool = True, known: str = "noised",
                     generator: torch.Generator | None = None,
                     callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """Sampler "guidance": replacement (``ddim_inpaint``, the same options) plus reconstruction guidance
    (Ho et al. 2022, "Video Diffusion Models", eq. 7) of weight ``guidance`` = w > 0 at every
    evaluation, before the step (``reverse.guided_prediction``):
        x0_hat <- x0_hat - (w sqrt(abar_t) / 2) * M * grad_{x_t} || (1 - M) * (y - x0_hat(x_t)) ||^2
        eps_hat <- (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t)
    Replacement alone tells the hole about the known pixels only through the network's next input; the
    gradient tells it at once which way its content must change for the whole image to agree. Only the
    hole's x0_hat moves, with a fixed weight, and the known pixels are still replaced after every step.
    That is not DPS (Chung et al. 2023, Algorithm 1), which moves all of x_{t-1} by a step normalised by
    the residual's norm and replaces nothing. Each evaluation also takes a backward pass through the
    network: NFE per image = S * dc_repeats, and as many backward passes. The weight that works best
    depends on the network (``registry.RECOMMENDED``)."""
    guidance = check_number(guidance, "guidance", 0.0, float("inf"), low_open=True)
    check_autograd("sampler='guidance'")
    return _replacement(denoise, y, hole, schedule, steps, eta, dc_repeats, travel_length, dc_fixed_z, init_from_y,
                        known, generator, callback, guidance=guidance)


# ----------------------------------------------------------------------------------------------
# DDNM: consistency in x0-space


def ddnm_inpaint(denoise: Callable, y: torch.Tensor, hole: torch.Tensor, schedule: NoiseSchedule, steps: int, *,
                 eta: float = 0.0, travel_rounds: int = 1, travel_length: int = 1,
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
    ``travel_length`` steps are run ``travel_rounds`` times, re-noising x from the window's end back to
    its start between runs, so that later, better x0_hat estimates can correct earlier steps.
    NFE per image = steps * travel_rounds."""
    check_eta(eta)
    check_int(travel_rounds, "travel_rounds")
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

    x = run.loop(run.randn(), step, travel_rounds, travel_length)
    return keep * y + hole * x


# ----------------------------------------------------------------------------------------------
# PiGDM: pseudo-inverse guidance


def pigdm_inpaint(denoise: Callable, y: torch.Tensor, hole: torch.Tensor, schedule: NoiseSchedule, steps: int, *,
                  eta: float = 0.0, sigma_y: float = 0.0, guidance: float = 1.0, travel_rounds: int = 1,
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
        x_s = DDIM(x0_hat, eps_hat) + guidance * sqrt(abar_s) sqrt(abar_t) r_t^2 g,
    i.e. x0_hat moved by sqrt(abar_t) r_t^2 g before the step. The r_t^2 in front cancels the one in g
    for sigma_y = 0 (noiseless inpainting needs no small sigma_y to stay finite); it is the
    coefficient of the public implementations (e.g. azula's PGDMSampler), and the Tweedie step
    E[x0 | x_t, y] - E[x0 | x_t] = ((1 - abar_t) / sqrt(abar_t)) grad log p(y | x_t) up to abar_t.
    ``guidance`` = 1 is the paper's weight; the known pixels are not replaced during the loop, only
    pasted into the result. NFE per image = steps * travel_rounds, and as many backward passes."""
    check_eta(eta)
    sigma_y = check_number(sigma_y, "sigma_y", 0.0, float("inf"))
    guidance = check_number(guidance, "guidance", 0.0, float("inf"))
    check_int(travel_rounds, "travel_rounds")
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
        x_s = x_s + guidance * a_s.sqrt() * a_t.sqrt() * r2 * g  # PiGDM's guidance term (Algorithm 1)
        run.report(x_s, i, r, x0)
        return x_s

    x = run.loop(run.randn(), step, travel_rounds, travel_length)
    return keep * y + hole * x


# ----------------------------------------------------------------------------------------------
# DiffPIR: a closed-form data step, then re-noise


def diffpir_inpaint(denoise: Callable, y: torch.Tensor, hole: torch.Tensor, schedule: NoiseSchedule, steps: int, *,
                    zeta: float = 0.3, lam: float = 7.0, sigma_y: float = 0.0, travel_rounds: int = 1,
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
    Starts from pure noise. NFE per image = steps * travel_rounds."""
    zeta = check_number(zeta, "zeta", 0.0, 1.0)
    lam = check_number(lam, "lam", 0.0, float("inf"), low_open=True)
    sigma_y = check_number(sigma_y, "sigma_y", 0.0, float("inf"))
    check_int(travel_rounds, "travel_rounds")
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

    x = run.loop(run.randn(), step, travel_rounds, travel_length)
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


def smc_inpaint(denoise: Callable, y: torch.Tensor, hole: torch.Tensor, schedule: NoiseSchedule, steps: int, *,
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
            out = sample(denoise, y, h, schedule, steps, generator=generator, callback=callback, **options)
    finally:
        model.train(was_training)
    out = to_unit(out).to(images.device, images.dtype).contiguous()
    return torch.where(hole.bool(), out, images)
