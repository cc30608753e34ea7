"""The samplers of one chain per image: replacement (the design's), reconstruction guidance, DDNM, PiGDM
and DiffPIR. Each is a flat function of the signature of ``samplers`` (the package's docstring)."""
from __future__ import annotations

from typing import Callable

import torch

from ..checks import check_choice, check_int, check_number
from ..reverse import SamplerRun, check_autograd, ddim_step, guided_prediction, paste_known
from ..schedule import NoiseSchedule

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
